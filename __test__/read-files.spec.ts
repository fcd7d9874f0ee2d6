import test from 'ava'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { readFiles, readFilesEach, stats, backend } from 'uring-fs'
import { fdCount, settleFdCount, spawnAsync } from './helpers'

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
    // What readFiles promises: fs.promises.readFile's outcome.
    const expected: Buffer | Error = await fs.promises.readFile(paths[i]).catch((e: Error) => e)
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
  await t.throwsAsync(() => readFiles([123] as never), { code: 'ERR_INVALID_ARG_TYPE' })
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

// Small files come back as views into shared blocks: each must be exactly
// its file (no neighbour's bytes at either end), and writing into one must
// leave every other result as it was.
test('readFiles: each small file is its own bytes, whatever shares its block', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-rf-views-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const paths: string[] = []
  const contents: Buffer[] = []
  for (let i = 0; i < 600; i++) {
    // Sizes around the packing limits: empty, tiny, near 16 KiB and 64 KiB.
    const size = [0, 1, 7, 4096, 16383, 16384, 30000, 65535, 70000][i % 9]! + (i % 5)
    const data = Buffer.alloc(size, (i * 31 + 7) & 0xff)
    if (size > 0) data[size - 1] = 0xfe
    const p = path.join(dir, `f-${i}`)
    fs.writeFileSync(p, data)
    paths.push(p)
    contents.push(data)
  }
  for (const concurrency of [1, 3, 256]) {
    const got = (await readFiles(paths, { concurrency })) as Buffer[]
    for (let i = 0; i < paths.length; i++) {
      t.true(Buffer.isBuffer(got[i]) && got[i]!.equals(contents[i]!), `${paths[i]} (concurrency ${concurrency})`)
    }
    for (const b of got) b.fill(0xaa)
    for (let i = 0; i < paths.length; i++) t.is(got[i]!.length, contents[i]!.length)
    t.true(got.every((b) => b.every((x) => x === 0xaa)), 'writes into one result stay in it')
  }
})

// Paths given as Buffers (names that are not UTF-8) and as strings, mixed.
test('readFiles: Buffer paths with bytes that are not UTF-8, mixed with strings', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-rf-raw-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const paths: Array<string | Buffer> = []
  for (let i = 0; i < 100; i++) {
    const name = i % 2 ? Buffer.concat([Buffer.from(`${dir}/raw-`), Buffer.from([0xff, 0xfe, 0x80 + i])]) : path.join(dir, `s-${i}`)
    fs.writeFileSync(name, `file ${i}`)
    paths.push(name)
  }
  paths.push(Buffer.concat([Buffer.from(`${dir}/missing-`), Buffer.from([0xff])]))
  const got = await readFiles(paths, 'latin1')
  for (let i = 0; i < 100; i++) t.is(got[i], `file ${i}`)
  const miss = got[100] as NodeJS.ErrnoException
  t.is(miss.code, 'ENOENT')
  let fsErr: NodeJS.ErrnoException | undefined
  try {
    fs.readFileSync(paths[100]!)
  } catch (e) {
    fsErr = e as NodeJS.ErrnoException
  }
  t.deepEqual([miss.errno, miss.syscall, miss.message], [fsErr?.errno, fsErr?.syscall, fsErr?.message])
})

const EACCES_SCRIPT = `
const fs = require('fs')
const assert = require('assert')
const [repo, list] = process.argv.slice(1)
assert.notStrictEqual(process.geteuid(), 0, 'the child must run unprivileged')
const lib = require(repo)
const paths = JSON.parse(list)
const snap = (r) => Buffer.isBuffer(r) ? { bytes: r.toString('hex') } : { code: r.code, errno: r.errno, syscall: r.syscall, path: r.path, message: r.message }
;(async () => {
  const fsOut = paths.map((p) => { try { return snap(fs.readFileSync(p)) } catch (e) { return snap(e) } })
  const ours = (await lib.readFiles(paths)).map(snap)
  console.log(JSON.stringify({ uid: process.geteuid(), fs: fsOut, ours }))
})()
`

test('readFiles: permission denied (EACCES) as nobody, at random positions among readable files, as fs', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-rf-acc-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.chmodSync(dir, 0o755)
  const closed = path.join(dir, 'closed')
  fs.mkdirSync(closed)
  fs.writeFileSync(path.join(closed, 'inside'), 'hidden')
  fs.chmodSync(closed, 0o700)
  const paths: string[] = []
  let seed = 0x5eed
  for (let i = 0; i < 200; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    const kind = seed % 7
    if (kind === 0) {
      const p = path.join(dir, `locked-${i}`)
      fs.writeFileSync(p, `locked ${i}`)
      fs.chmodSync(p, 0o000)
      paths.push(p)
    } else if (kind === 1) {
      paths.push(path.join(closed, 'inside'))
    } else {
      const p = path.join(dir, `open-${i}`)
      fs.writeFileSync(p, `open ${i}`.repeat(i))
      fs.chmodSync(p, 0o644)
      paths.push(p)
    }
  }
  const root = process.getuid?.() === 0
  const res = await spawnAsync(process.execPath, ['-e', EACCES_SCRIPT, process.cwd(), JSON.stringify(paths)], {
    ...(root ? { uid: 65534, gid: 65534 } : {}),
    timeoutMs: 30_000,
  })
  t.is(res.status, 0, `child failed: ${res.error ?? ''} ${res.stderr}`)
  const out = JSON.parse(res.stdout) as { uid: number; fs: Array<{ code?: string }>; ours: unknown[] }
  t.not(out.uid, 0, 'unprivileged')
  t.true(out.fs.filter((r) => r.code === 'EACCES').length > 20, 'fs is denied (harness check)')
  t.deepEqual(out.ours, out.fs)
})

