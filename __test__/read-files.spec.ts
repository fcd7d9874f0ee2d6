import test from 'ava'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { readFiles, stats, backend } from '../index'

// A tree of files of random sizes (some on buffer-size boundaries) with
// missing paths and directories mixed in at random positions: every entry
// must equal what fs gives for that path, bytes or error.
test('readFiles: contents and errors equal fs, aligned with the paths', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-rf-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  let seed = 0x12345
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  const sizes = [0, 1, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20]
  const paths: string[] = []
  for (let i = 0; i < 1500; i++) {
    const kind = rand(20)
    if (kind === 0) {
      paths.push(path.join(dir, `missing-${i}`))
    } else if (kind === 1) {
      const d = path.join(dir, `dir-${i}`)
      fs.mkdirSync(d)
      paths.push(d)
    } else {
      const p = path.join(dir, `f-${i}`)
      const size = kind === 2 ? sizes[rand(sizes.length)] : rand(20000)
      const data = Buffer.alloc(size)
      for (let j = 0; j < size; j += 97) data[j] = (i + j) & 0xff
      fs.writeFileSync(p, data)
      paths.push(p)
    }
  }
  const before = stats()
  const got = await readFiles(paths, { concurrency: 64 })
  const after = stats()
  t.is(got.length, paths.length)
  for (let i = 0; i < paths.length; i++) {
    let expected: Buffer | Error
    try {
      expected = fs.readFileSync(paths[i])
    } catch (e) {
      expected = e as Error
    }
    const g = got[i]
    if (expected instanceof Error) {
      const e = expected as NodeJS.ErrnoException
      t.true(g instanceof Error, `${paths[i]}: an error like fs`)
      const ge = g as NodeJS.ErrnoException
      t.deepEqual([ge.code, ge.errno, ge.syscall, ge.path, ge.message], [e.code, e.errno, e.syscall, e.path, e.message], paths[i])
    } else {
      t.true(Buffer.isBuffer(g) && g.equals(expected), `${paths[i]}: same bytes as fs`)
    }
  }
  if (backend() === 'io_uring') {
    // Many files share each submission.
    t.true(after.ops - before.ops > 4 * (after.enters - before.enters), `${after.ops - before.ops} ops in ${after.enters - before.enters} enters`)
  }
})

test('readFiles: encoding gives strings; bad arguments throw like fs', async (t) => {
  const got = await readFiles(['package.json'], 'utf8')
  t.is(got[0], fs.readFileSync('package.json', 'utf8'))
  await t.throwsAsync(() => readFiles(42 as unknown as string[]), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(() => readFiles([123]), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(() => readFiles(['package.json'], { concurrency: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  t.deepEqual(await readFiles([]), [])
})

test("readFiles: encoding 'buffer' means Buffers, as fs", async (t) => {
  const file = path.resolve('package.json')
  const [got] = await readFiles([file], 'buffer')
  t.true(Buffer.isBuffer(got))
  t.deepEqual(got, fs.readFileSync(file))
  const [again] = await readFiles([file], { encoding: 'buffer' })
  t.true(Buffer.isBuffer(again))
})

// A file that grows (an append) and shrinks (a truncate) while it is read,
// in a child process so the writes really race the engine's reads: every
// result is a state the file passed through (a prefix of the long version
// at least as long as the short one, byte for byte), never garbage, and
// every call settles (ava's timeout would catch a hang).
test('readFiles: a file growing and shrinking while read gives a state it had, never garbage or a hang', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-rf-race-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'changing')
  const short = 100 * 1024
  const long = 150 * 1024
  const pattern = (n: number): Buffer => {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 12)) & 0xff
    return b
  }
  const full = pattern(long)
  fs.writeFileSync(file, full.subarray(0, short))
  const { spawn } = await import('node:child_process')
  const script = `
    const fs = require('fs')
    const [file, short, long] = [process.argv[1], +process.argv[2], +process.argv[3]]
    const full = Buffer.alloc(long)
    for (let i = 0; i < long; i++) full[i] = (i * 7 + (i >> 12)) & 0xff
    const fd = fs.openSync(file, 'r+')
    const end = Date.now() + 1500
    while (Date.now() < end) {
      fs.writeSync(fd, full, short, long - short, short) // grow in place
      fs.ftruncateSync(fd, short)                        // shrink
    }
  `
  const child = spawn(process.execPath, ['-e', script, file, String(short), String(long)], { stdio: 'inherit' })
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  let calls = 0
  let seenShort = 0
  let seenLonger = 0
  const deadline = Date.now() + 1300
  while (Date.now() < deadline) {
    const got = await readFiles(Array.from({ length: 32 }, () => file))
    calls++
    for (const r of got) {
      if (!Buffer.isBuffer(r)) return t.fail(`an error instead of content: ${String(r)}`)
      if (r.length < short || r.length > long) return t.fail(`length ${r.length} outside [${short}, ${long}]`)
      if (!r.equals(full.subarray(0, r.length))) return t.fail(`content of length ${r.length} is not the file's`)
      if (r.length === short) seenShort++
      else seenLonger++
    }
  }
  t.is(await exited, 0)
  t.log({ calls, seenShort, seenLonger, backend: backend() })
  t.true(calls > 0)
})
