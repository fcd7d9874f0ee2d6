// Errors, exactly as fs gives them: the same class, name, code, errno,
// syscall, path, message, own keys and string form, delivered the same way
// (thrown synchronously, or as an 'error' event in the same place among the
// other events).

import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'

import { createReadStream } from 'uring-fs'
import {
  REPO,
  type Run,
  errorSnapshot,
  makeTmpDir,
  mulberry32,
  randomContent,
  removeTmpDir,
  runBoth,
  spawnAsync,
  thrown,
  writeFixture,
} from './helpers'

let dir = ''
let file = ''

test.before(() => {
  dir = makeTmpDir('errors')
  file = writeFixture(dir, 'data.bin', randomContent(mulberry32(1), 100_000))
  fs.mkdirSync(path.join(dir, 'a-dir'))
  fs.symlinkSync('loop-b', path.join(dir, 'loop-a'))
  fs.symlinkSync('loop-a', path.join(dir, 'loop-b'))
})

test.after.always(() => removeTmpDir(dir))

/** uring-fs's error and events must be fs's. */
function sameFailure(t: import('ava').ExecutionContext, uring: Run, expected: Run, what: string): void {
  t.truthy(expected.error, `${what}: fs gives an error (harness check)`)
  t.deepEqual(errorSnapshot(uring.error), errorSnapshot(expected.error), `${what}: error`)
  t.deepEqual(uring.events, expected.events, `${what}: events`)
  t.is(uring.bytesRead, expected.bytesRead, `${what}: bytesRead`)
  t.is(uring.fdAtEnd === null, expected.fdAtEnd === null, `${what}: fd`)
  t.is(uring.destroyed, expected.destroyed, `${what}: destroyed`)
}

// ---------------------------------------------------------------------------
// Failures of open and read

const OPEN_FAILURES: Array<[string, () => unknown]> = [
  ['missing file (ENOENT)', () => path.join(dir, 'missing')],
  ['missing file as a Buffer path', () => Buffer.from(path.join(dir, 'missing'))],
  ['missing file as a file: URL', () => pathToFileURL(path.join(dir, 'missing'))],
  ['a path through a file (ENOTDIR)', () => path.join(file, 'child')],
  ['a name too long (ENAMETOOLONG)', () => path.join(dir, 'x'.repeat(300))],
  ['a symlink loop (ELOOP)', () => path.join(dir, 'loop-a')],
  ['an empty path (ENOENT)', () => ''],
]

for (const [name, target] of OPEN_FAILURES) {
  test(`${name}: same error and events as fs`, async (t) => {
    const { fs: a, uring: b } = await runBoth(target())
    sameFailure(t, b, a, name)
    t.is(b.error?.syscall, 'open')
    t.deepEqual(b.events, ['resume', 'error', 'close'])
    t.true(b.stream.pending, 'still pending: never opened')
  })
}

test('a directory: EISDIR on read, same error and events as fs', async (t) => {
  const { fs: a, uring: b } = await runBoth(path.join(dir, 'a-dir'))
  sameFailure(t, b, a, 'directory')
  t.is(b.error?.code, 'EISDIR')
  t.is(b.error?.syscall, 'read')
  t.deepEqual(b.events, ['resume', 'open', 'ready', 'error', 'close'])
})

test('a directory with a range: EISDIR, same as fs', async (t) => {
  const { fs: a, uring: b } = await runBoth(path.join(dir, 'a-dir'), { start: 10, end: 20, encoding: 'utf8' })
  sameFailure(t, b, a, 'directory with range')
})

test('a FIFO with a start: ESPIPE on read, same error and events as fs', async (t) => {
  // fs reads at a start with pread(2), which a pipe refuses; io_uring would
  // read the pipe whatever the offset.
  const fifo = path.join(dir, 'fifo-start')
  const mk = await spawnAsync('mkfifo', [fifo])
  t.is(mk.status, 0, `mkfifo: ${mk.error ?? mk.stderr}`)
  // A writer that stays open and writes nothing (O_RDWR on a FIFO does not
  // wait for a reader), so that opening it for reading does not wait either.
  const writer = fs.openSync(fifo, 'r+')
  try {
    for (const options of [{ start: 0 }, { start: 5, end: 10 }, { start: 0, highWaterMark: 1 << 20 }]) {
      const { fs: a, uring: b } = await runBoth(fifo, options)
      sameFailure(t, b, a, `FIFO ${JSON.stringify(options)}`)
      t.is(b.error?.code, 'ESPIPE')
      t.is(b.error?.syscall, 'read')
    }
  } finally {
    fs.closeSync(writer)
  }
})