// Every descriptor a batch opens is closed, errors included (the lanes use
// direct descriptors on io_uring and plain ones on the fallback).
test.serial('readFiles: no descriptor left open after batches with errors', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-rf-fd-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const paths: string[] = []
  for (let i = 0; i < 500; i++) {
    if (i % 10 === 0) {
      paths.push(path.join(dir, `missing-${i}`))
    } else if (i % 10 === 1) {
      paths.push(dir) // EISDIR on the read, after a successful open
    } else {
      const p = path.join(dir, `f-${i}`)
      fs.writeFileSync(p, Buffer.alloc((i * 977) % 200_000, 1))
      paths.push(p)
    }
  }
  // The engine and the lanes' rings (kept for reuse) are up before counting.
  await readFiles(paths, { concurrency: 32 })
  const base = fdCount()
  for (let round = 0; round < 5; round++) {
    const got = await readFiles(paths, { concurrency: 32 })
    t.is(got.filter((r) => r instanceof Error).length, 100)
  }
  t.is(await settleFdCount(base), base)
})

// A FIFO among many small files (so the batch goes to the lanes) and in a
// short list: its whole stream, as fs reads it, never the part that happened
// to be in the pipe (io_uring reads a pipe whatever the offset, so a FIFO
// must not be read as a small file).
test('readFiles: a FIFO with a writer among small files gives its whole stream', async (t) => {
  const { spawn, execFileSync } = await import('node:child_process')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-rf-fifo-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const content = Buffer.alloc(300_001)
  for (let i = 0; i < content.length; i++) content[i] = (i * 13 + (i >> 10)) & 0xff
  const src = path.join(dir, 'src')
  fs.writeFileSync(src, content)
  for (const count of [40, 3]) {
    const fifo = path.join(dir, `fifo-${count}`)
    execFileSync('mkfifo', [fifo])
    const paths = Array.from({ length: count }, (_, i) => {
      const p = path.join(dir, `f-${count}-${i}`)
      fs.writeFileSync(p, `small ${i}`)
      return p
    })
    paths[Math.floor(count / 2)] = fifo
    // The writer: a separate process, so its blocking open happens there.
    const writer = spawn('sh', ['-c', 'cat "$0" > "$1"', src, fifo], { stdio: 'ignore' })
    const exited = new Promise((resolve) => writer.on('close', resolve))
    const got = await readFiles(paths)
    await exited
    for (let i = 0; i < count; i++) {
      const want = paths[i] === fifo ? content : Buffer.from(`small ${i}`)
      t.true(Buffer.isBuffer(got[i]) && (got[i] as Buffer).equals(want), `${count} paths, #${i}`)
    }
  }
})

// fs.promises.readFile refuses a file of more than 2 GiB - 1 bytes
// (kIoMaxLength) with ERR_FS_FILE_TOO_LARGE, before reading it. readFiles
// and readFilesEach give that error for that entry, in a short list (one
// task per file) and in a long one (the lanes), without reading 2 GiB.
test.serial('readFiles and readFilesEach: a file over 2 GiB gives the ERR_FS_FILE_TOO_LARGE of fs.promises, the others are read', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-rf-big-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const big = path.join(dir, 'big')
  fs.closeSync(fs.openSync(big, 'w'))
  fs.truncateSync(big, 2 ** 31 + 5) // sparse
  const small = path.join(dir, 'small')
  fs.writeFileSync(small, 'small')
  const want = await fs.promises.readFile(big).then(
    () => null,
    (e: NodeJS.ErrnoException) => e,
  )
  t.is(want?.code, 'ERR_FS_FILE_TOO_LARGE')
  for (const list of [[big, small], [...Array(40).fill(small), big]]) {
    const before = stats()
    const got = await readFiles(list)
    const read = stats().bytesRead - before.bytesRead
    const i = list.indexOf(big)
    const e = got[i] as NodeJS.ErrnoException
    t.true(e instanceof RangeError, `${list.length} files: ${String(e)}`)
    t.is(e.code, 'ERR_FS_FILE_TOO_LARGE')
    t.is(e.message, String(want?.message))
    t.deepEqual(got[list.indexOf(small)], Buffer.from('small'))
    // Refused after a stat: none of its 2 GiB read (the small files only).
    if (backend() !== 'node') t.true(read < 1024 * 1024, `${list.length} files: ${read} bytes read`)
    const each = new Map<string, unknown>()
    for await (const [p, res] of readFilesEach(list)) each.set(String(p), res)
    t.is((each.get(big) as NodeJS.ErrnoException).code, 'ERR_FS_FILE_TOO_LARGE')
  }
})
