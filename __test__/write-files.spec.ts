// writeFiles against fs: every file it writes must hold the bytes
// fs.writeFileSync writes for the same data and options, every file it fails
// must fail with the Error fs.promises.writeFile rejects with, and bad
// arguments must reject as fs.promises.writeFile does, before anything is
// written. The suite runs on both backends (URING_FS_BACKEND=fallback).

import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import { backend, stats, writeFiles } from 'uring-fs'
import {
  REPO,
  errorSnapshot,
  fdCount,
  makeTmpDir,
  mulberry32,
  randInt,
  randomContent,
  removeTmpDir,
  sameBytes,
  settleFdCount,
  spawnAsync,
  testSeed,
} from './helpers'

const SEED = testSeed()
const MiB = 1024 * 1024

let dir = ''
let counter = 0
/** A regular file: paths under it fail with ENOTDIR. */
let plain = ''

test.before(() => {
  dir = makeTmpDir('write-files')
  plain = path.join(dir, 'plain')
  fs.writeFileSync(plain, 'a regular file')
})

test.after.always(() => removeTmpDir(dir))

/** A new directory in the temp dir. */
function freshDir(label: string): string {
  const d = path.join(dir, `${label}-${counter++}`)
  fs.mkdirSync(d)
  return d
}

function umask(): number {
  const m = /^Umask:\s+([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return m ? parseInt(m[1], 8) : 0o022
}

type Data = string | NodeJS.ArrayBufferView

/** What fs.promises.writeFile gives: undefined, or its rejection (snapshot). */
async function fsOutcome(p: string, data: Data, options?: unknown): Promise<Record<string, unknown> | null> {
  try {
    await fs.promises.writeFile(p, data as string, options as never)
    return null
  } catch (err) {
    return errorSnapshot(err)
  }
}

/** What a call gives: its value, or the error it rejects with (snapshot). Never a synchronous throw. */
async function outcome(t: ExecutionContext, what: string, call: () => Promise<unknown>): Promise<{ value: unknown } | { error: Record<string, unknown> | null }> {
  let p: Promise<unknown>
  try {
    p = call()
  } catch (err) {
    t.fail(`${what}: threw synchronously (${String(err)}); fs.promises rejects`)
    return { error: errorSnapshot(err) }
  }
  try {
    return { value: await p }
  } catch (err) {
    return { error: errorSnapshot(err) }
  }
}

// ---------------------------------------------------------------------------
// Random data

/** Characters that take 1 to 4 bytes in UTF-8, NUL, and lone surrogates. */
const TEXT = ['a', 'Z', ' ', '\n', '~', 'é', 'ÿ', 'ß', 'Ā', '€', '中', '😀', '\u0000', '\ud800', '\udfff']
const HEX = '0123456789abcdefABCDEF'
const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_'

/** A size from 0 to 1 MiB, mostly small, sometimes on a page or 64 KiB boundary. */
function randomSize(rng: () => number): number {
  const r = rng()
  if (r < 0.05) return [0, 1, 4095, 4096, 4097, 65535, 65536, 65537, MiB][randInt(rng, 0, 8)]
  if (r < 0.7) return randInt(rng, 0, 4096)
  if (r < 0.92) return randInt(rng, 4097, 65536)
  if (r < 0.98) return randInt(rng, 65537, 256 * 1024)
  return randInt(rng, 256 * 1024, MiB)
}

/** A string for `encoding`: mostly valid for it, sometimes not (fs decides what that writes). */
function randomString(rng: () => number, encoding: BufferEncoding | undefined, length: number): string {
  const out: string[] = []
  const alphabet = encoding === 'hex' ? HEX : encoding === 'base64' || encoding === 'base64url' ? BASE64 : null
  for (let i = 0; i < length; i++) {
    if (alphabet === null || rng() < 0.001) out.push(TEXT[randInt(rng, 0, TEXT.length - 1)])
    else out.push(alphabet[randInt(rng, 0, alphabet.length - 1)])
  }
  if (alphabet !== null && rng() < 0.2) out.push('=')
  return out.join('')
}

/** `size` bytes in one of the views fs takes, at an offset in its buffer when it can be. */
function randomView(rng: () => number, size: number): NodeJS.ArrayBufferView {
  const bytes = randomContent(rng, size + 16)
  switch (randInt(rng, 0, 6)) {
    case 0:
      return bytes.subarray(0, size)
    case 1:
      return new Uint8Array(bytes.buffer, bytes.byteOffset + 3, size)
    case 2: {
      const ab = new ArrayBuffer(size + 16)
      new Uint8Array(ab).set(bytes)
      return new Float64Array(ab, 8, size >> 3)
    }
    case 3:
      return new DataView(bytes.buffer, bytes.byteOffset + 5, size)
    case 4: {
      const ab = new ArrayBuffer(size + 16)
      new Uint8Array(ab).set(bytes)
      return new Int16Array(ab, 2, size >> 1)
    }
    case 5:
      // A small Buffer from the shared pool: a slice at some offset of it.
      return Buffer.from(bytes.subarray(0, Math.min(size, 2000)).toString('latin1'), 'latin1')
    default:
      return Buffer.from(bytes.subarray(0, size))
  }
}

const ENCODINGS: Array<BufferEncoding | undefined> = [undefined, 'utf8', 'utf-8', 'utf16le', 'ucs2', 'latin1', 'binary', 'ascii', 'base64', 'base64url', 'hex']

// ---------------------------------------------------------------------------
// What is written

test('2,000 files of random sizes: strings in every encoding, Buffers, TypedArrays, DataViews, each the bytes fs.writeFileSync writes', async (t) => {
  const rng = mulberry32(SEED ^ 0x2000)
  const ours = freshDir('ours')
  const theirs = freshDir('fs')
  // One call per encoding (it is a per-call option), all in flight at once.
  const calls = ENCODINGS.map((encoding) => ({ encoding, files: [] as Array<{ name: string; data: Data }> }))
  for (let i = 0; i < 2000; i++) {
    const call = calls[randInt(rng, 0, calls.length - 1)]
    const size = randomSize(rng)
    const data = rng() < 0.6 ? randomString(rng, call.encoding, size) : randomView(rng, size)
    const name = `f-${i}`
    // Some files exist, longer: 'w' truncates them.
    if (rng() < 0.1) {
      for (const d of [ours, theirs]) fs.writeFileSync(path.join(d, name), Buffer.alloc(300_000, 0xee))
    }
    call.files.push({ name, data })
  }
  for (const { encoding, files } of calls) {
    for (const { name, data } of files) fs.writeFileSync(path.join(theirs, name), data, { encoding })
  }
  const results = await Promise.all(
    calls.map(({ encoding, files }, c) => {
      // Pairs and objects; string, Buffer and file: URL paths; an array or
      // a generator of entries.
      const entries = files.map(({ name, data }, j) => {
        const full = path.join(ours, name)
        const p = j % 7 === 3 ? Buffer.from(full) : j % 7 === 5 ? pathToFileURL(full) : full
        return j % 2 === 0 ? ([p, data] as const) : { path: p, data }
      })
      const iterable = c % 2 === 0 ? entries : (function* () { yield* entries })()
      const concurrency = [1, 8, 64, 256, undefined][c % 5]
      return writeFiles(iterable, { encoding, concurrency })
    }),
  )
  for (const [c, { encoding, files }] of calls.entries()) {
    t.is(results[c].length, files.length, `${encoding}: one result per entry`)
    t.true(results[c].every((r) => r === undefined), `${encoding}: every file written`)
    for (const { name } of files) {
      sameBytes(t, fs.readFileSync(path.join(ours, name)), fs.readFileSync(path.join(theirs, name)), `${encoding} ${name}`)
    }
  }
})

// Serial: the engine's counters are the process's, so nothing else may run.
test.serial('io_uring: the SQEs of many files share each submission', async (t) => {
  if (backend() !== 'io_uring') {
    t.pass('the fallback makes no submissions')
    return
  }
  const ours = freshDir('batched')
  const data = randomContent(mulberry32(SEED ^ 0xba7c), 3000)
  const run = async (label: string, files: number, concurrency?: number) => {
    const before = stats()
    const res = await writeFiles(
      Array.from({ length: files }, (_, i) => [path.join(ours, `${label}-${i}`), data] as const),
      { concurrency },
    )
    const after = stats()
    t.true(res.every((r) => r === undefined), `${label}: written`)
    return { ops: after.ops - before.ops, enters: after.enters - before.enters }
  }
  // One file at a time: every SQE waits for the one before, one enter each.
  const one = await run('one', 100, 1)
  t.is(one.ops, 300, 'open, write and close for each file')
  t.true(one.enters >= one.ops - 5, `concurrency 1: ${one.ops} ops in ${one.enters} enters`)
  // How many share an enter depends on how the opens (which the kernel
  // punts to its workers) complete; several on average, never one each.
  const many = await run('many', 1000)
  t.is(many.ops, 3000, 'open, write and close for each file')
  t.true(many.ops > 2 * many.enters, `default concurrency: ${many.ops} ops in ${many.enters} enters`)
})

test('data no longer referenced by the caller stays alive until the kernel is done with it (forced GCs meanwhile)', async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const ours = freshDir('gc')
  const size = 200_000
  // Each Buffer exists only inside the entries iterable; strings become
  // Buffers inside writeFiles: nothing here keeps either alive.
  const pending = writeFiles(
    (function* () {
      for (let i = 0; i < 300; i++) {
        yield [path.join(ours, `f-${i}`), i % 2 === 0 ? Buffer.alloc(size, i & 0xff) : String.fromCharCode(65 + (i % 26)).repeat(size)] as const
      }
    })(),
    { concurrency: 16 },
  )
  let done = false
  const collecting = (async () => {
    while (!done) {
      gc()
      // Garbage to reuse the freed memory, were any freed too early.
      Buffer.alloc(size, 0xee)
      await new Promise((r) => setImmediate(r))
    }
  })()
  const res = await pending
  done = true
  await collecting
  t.true(res.every((r) => r === undefined))
  for (let i = 0; i < 300; i++) {
    const want = i % 2 === 0 ? Buffer.alloc(size, i & 0xff) : Buffer.from(String.fromCharCode(65 + (i % 26)).repeat(size))
    sameBytes(t, fs.readFileSync(path.join(ours, `f-${i}`)), want, `f-${i}`)
  }
})

test("flag 'a' appends to what is there, as fs.writeFileSync with flag 'a'; 'ax' refuses existing files with fs's EEXIST", async (t) => {
  const rng = mulberry32(SEED ^ 0xa99e)
  const ours = freshDir('append-ours')
  const theirs = freshDir('append-fs')
  const names = Array.from({ length: 200 }, (_, i) => `a-${i}`)
  for (const name of names) {
    if (rng() < 0.5) {
      const old = randomContent(rng, randInt(rng, 1, 10_000))
      for (const d of [ours, theirs]) fs.writeFileSync(path.join(d, name), old)
    }
  }
  for (let round = 0; round < 3; round++) {
    const datas = names.map(() => (rng() < 0.5 ? randomString(rng, 'utf8', randInt(rng, 0, 5000)) : randomView(rng, randomSize(rng))))
    for (const [i, name] of names.entries()) fs.writeFileSync(path.join(theirs, name), datas[i], { flag: 'a' })
    const res = await writeFiles(names.map((name, i) => [path.join(ours, name), datas[i]] as const), { flag: 'a', concurrency: 32 })
    t.true(res.every((r) => r === undefined), `round ${round}: every file written`)
  }
  for (const name of names) sameBytes(t, fs.readFileSync(path.join(ours, name)), fs.readFileSync(path.join(theirs, name)), name)

  const fresh = path.join(ours, 'ax-new')
  const res = await writeFiles([[path.join(ours, names[0]), 'x'], [fresh, 'new']], { flag: 'ax' })
  t.deepEqual(errorSnapshot(res[0]), await fsOutcome(path.join(ours, names[0]), 'x', { flag: 'ax' }))
  t.is((res[0] as NodeJS.ErrnoException).code, 'EEXIST')
  t.is(res[1], undefined)
  t.is(fs.readFileSync(fresh, 'utf8'), 'new')
  sameBytes(t, fs.readFileSync(path.join(ours, names[0])), fs.readFileSync(path.join(theirs, names[0])), 'untouched by ax')
})

test('mode applies to new files, with the umask, as fs.writeFileSync; an existing file keeps its mode', async (t) => {
  const mask = umask()
  const ours = freshDir('mode-ours')
  const theirs = freshDir('mode-fs')
  for (const mode of [0o600, 0o640, 0o777, 0o666, '755', '0644', 0o100644, undefined]) {
    const names = ['m-1', 'm-2', 'm-3'].map((n) => `${n}-${String(mode)}`)
    fs.writeFileSync(path.join(ours, names[2]), 'old', { mode: 0o604 })
    fs.writeFileSync(path.join(theirs, names[2]), 'old', { mode: 0o604 })
    fs.chmodSync(path.join(ours, names[2]), 0o604)
    fs.chmodSync(path.join(theirs, names[2]), 0o604)
    for (const name of names) fs.writeFileSync(path.join(theirs, name), 'x', { mode })
    const res = await writeFiles(names.map((name) => [path.join(ours, name), 'x'] as const), { mode })
    t.deepEqual(res, [undefined, undefined, undefined])
    const m = mode === undefined ? 0o666 : typeof mode === 'string' ? parseInt(mode, 8) : mode
    for (const [i, name] of names.entries()) {
      const got = fs.statSync(path.join(ours, name)).mode & 0o777
      t.is(got, fs.statSync(path.join(theirs, name)).mode & 0o777, `mode ${String(mode)} ${name}: as fs`)
      t.is(got, i === 2 ? 0o604 : m & 0o777 & ~mask, `mode ${String(mode)} ${name}: mode & ~umask`)
    }
  }
})

test('flush: every file written and fsynced; /dev/null refuses the fsync: the EINVAL of fs.promises, for that entry only', async (t) => {
  const rng = mulberry32(SEED ^ 0xf105)
  const ours = freshDir('flush')
  const files = Array.from({ length: 100 }, (_, i) => ({ p: path.join(ours, `f-${i}`), data: randomView(rng, randomSize(rng)) }))
  const before = stats()
  const res = await writeFiles(
    files.map(({ p, data }) => [p, data] as const),
    { flush: true },
  )
  const after = stats()
  t.true(res.every((r) => r === undefined))
  for (const { p, data } of files) {
    sameBytes(t, fs.readFileSync(p), Buffer.from(data.buffer, data.byteOffset, data.byteLength), p)
  }
  if (backend() === 'io_uring') {
    // Open, write (when there is data), fsync and close: at least 3 SQEs a file.
    t.true(after.ops - before.ops >= 3 * files.length, `${after.ops - before.ops} ops`)
  }
  const ok = path.join(ours, 'beside-null')
  for (const flush of [true, false, undefined]) {
    const got = await writeFiles(
      [
        ['/dev/null', 'x'],
        [ok, 'fine'],
        ['/dev/null', ''],
      ],
      { flush },
    )
    const want = [await fsOutcome('/dev/null', 'x', { flush }), null, await fsOutcome('/dev/null', '', { flush })]
    t.deepEqual(got.map(errorSnapshot), want, `flush ${flush}`)
    if (flush) t.is(want[0]?.syscall, 'fsync', 'fs: the fsync fails (harness check)')
    t.is(fs.readFileSync(ok, 'utf8'), 'fine')
  }
})

// ---------------------------------------------------------------------------
// Errors

test('mixed failures at random positions (ENOENT, EISDIR, ENOTDIR, ENOSPC on write, EEXIST with wx): each the rejection of fs.promises.writeFile, the others written', async (t) => {
  const rng = mulberry32(SEED ^ 0xe770)
  const ours = freshDir('mixed')
  const theirs = freshDir('mixed-fs')
  type Case = { kind: string; p: string; fsPath: string; data: Data }
  const cases: Case[] = []
  for (let i = 0; i < 600; i++) {
    const kind = ['missing-dir', 'dir', 'under-file', 'dev-full', 'good', 'good', 'good', 'good'][randInt(rng, 0, 7)]
    const data = rng() < 0.5 ? randomString(rng, 'utf8', randInt(rng, 0, 3000)) : randomView(rng, randomSize(rng))
    let p: string
    if (kind === 'missing-dir') p = path.join(ours, `no-such-dir-${i}`, 'f')
    else if (kind === 'dir') p = freshDir('a-dir')
    else if (kind === 'under-file') p = path.join(plain, `f-${i}`)
    else if (kind === 'dev-full') p = '/dev/full'
    else p = path.join(ours, `ok-${i}`)
    // A good file goes to its own path for fs; a failing one is the same path.
    cases.push({ kind, p, fsPath: kind === 'good' ? path.join(theirs, `ok-${i}`) : p, data })
  }
  const got = await writeFiles(cases.map(({ p, data }) => ({ path: p, data })), { concurrency: 48 })
  t.is(got.length, cases.length)
  const kinds = new Set<string>()
  for (const [i, c] of cases.entries()) {
    const want = await fsOutcome(c.fsPath, c.data)
    if (want !== null) kinds.add(`${want.code} ${want.syscall}`)
    t.deepEqual(errorSnapshot(got[i]), want, `${i}: ${c.kind} ${c.p}`)
    if (c.kind === 'good') sameBytes(t, fs.readFileSync(c.p), fs.readFileSync(c.fsPath), c.p)
  }
  t.deepEqual([...kinds].sort(), ['EISDIR open', 'ENOENT open', 'ENOSPC write', 'ENOTDIR open'], 'every kind of failure came up (harness check)')
  t.is(fs.readFileSync(plain, 'utf8'), 'a regular file')

  // 'wx' over the files just written (EEXIST, untouched) and new ones.
  const wx: Array<{ p: string; old: Buffer | null }> = []
  for (const [i, c] of cases.entries()) {
    if (c.kind === 'good' && rng() < 0.5) wx.push({ p: c.p, old: fs.readFileSync(c.p) })
    else if (rng() < 0.3) wx.push({ p: path.join(ours, `new-${i}`), old: null })
  }
  const res = await writeFiles(wx.map(({ p }) => [p, 'wx data'] as const), { flag: 'wx' })
  for (const [i, { p, old }] of wx.entries()) {
    if (old === null) {
      t.is(res[i], undefined, p)
      t.is(fs.readFileSync(p, 'utf8'), 'wx data')
    } else {
      t.deepEqual(errorSnapshot(res[i]), await fsOutcome(p, 'wx data', { flag: 'wx' }), p)
      t.is((res[i] as NodeJS.ErrnoException).code, 'EEXIST')
      sameBytes(t, fs.readFileSync(p), old, `${p}: untouched`)
    }
  }
})

const EACCES_SCRIPT = `
const fs = require('fs')
const assert = require('assert')
const [repo, readOnly, closedDir, open] = process.argv.slice(1)
assert.notStrictEqual(process.geteuid(), 0, 'the child must run unprivileged')
const lib = require(repo)
const snap = (e) => e && ({
  constructor: e.constructor.name, name: e.name, code: e.code, errno: e.errno, syscall: e.syscall,
  path: e.path, message: e.message, keys: Object.keys(e), string: String(e),
})
;(async () => {
  const paths = [readOnly, closedDir + '/new', open + '/fs-ok']
  const fsOut = []
  for (const p of paths) fsOut.push(await fs.promises.writeFile(p, 'x').then(() => null, snap))
  const ours = await lib.writeFiles([[readOnly, 'x'], [closedDir + '/new', 'x'], [open + '/ok', 'x']])
  console.log(JSON.stringify({ uid: process.geteuid(), fs: fsOut, ours: ours.map((e) => (e === undefined ? null : snap(e))) }))
})()
`

test('permission denied (EACCES), as nobody: the rejections of fs.promises, the other file written', async (t) => {
  const readOnly = path.join(dir, `ro-${counter++}`)
  fs.writeFileSync(readOnly, 'read only')
  fs.chmodSync(readOnly, 0o444)
  const closedDir = freshDir('closed')
  fs.chmodSync(closedDir, 0o555)
  const open = freshDir('open')
  fs.chmodSync(open, 0o777)
  const root = process.getuid?.() === 0
  const res = await spawnAsync(process.execPath, ['-e', EACCES_SCRIPT, REPO, readOnly, closedDir, open], {
    ...(root ? { uid: 65534, gid: 65534 } : {}),
    timeoutMs: 30_000,
  })
  t.is(res.status, 0, `child failed: ${res.error ?? ''} ${res.stderr}`)
  const out = JSON.parse(res.stdout) as { uid: number; fs: Array<{ code: string } | null>; ours: unknown[] }
  t.not(out.uid, 0, 'unprivileged')
  t.deepEqual(out.fs.map((e) => e?.code ?? null), ['EACCES', 'EACCES', null], 'fs is denied (harness check)')
  t.deepEqual(out.ours, out.fs)
  t.is(fs.readFileSync(readOnly, 'utf8'), 'read only')
  t.is(fs.readFileSync(path.join(open, 'ok'), 'utf8'), 'x')
})

test.serial('no descriptor is left open: after successes, failed opens, failed writes and failed fsyncs', async (t) => {
  const rng = mulberry32(SEED ^ 0xfd)
  const ours = freshDir('fds')
  // The engine (its ring and threads) is up before counting.
  await writeFiles([[path.join(ours, 'warm-up'), 'x']])
  const base = fdCount()
  for (const flush of [false, true]) {
    const entries: Array<readonly [string, Data]> = []
    for (let i = 0; i < 400; i++) {
      const r = randInt(rng, 0, 9)
      const data = randomView(rng, randInt(rng, 0, 20_000))
      if (r === 0) entries.push([path.join(ours, `missing-${i}`, 'f'), data])
      else if (r === 1) entries.push(['/dev/full', data])
      else if (r === 2) entries.push(['/dev/null', data])
      else entries.push([path.join(ours, `f-${i}`), data])
    }
    const res = await writeFiles(entries, { flush, concurrency: 64 })
    t.true(res.some((r) => r !== undefined) && res.some((r) => r === undefined), 'failures and successes (harness check)')
  }
  t.is(await settleFdCount(base), base, 'descriptors open after the calls')
})

// ---------------------------------------------------------------------------
// Arguments

/** Bad data, paths and options: each as [name, path ('FILE': a fresh file), data, options]. */
const INVALID: Array<[string, unknown, unknown, unknown?]> = [
  ['data 42', 'FILE', 42],
  ['data {}', 'FILE', {}],
  ['data null', 'FILE', null],
  ['data undefined', 'FILE', undefined],
  ['data true', 'FILE', true],
  ['data an ArrayBuffer (not a view)', 'FILE', new ArrayBuffer(8)],
  ['data a function', 'FILE', function named() {}],
  ['data 10n', 'FILE', 10n],
  ['data a symbol', 'FILE', Symbol('s')],
  ['data a null-prototype object', 'FILE', Object.create(null)],
  ['path 123', 123, 'x'],
  ['path null', null, 'x'],
  ['path with a NUL byte', 'a\u0000b', 'x'],
  ["flag 'bogus'", 'FILE', 'x', { flag: 'bogus' }],
  ["mode 'abc'", 'FILE', 'x', { mode: 'abc' }],
  ['mode -1', 'FILE', 'x', { mode: -1 }],
  ['mode 1.5', 'FILE', 'x', { mode: 1.5 }],
  ["flush 'yes'", 'FILE', 'x', { flush: 'yes' }],
  ["encoding 'bogus'", 'FILE', 'x', { encoding: 'bogus' }],
  ["encoding 'buffer' with a string", 'FILE', 'x', { encoding: 'buffer' }],
  ['options 42', 'FILE', 'x', 42],
  ['data 42 and path 123 (which first)', 123, 42],
  ["data 42 and flush 'yes' (which first)", 'FILE', 42, { flush: 'yes' }],
  ["path 123 and flag 'bogus' (which first)", 123, 'x', { flag: 'bogus' }],
  ["flag 'bogus' and mode 'abc' (which first)", 'FILE', 'x', { flag: 'bogus', mode: 'abc' }],
]

test("bad data, paths and options reject as fs.promises.writeFile does, and nothing of the call is written", async (t) => {
  for (const [name, p, data, options] of INVALID) {
    const files = [path.join(dir, `inv-fs-${counter++}`), path.join(dir, `inv-ours-${counter++}`), path.join(dir, `inv-first-${counter++}`)]
    const a = await outcome(t, `${name} (fs)`, () => fs.promises.writeFile((p === 'FILE' ? files[0] : p) as string, data as string, options as never))
    t.true('error' in a, `${name}: fs rejects (harness check)`)
    // The bad entry last: the good one before it must not be written either.
    const b = await outcome(t, name, () =>
      writeFiles(
        [
          [files[2], 'good'],
          [p === 'FILE' ? files[1] : p, data],
        ] as never,
        options as never,
      ),
    )
    t.deepEqual(b, a, name)
    t.false(fs.existsSync(files[1]) || fs.existsSync(files[2]), `${name}: nothing written`)
  }
})

test('bad entries and options of writeFiles itself: ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE, rejected, not thrown', async (t) => {
  const target = path.join(dir, `never-${counter++}`)
  const cases: Array<[string, () => Promise<unknown>, string, string?]> = [
    ['entries 42', () => writeFiles(42 as never), 'ERR_INVALID_ARG_TYPE', 'The "entries" argument must be an instance of Array. Received type number (42)'],
    ['entries null', () => writeFiles(null as never), 'ERR_INVALID_ARG_TYPE'],
    ['entries a string', () => writeFiles('abc' as never), 'ERR_INVALID_ARG_TYPE'],
    ['an entry 42', () => writeFiles([[target, 'x'], 42] as never), 'ERR_INVALID_ARG_TYPE', 'The "entries[1]" argument must be an instance of Array or Object. Received type number (42)'],
    ['an entry null', () => writeFiles([null] as never), 'ERR_INVALID_ARG_TYPE'],
    ['an entry with no data', () => writeFiles([{ path: target }] as never), 'ERR_INVALID_ARG_TYPE'],
    ['concurrency 0', () => writeFiles([[target, 'x']], { concurrency: 0 }), 'ERR_OUT_OF_RANGE'],
    ['concurrency 1.5', () => writeFiles([[target, 'x']], { concurrency: 1.5 }), 'ERR_OUT_OF_RANGE'],
    ["concurrency '4'", () => writeFiles([[target, 'x']], { concurrency: '4' as never }), 'ERR_INVALID_ARG_TYPE'],
  ]
  for (const [name, call, code, message] of cases) {
    const o = await outcome(t, name, call)
    t.true('error' in o, `${name}: rejects`)
    if ('error' in o) {
      t.is(o.error?.code, code, name)
      if (message !== undefined) t.is(o.error?.message, message, name)
    }
  }
  t.false(fs.existsSync(target), 'nothing written')
  t.deepEqual(await writeFiles([]), [])
  t.deepEqual(await writeFiles(new Set()), [])
})