test("flags 'w' (write-only): EBADF on read, same as fs", async (t) => {
  // 'w' truncates: each implementation gets its own file.
  const f1 = writeFixture(dir, 'w1.bin', 'hello')
  const f2 = writeFixture(dir, 'w2.bin', 'hello')
  const { fs: a } = await runBoth(f1, { flags: 'w' })
  const { uring: b } = await runBoth(f2, { flags: 'w' })
  sameFailure(t, b, a, "flags 'w'")
  t.is(b.error?.code, 'EBADF')
})

// ---------------------------------------------------------------------------
// Invalid flags and mode: fs reports them as an 'error' event

const ASYNC_INVALID: Array<[string, Record<string, unknown>]> = [
  ["flags: 'bogus'", { flags: 'bogus' }],
  ['flags: {}', { flags: {} }],
  ["mode: 'abc'", { mode: 'abc' }],
  ['mode: -1', { mode: -1 }],
  ['mode: 1.5', { mode: 1.5 }],
  ['mode: 2 ** 32', { mode: 2 ** 32 }],
  ['mode: true', { mode: true }],
]

for (const [name, options] of ASYNC_INVALID) {
  test(`${name}: delivered like fs (same error, same way)`, async (t) => {
    const sync = [thrown(() => fs.createReadStream(file, options)), thrown(() => createReadStream(file, options))]
    t.deepEqual(sync[1], sync[0], 'thrown synchronously (or not) like fs')
    if (sync[0] !== 'no throw') return
    const { fs: a, uring: b } = await runBoth(file, options)
    sameFailure(t, b, a, name)
    t.regex(String(b.error?.code), /^ERR_/)
  })
}

test('numeric flags and an octal-string mode are accepted like fs', async (t) => {
  const options = { flags: fs.constants.O_RDONLY, mode: '644' }
  const { fs: a, uring: b } = await runBoth(file, options)
  t.is(a.error, null)
  t.is(b.error, null)
  t.deepEqual(b.events, a.events)
  t.is(b.bytesRead, 100_000)
})

// ---------------------------------------------------------------------------
// Invalid arguments: thrown synchronously

const SYNC_INVALID: Array<[string, unknown[]]> = [
  ['path 123', [123]],
  ['path {}', [{}]],
  ['path null', [null]],
  ['path undefined', [undefined]],
  ['path true', [true]],
  ['path with a NUL byte', ['a\u0000b']],
  ['Buffer path with a NUL byte', [Buffer.from('a\u0000b')]],
  ['file: URL with an encoded NUL', [new URL('file:///tmp/a%00b')]],
  ['http: URL', [new URL('http://example.com/')]],
  ['options 42', ['FILE', 42]],
  ['options true', ['FILE', true]],
  ["encoding 'bogus' (string options)", ['FILE', 'bogus']],
  ["encoding 'bogus'", ['FILE', { encoding: 'bogus' }]],
  ["encoding 'buffer'", ['FILE', { encoding: 'buffer' }]],
  ['start: -1', ['FILE', { start: -1 }]],
  ['start: 1.5', ['FILE', { start: 1.5 }]],
  ["start: '1'", ['FILE', { start: '1' }]],
  ['start: NaN', ['FILE', { start: NaN }]],
  ['start: Infinity', ['FILE', { start: Infinity }]],
  ['start: 2 ** 53', ['FILE', { start: 2 ** 53 }]],
  ['start: null', ['FILE', { start: null }]],
  ['end: -1', ['FILE', { end: -1 }]],
  ['end: 1.5', ['FILE', { end: 1.5 }]],
  ["end: '3'", ['FILE', { end: '3' }]],
  ['end: -Infinity', ['FILE', { end: -Infinity }]],
  ['start > end', ['FILE', { start: 5, end: 2 }]],
  ["fd: 'x'", ['FILE', { fd: 'x' }]],
  ['fd: -1', ['FILE', { fd: -1 }]],
  ['fd: 1.5', ['FILE', { fd: 1.5 }]],
  ['fd: 2 ** 31', ['FILE', { fd: 2 ** 31 }]],
  ['fd: {}', ['FILE', { fd: {} }]],
  ['fd: NaN', ['FILE', { fd: NaN }]],
  ['highWaterMark: -1', ['FILE', { highWaterMark: -1 }]],
  ["highWaterMark: 'x'", ['FILE', { highWaterMark: 'x' }]],
  ['highWaterMark: 1.5', ['FILE', { highWaterMark: 1.5 }]],
  ['highWaterMark: NaN', ['FILE', { highWaterMark: NaN }]],
  ["signal: 'x'", ['FILE', { signal: 'x' }]],
  ['signal: null', ['FILE', { signal: null }]],
  ['signal: {}', ['FILE', { signal: {} }]],
]

for (const [name, args] of SYNC_INVALID) {
  test(`${name}: throws synchronously what fs throws`, (t) => {
    const real = args.map((a) => (a === 'FILE' ? file : a))
    const expected = thrown(() => (fs.createReadStream as (...a: unknown[]) => unknown)(...real))
    const actual = thrown(() => (createReadStream as (...a: unknown[]) => unknown)(...real))
    t.not(expected, 'no throw', 'fs throws (harness check)')
    t.deepEqual(actual, expected)
  })
}

const SYNC_VALID: Array<[string, unknown[]]> = [
  ['options as a function (ignored)', ['FILE', () => {}]],
  ['options null', ['FILE', null]],
  ['fd: null with a path', ['FILE', { fd: null }]],
  ['autoClose: non-boolean', ['FILE', { autoClose: 'x' }]],
  ['encoding: null', ['FILE', { encoding: null }]],
  ["encoding: ''", ['FILE', { encoding: '' }]],
  ['end: Infinity', ['FILE', { start: 1, end: Infinity }]],
]

for (const [name, args] of SYNC_VALID) {
  test(`${name}: accepted like fs`, (t) => {
    const real = args.map((a) => (a === 'FILE' ? file : a))
    t.is(thrown(() => (fs.createReadStream as (...a: unknown[]) => unknown)(...real)), 'no throw')
    t.is(thrown(() => (createReadStream as (...a: unknown[]) => unknown)(...real)), 'no throw')
  })
}

// ---------------------------------------------------------------------------
// Permission denied

const EACCES_SCRIPT = `
const assert = require('assert')
const fs = require('fs')
const [repo, file] = process.argv.slice(1)
assert.notStrictEqual(process.getuid(), 0, 'the child must run unprivileged')
assert.notStrictEqual(process.geteuid(), 0, 'the child must run unprivileged')
const { createReadStream } = require(repo)
const snap = (e) => ({
  constructor: e.constructor.name, name: e.name, code: e.code, errno: e.errno, syscall: e.syscall,
  path: e.path, message: e.message, keys: Object.keys(e), string: String(e),
})
const run = (factory) => new Promise((resolve) => {
  const s = factory(file)
  const events = []
  let error = null
  for (const ev of ['open', 'ready', 'data', 'end', 'close', 'error']) {
    s.on(ev, (arg) => { events.push(ev); if (ev === 'error') error = snap(arg); if (ev === 'close') setImmediate(() => resolve({ events, error, fd: s.fd })) })
  }
})
;(async () => {
  const fsRun = await run(fs.createReadStream)
  const uringRun = await run(createReadStream)
  console.log(JSON.stringify({ uid: process.getuid(), fs: fsRun, uring: uringRun }))
})()
`

test('permission denied (EACCES): same error and events as fs', async (t) => {
  const f = writeFixture(dir, 'secret.bin', 'top secret')
  fs.chmodSync(f, 0o000)
  const root = process.getuid?.() === 0
  const res = await spawnAsync(process.execPath, ['-e', EACCES_SCRIPT, REPO, f], {
    // As root, the check runs as nobody: root is never denied.
    ...(root ? { uid: 65534, gid: 65534 } : {}),
    timeoutMs: 30_000,
  })
  t.is(res.status, 0, `child failed: ${res.error ?? ''} ${res.stderr}`)
  const out = JSON.parse(res.stdout) as { uid: number; fs: Record<string, unknown>; uring: Record<string, unknown> }
  t.not(out.uid, 0)
  t.is((out.fs.error as { code: string }).code, 'EACCES', 'fs is denied (harness check)')
  t.deepEqual(out.uring, out.fs)
})
