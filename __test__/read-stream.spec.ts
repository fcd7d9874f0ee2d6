// Bytes, options, events and properties: every scenario runs through
// fs.createReadStream and through uring-fs's createReadStream, and what fs
// does is the expected value.

import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { pipeline } from 'node:stream/promises'

import { ReadStream, createReadStream } from 'uring-fs'
import {
  IMPLS,
  REPO,
  type Factory,
  type Run,
  collector,
  concat,
  fdTarget,
  fsFactory,
  makeTmpDir,
  mulberry32,
  randInt,
  randomContent,
  readAll,
  record,
  removeTmpDir,
  runBoth,
  spawnAsync,
  runStream,
  testSeed,
  uringFactory,
  writeFixture,
} from './helpers'
import { engineTest } from './engine-test'

const SIZES = [0, 1, 4095, 4096, 65535, 65536, 65537, 3 * 1024 * 1024 + 12345]
const SEED = testSeed()

let dir = ''
const files = new Map<number, string>()
let textFile = ''

test.before(() => {
  dir = makeTmpDir('read')
  for (const size of SIZES) {
    files.set(size, writeFixture(dir, `random-${size}.bin`, randomContent(mulberry32(SEED + size), size)))
  }
  // Text with 1-, 2-, 3- and 4-byte UTF-8 sequences, so small chunks split characters.
  const rng = mulberry32(SEED ^ 0x5eed)
  const alphabet = ['a', 'Z', ' ', '\n', 'é', 'ß', '€', '中', '文', '😀', '🦀', '\u0000']
  let text = ''
  while (Buffer.byteLength(text) < 100_000) text += alphabet[randInt(rng, 0, alphabet.length - 1)]
  textFile = writeFixture(dir, 'text.txt', text)
})

test.after.always(() => removeTmpDir(dir))

function file(size: number): string {
  const f = files.get(size)
  if (f === undefined) throw new Error(`no fixture of ${size} bytes`)
  return f
}

/** Asserts two byte (or string) sequences are equal without diffing megabytes. */
function sameBytes(t: ExecutionContext, actual: Buffer | string, expected: Buffer | string, what: string): void {
  t.is(typeof actual, typeof expected, `${what}: chunk type`)
  if (typeof actual === 'string' || typeof expected === 'string') {
    t.true(actual === expected, `${what}: strings differ (${actual.length} vs ${expected.length} chars)`)
    return
  }
  if (actual.equals(expected)) {
    t.pass()
    return
  }
  let i = 0
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++
  t.fail(`${what}: ${actual.length} bytes, fs gave ${expected.length}; first difference at offset ${i}`)
}

/** uring-fs's run must be fs's: same events, chunks, counters and error. */
function sameRun(t: ExecutionContext, uring: Run, expected: Run, what: string): void {
  t.deepEqual(uring.events, expected.events, `${what}: events`)
  t.deepEqual(uring.lengths, expected.lengths, `${what}: chunk lengths`)
  sameBytes(t, concat(uring.chunks), concat(expected.chunks), what)
  t.is(uring.bytesRead, expected.bytesRead, `${what}: bytesRead`)
  t.is(uring.pos, expected.pos, `${what}: pos`)
  t.is(uring.error?.code, expected.error?.code, `${what}: error`)
  t.is(uring.destroyed, expected.destroyed, `${what}: destroyed`)
  // Numbers may differ (each run opens its own descriptor): open or not.
  t.is(uring.fdAtEnd === null, expected.fdAtEnd === null, `${what}: fd at the end`)
}

// ---------------------------------------------------------------------------
// Bytes

for (const size of SIZES) {
  test(`default options: same bytes, chunks and events as fs (${size} bytes)`, async (t) => {
    const { fs: a, uring: b } = await runBoth(file(size))
    sameRun(t, b, a, `${size} bytes`)
    // fs's own result is the file (a check of the harness itself).
    sameBytes(t, concat(a.chunks), fs.readFileSync(file(size)), 'fs vs readFileSync')
    t.true(b.chunks.every((c) => Buffer.isBuffer(c)), 'chunks are Buffers')
    t.deepEqual(b.events.slice(0, 2), ['resume', 'open'])
    t.deepEqual(b.events.slice(-2), ['end', 'close'])
  })
}

function randomOptions(rng: () => number, size: number): Record<string, number> {
  const o: Record<string, number> = {}
  // Beyond EOF sometimes, on both ends.
  if (rng() < 0.7) o.start = randInt(rng, 0, size + 16)
  if (rng() < 0.7) o.end = randInt(rng, o.start ?? 0, size + 16)
  if (rng() < 0.8) {
    // Small chunks on small files; at most a few thousand chunks on big ones.
    const span = Math.max(1, (o.end ?? size) - (o.start ?? 0) + 1)
    const min = Math.max(1, Math.ceil(span / 3000))
    o.highWaterMark = rng() < 0.3 ? randInt(rng, min, min + 16) : randInt(rng, min, 256 * 1024)
  }
  return o
}

for (const size of SIZES) {
  test(`random start/end/highWaterMark: same as fs (${size} bytes, seed ${SEED})`, async (t) => {
    const rng = mulberry32(SEED ^ (size * 2654435761))
    for (let i = 0; i < 8; i++) {
      const options = randomOptions(rng, size)
      const { fs: a, uring: b } = await runBoth(file(size), options)
      sameRun(t, b, a, `${size} bytes ${JSON.stringify(options)} (seed ${SEED})`)
    }
  })
}

const RANGES: Array<[string, (size: number) => Record<string, number>]> = [
  ['start beyond EOF', (n) => ({ start: n + 10 })],
  ['start at EOF', (n) => ({ start: n })],
  ['end beyond EOF', (n) => ({ end: n + 100_000 })],
  ['start and end beyond EOF', (n) => ({ start: n + 5, end: n + 100 })],
  ['start === end (first byte)', () => ({ start: 0, end: 0 })],
  ['start === end (middle byte)', (n) => ({ start: n >> 1, end: n >> 1 })],
  ['start === end (last byte)', (n) => ({ start: n - 1, end: n - 1 })],
  ['start === end beyond EOF', (n) => ({ start: n + 1, end: n + 1 })],
  ['end only', (n) => ({ end: n >> 2 })],
  ['end: Infinity', () => ({ start: 3, end: Infinity })],
  ['highWaterMark 1', () => ({ highWaterMark: 1, end: 300 })],
  ['highWaterMark 0', () => ({ highWaterMark: 0 })],
  ['highWaterMark 0 with a range', () => ({ highWaterMark: 0, start: 5, end: 5 })],
  ['highWaterMark larger than the file', (n) => ({ highWaterMark: n * 2 + 1 })],
  ['highWaterMark 4096 unaligned start', () => ({ highWaterMark: 4096, start: 4095 })],
]

for (const [name, make] of RANGES) {
  test(`${name}: same as fs`, async (t) => {
    for (const size of [4096, 65537]) {
      const options = make(size)
      const { fs: a, uring: b } = await runBoth(file(size), options)
      sameRun(t, b, a, `${size} bytes ${JSON.stringify(options)}`)
    }
  })
}

test('readAhead (uring-fs only) changes nothing visible: same chunks as fs', async (t) => {
  const size = 3 * 1024 * 1024 + 12345
  const a = await runStream(fsFactory, file(size), { highWaterMark: 16 * 1024 })
  for (const readAhead of [1, 4096, 16 * 1024, 100_000, 64 * 1024 * 1024]) {
    const b = await runStream(uringFactory, file(size), { highWaterMark: 16 * 1024, readAhead })
    sameRun(t, b, a, `readAhead ${readAhead}`)
  }
})

// ---------------------------------------------------------------------------
// Encodings

const ENCODINGS = ['utf8', 'hex', 'base64', 'base64url', 'latin1', 'ascii', 'utf16le', 'ucs2'] as const

for (const encoding of ENCODINGS) {
  test(`encoding '${encoding}': same string chunks as fs`, async (t) => {
    for (const [target, name] of [
      [textFile, 'text'],
      [file(65537), 'binary'],
    ] as const) {
      for (const extra of [{}, { highWaterMark: 7 }, { highWaterMark: 1000, start: 3, end: 20_004 }]) {
        const options = { encoding, ...extra }
        const { fs: a, uring: b } = await runBoth(target, options)
        const what = `${name} ${JSON.stringify(options)}`
        t.true(b.chunks.length > 0 && b.chunks.every((c) => typeof c === 'string'), `${what}: string chunks`)
        t.deepEqual(b.chunks, a.chunks, `${what}: chunks`)
        t.deepEqual(b.events, a.events, `${what}: events`)
        t.is(b.bytesRead, a.bytesRead, `${what}: bytesRead`)
      }
    }
  })
}

test('encoding given as the options string, and setEncoding(): same as fs', async (t) => {
  const { fs: a, uring: b } = await runBoth(textFile, 'utf8')
  t.true(typeof b.chunks[0] === 'string')
  t.deepEqual(b.chunks, a.chunks)

  const read = async (factory: Factory) => {
    const s = factory(textFile, { highWaterMark: 5 })
    s.setEncoding('utf8')
    return record(s)
  }
  const c = await read(fsFactory)
  const d = await read(uringFactory)
  t.true(typeof d.chunks[0] === 'string')
  t.deepEqual(d.chunks, c.chunks)
})

// ---------------------------------------------------------------------------
// Ways of consuming

test('for await: same bytes as fs', async (t) => {
  for (const size of SIZES) {
    for (const options of [undefined, { highWaterMark: 1000, start: 17 }]) {
      const expected = await readAll(fs.createReadStream(file(size), options))
      const actual = await readAll(createReadStream(file(size), options))
      sameBytes(t, actual, expected, `${size} bytes ${JSON.stringify(options)}`)
    }
  }
})

test('.pipe() into a Writable: same bytes as fs, source closes', async (t) => {
  for (const size of [0, 65537, 3 * 1024 * 1024 + 12345]) {
    const results: Buffer[] = []
    for (const [name, factory] of IMPLS) {
      const { writable, chunks } = collector()
      const src = factory(file(size))
      const closed = new Promise<void>((resolve) => src.on('close', resolve))
      const returned = src.pipe(writable)
      t.is(returned, writable, `${name}: pipe returns the destination`)
      await new Promise<void>((resolve, reject) => {
        writable.on('finish', resolve)
        writable.on('error', reject)
      })
      await closed
      results.push(Buffer.concat(chunks))
    }
    sameBytes(t, results[1], results[0], `${size} bytes`)
  }
})

test('stream.pipeline (promises) into a Writable: same bytes as fs', async (t) => {
  for (const size of [0, 4095, 65536, 3 * 1024 * 1024 + 12345]) {
    const results: Buffer[] = []
    for (const [, factory] of IMPLS) {
      const { writable, chunks } = collector()
      await pipeline(factory(file(size), { highWaterMark: 10_000 }), writable)
      results.push(Buffer.concat(chunks))
    }
    sameBytes(t, results[1], results[0], `${size} bytes`)
  }
})

test("paused mode ('readable' + read()): same bytes as fs; read(n) gives the same chunk sizes", async (t) => {
  const size = 3 * 1024 * 1024 + 12345
  const drain = (factory: Factory, n?: number) =>
    new Promise<number[] | Buffer>((resolve, reject) => {
      const s = factory(file(size))
      const chunks: Buffer[] = []
      s.on('readable', () => {
        let c: Buffer | null
        while ((c = s.read(n)) !== null) chunks.push(c)
      })
      s.on('error', reject)
      s.on('end', () => resolve(n === undefined ? Buffer.concat(chunks) : chunks.map((c) => c.length)))
    })
  sameBytes(t, (await drain(uringFactory)) as Buffer, (await drain(fsFactory)) as Buffer, 'read()')
  const sizesFs = (await drain(fsFactory, 10_000)) as number[]
  const sizesUring = (await drain(uringFactory, 10_000)) as number[]
  t.deepEqual(sizesUring, sizesFs, 'read(10000) chunk sizes')
})

// ---------------------------------------------------------------------------
// Events and properties

test('events, pending, path, open fd and bytesRead are those of fs', async (t) => {
  const size = 65537
  const { fs: a, uring: b } = await runBoth(file(size))
  t.deepEqual(b.events, a.events)
  t.deepEqual(
    b.events.filter((e) => e !== 'data'),
    ['resume', 'open', 'ready', 'end', 'close'],
  )
  t.true(b.pendingAtStart, 'pending before open')
  t.false(b.pendingAtOpen as boolean, "pending is false in 'open'")
  t.is(typeof b.openArg, 'number', "'open' gets the fd")
  t.true(Number.isInteger(b.openArg) && (b.openArg as number) > 2)
  t.is(b.stream.path, file(size))
  t.is(b.bytesRead, size)
  t.is(b.fdAtEnd, null, 'fd is null after close')
  t.is(b.pendingAtStart, a.pendingAtStart)
  t.is(b.pendingAtOpen, a.pendingAtOpen)
  t.is(typeof b.openArg, typeof a.openArg)
  t.is(b.stream.start, a.stream.start)
  t.is(b.stream.end, a.stream.end)
  t.is(b.stream.readableHighWaterMark, a.stream.readableHighWaterMark)
  t.is(b.stream.readableObjectMode, a.stream.readableObjectMode)
  t.is((b.stream as unknown as { autoClose: boolean }).autoClose, (a.stream as unknown as { autoClose: boolean }).autoClose)
  t.is((b.stream as unknown as { flags: unknown }).flags, (a.stream as unknown as { flags: unknown }).flags)
  t.is((b.stream as unknown as { mode: unknown }).mode, (a.stream as unknown as { mode: unknown }).mode)
})

test("'open' is emitted with the fd that is open on the file", async (t) => {
  const f = file(65536)
  const s = createReadStream(f)
  const [target, fdProp, arg] = await new Promise<[string | null, number | null, number]>((resolve) =>
    s.once('open', (fd: number) => resolve([fdTarget(fd), s.fd, fd])),
  )
  t.is(target, fs.realpathSync(f))
  t.is(fdProp, arg, "stream.fd is set before 'open'")
  s.resume()
  await new Promise((resolve) => s.on('close', () => resolve(undefined)))
})

test('ReadStream is a Readable constructible with new, like fs.ReadStream', async (t) => {
  const s = new ReadStream(file(4096), { start: 1 })
  t.true(s instanceof ReadStream)
  t.true(s instanceof (await import('node:stream')).Readable)
  t.true(createReadStream(file(1)) instanceof ReadStream)
  const data = await readAll(s)
  sameBytes(t, data as Buffer, await readAll(fs.createReadStream(file(4096), { start: 1 })), 'bytes')
})

test('Buffer, Uint8Array and file: URL paths: same bytes and same `path` property as fs', async (t) => {
  for (const p of [Buffer.from(file(65537)), pathToFileURL(file(65537)), new Uint8Array(Buffer.from(file(4096)))]) {
    const { fs: a, uring: b } = await runBoth(p)
    sameRun(t, b, a, String(p))
    // The same property as fs: the path as given (a Uint8Array stays one).
    t.deepEqual(b.stream.path, a.stream.path, `path property for ${p.constructor.name}`)
  }
})

test("emitClose: false: no 'close' (as fs), the fd is still closed", async (t) => {
  // A file of its own: other tests may reuse the fd number, not on this file.
  const own = writeFixture(dir, 'emitclose.bin', randomContent(mulberry32(SEED + 5), 65537))
  const { fs: a, uring: b } = await runBoth(own, { emitClose: false }, { quietMs: 200 })
  t.deepEqual(b.events, a.events)
  t.false(b.events.includes('close'))
  t.is(b.events.at(-1), 'end')
  const f = fs.realpathSync(own)
  t.not(fdTarget(b.openArg as number), f, 'the descriptor was closed')
  t.is(b.fdAtEnd, a.fdAtEnd)
  t.is(b.destroyed, a.destroyed)
})

test("autoClose: false: no close, fd left open (as fs) until destroy()", async (t) => {
  const f = writeFixture(dir, 'autoclose.bin', randomContent(mulberry32(SEED + 7), 100_000))
  const real = fs.realpathSync(f)
  const runs: Run[] = []
  const afterDestroy: string[][] = []
  for (const [name, factory] of IMPLS) {
    const run = await runStream(factory, f, { autoClose: false }, { quietMs: 200 })
    runs.push(run)
    const s = run.stream
    t.is(typeof s.fd, 'number', `${name}: fd kept`)
    t.is(fdTarget(s.fd as number), real, `${name}: fd still open on the file`)
    t.false(s.destroyed, `${name}: not destroyed`)
    t.notThrows(() => fs.fstatSync(s.fd as number))
    const fd = s.fd as number
    const events: string[] = []
    s.on('close', () => events.push('close'))
    await new Promise<void>((resolve) => {
      s.on('close', () => resolve())
      s.destroy()
    })
    t.not(fdTarget(fd), real, `${name}: destroy() closed it`)
    t.is(s.fd, null)
    afterDestroy.push(events)
  }
  t.deepEqual(runs[1].events, runs[0].events)
  t.false(runs[1].events.includes('close'))
  t.deepEqual(afterDestroy[1], afterDestroy[0])
  sameBytes(t, concat(runs[1].chunks), concat(runs[0].chunks), 'bytes')
})

// ---------------------------------------------------------------------------
// The fd option

test('fd + start: same bytes as fs; the fd is closed after the end (autoClose default)', async (t) => {
  const f = writeFixture(dir, 'fd-start.bin', randomContent(mulberry32(SEED + 11), 200_000))
  const real = fs.realpathSync(f)
  const runs: Run[] = []
  for (const [name, factory] of IMPLS) {
    const fd = fs.openSync(f, 'r')
    const run = await runStream(factory, null, { fd, start: 1234, highWaterMark: 30_000 })
    runs.push(run)
    t.true(run.events.includes('close'), `${name}: closes`)
    t.not(fdTarget(fd), real, `${name}: fd ${fd} closed after the end`)
    t.is(run.openArg, undefined, `${name}: no 'open' for a given fd`)
  }
  sameRun(t, runs[1], runs[0], 'fd + start')
  sameBytes(t, concat(runs[1].chunks) as Buffer, fs.readFileSync(f).subarray(1234), 'vs the file')
})

test('fd + start + end, autoClose: false: the fd stays open and usable; closed by the caller', async (t) => {
  const f = writeFixture(dir, 'fd-noclose.bin', randomContent(mulberry32(SEED + 12), 150_000))
  const real = fs.realpathSync(f)
  const runs: Run[] = []
  for (const [name, factory] of IMPLS) {
    const fd = fs.openSync(f, 'r')
    try {
      const run = await runStream(factory, null, { fd, start: 100, end: 99_999, autoClose: false }, { quietMs: 200 })
      runs.push(run)
      t.false(run.events.includes('close'), `${name}: no close`)
      t.is(fdTarget(fd), real, `${name}: fd still open`)
      t.is(fs.fstatSync(fd).size, 150_000, `${name}: fstat works`)
      t.is(run.stream.fd, fd)
    } finally {
      fs.closeSync(fd)
    }
  }
  sameRun(t, runs[1], runs[0], 'fd autoClose:false')
})

test('fd without start: reads from the current file position and advances it, as fs', async (t) => {
  const f = writeFixture(dir, 'fd-pos.bin', randomContent(mulberry32(SEED + 13), 100_000))
  const runs: Run[] = []
  const nextBytes: Buffer[] = []
  for (const [, factory] of IMPLS) {
    const fd = fs.openSync(f, 'r')
    try {
      fs.readSync(fd, Buffer.alloc(1000), 0, 1000, null) // move the position to 1000
      const run = await runStream(factory, null, { fd, end: 5000, highWaterMark: 1024, autoClose: false }, { quietMs: 200 })
      runs.push(run)
      const next = Buffer.alloc(16)
      fs.readSync(fd, next, 0, 16, null) // where did the stream leave the position?
      nextBytes.push(next)
    } finally {
      fs.closeSync(fd)
    }
  }
  sameRun(t, runs[1], runs[0], 'fd without start')
  t.deepEqual(nextBytes[1], nextBytes[0], 'file position after the stream')
  t.true(runs[0].bytesRead > 0)
})

/**
 * Runs `node -e script` (which reads fd 0) once per implementation; stdin is
 * a descriptor `stdin()` opens afresh for each (a shared one would share its
 * file position), or a pipe fed `input`.
 */
async function runChildOnStdin(script: string, stdin: { open: () => number } | { input: Buffer }): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = []
  for (const impl of ['fs', 'uring-fs']) {
    const fd = 'open' in stdin ? stdin.open() : null
    try {
      const res = await spawnAsync(process.execPath, ['-e', script, impl, REPO], {
        stdio: [fd ?? 'pipe', 'pipe', 'pipe'],
        input: 'input' in stdin ? stdin.input : undefined,
        timeoutMs: 30_000,
      })
      if (res.status !== 0) throw new Error(`${impl} child failed (${res.status} ${res.signal}): ${res.stderr}`)
      out.push(JSON.parse(res.stdout))
    } finally {
      if (fd !== null) fs.closeSync(fd)
    }
  }
  return out
}

const STDIN_SCRIPT = `
const [impl, repo] = process.argv.slice(1)
const { createReadStream } = impl === 'fs' ? require('fs') : require(repo)
const s = createReadStream(null, { fd: -0, highWaterMark: 10000 })
const hash = require('crypto').createHash('sha256')
let bytes = 0
s.on('data', (c) => { hash.update(c); bytes += c.length })
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code || e.message, fd: s.fd })); process.exit(0) })
s.on('end', () => console.log(JSON.stringify({ bytes, sha: hash.digest('hex'), fd: s.fd, bytesRead: s.bytesRead })))
`

test('fd: -0 is fd 0, as fs (stdin redirected from a file)', async (t) => {
  const f = writeFixture(dir, 'stdin.bin', randomContent(mulberry32(SEED + 14), 123_457))
  const [a, b] = await runChildOnStdin(STDIN_SCRIPT, { open: () => fs.openSync(f, 'r') })
  t.deepEqual(b, a)
  t.is(a.bytes, 123_457)
  t.is(a.fd, 0)
  t.is(a.sha, createHash('sha256').update(fs.readFileSync(f)).digest('hex'))
})

test('fd of a pipe (not seekable): same bytes as fs', async (t) => {
  const input = randomContent(mulberry32(SEED + 15), 300_001)
  const [a, b] = await runChildOnStdin(STDIN_SCRIPT, { input })
  t.deepEqual(b, a)
  t.is(a.sha, createHash('sha256').update(input).digest('hex'))
})

// A path opened without `start` that turns out to be a FIFO is read at its
// current position, one read at a time, as fs reads it (positional reads
// would fail with ESPIPE, or come out of order on io_uring).
test.serial('a FIFO path (not seekable): same bytes as fs', async (t) => {
  // Serial (ava runs serial tests first, alone): under load the reads may
  // happen to come back in order, which would hide the difference. Three
  // rounds, each of which must match.
  t.timeout(60_000)
  const src = writeFixture(dir, 'fifo-src.bin', randomContent(mulberry32(SEED + 16), 300_001))
  const expected = fs.readFileSync(src)
  for (let round = 0; round < 3; round++) {
    const results: Run[] = []
    for (const [name, factory] of IMPLS) {
      const fifo = path.join(dir, `fifo-${round}-${name}`)
      const mk = await spawnAsync('mkfifo', [fifo])
      t.is(mk.status, 0, `mkfifo: ${mk.error ?? mk.stderr}`)
      // The writer: a separate process, so its blocking open happens there.
      const writer = spawn('sh', ['-c', 'cat "$0" > "$1"', src, fifo], { stdio: 'ignore' })
      const exited = new Promise((resolve) => writer.on('exit', resolve))
      results.push(await runStream(factory, fifo, { highWaterMark: 16 * 1024 }))
      await exited
    }
    sameBytes(t, concat(results[0].chunks), expected, `round ${round}: fs vs the source`)
    sameBytes(t, concat(results[1].chunks), concat(results[0].chunks), `round ${round}: uring-fs vs fs`)
    t.deepEqual(results[1].events.filter((e) => e !== 'data'), results[0].events.filter((e) => e !== 'data'))
    t.is(results[1].error?.code, results[0].error?.code)
  }
})

// The engine lets only one io-wq worker per core run large reads
// (driver::cap_iowq_workers). More FIFO streams than cores, with 1 MiB
// chunks and writers that write nothing yet, must not hold those workers:
// a file stream started after them finishes while they still wait.
// The engine's own: fs (and so the JavaScript fallback) reads FIFOs on its
// four thread-pool threads, which block every other fs call meanwhile.
engineTest('FIFO streams waiting for data do not hold back a file stream', async (t) => {
  t.timeout(60_000)
  const n = os.availableParallelism() + 2
  const writers: number[] = []
  const waiting: Array<Promise<Buffer | string>> = []
  try {
    for (let i = 0; i < n; i++) {
      const fifo = path.join(dir, `fifo-waiting-${i}`)
      const mk = await spawnAsync('mkfifo', [fifo])
      t.is(mk.status, 0, `mkfifo: ${mk.error ?? mk.stderr}`)
      // O_RDWR on a FIFO does not wait for a reader, and keeps it open.
      writers.push(fs.openSync(fifo, 'r+'))
      const s = createReadStream(fifo, { highWaterMark: 1 << 20 })
      waiting.push(readAll(s))
    }
    await new Promise((r) => setTimeout(r, 100)) // their reads are in the kernel
    const big = file(3 * 1024 * 1024 + 12345)
    const got = await Promise.race([
      readAll(createReadStream(big, { highWaterMark: 1 << 20 })),
      new Promise<null>((r) => setTimeout(() => r(null), 20_000)),
    ])
    t.not(got, null, 'the file stream did not finish within 20 s')
    if (got !== null) sameBytes(t, got, fs.readFileSync(big), 'file stream')
  } finally {
    for (const w of writers) {
      fs.writeSync(w, 'x')
      fs.closeSync(w)
    }
  }
  for (const b of await Promise.all(waiting)) t.is(b.toString(), 'x')
})

// At the current position every read is a chunk as it returns, as in fs: on
// a pipe or terminal that stays open a short write is delivered at once
// (interactive stdin must arrive).
test('fd of a pipe kept open: a short write is delivered at once, as fs does', async (t) => {
  t.timeout(30_000)
  const script = `
const [impl, repo] = process.argv.slice(1)
const { createReadStream } = impl === 'fs' ? require('fs') : require(repo)
createReadStream(null, { fd: 0 }).once('data', (c) => { console.log(JSON.stringify({ first: c.length })); process.exit(0) })
`
  const firsts: unknown[] = []
  for (const impl of ['fs', 'uring-fs']) {
    const child = spawn(process.execPath, ['-e', script, impl, REPO], { stdio: ['pipe', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c))
    // 'close', not 'exit': 'exit' may come before the child's stdout has been
    // read, and then the line it printed would look missing.
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()))
    child.stdin.write('hello') // and keep the pipe open
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
    child.stdin.destroy()
    firsts.push(stdout === '' ? 'nothing within 15 s' : JSON.parse(stdout))
  }
  t.deepEqual(firsts[0], { first: 5 }, 'fs (harness check)')
  t.deepEqual(firsts[1], firsts[0])
})

// fs takes a FileHandle as `fd`, reads its descriptor and closes the handle
// when done.
test('fd: a FileHandle is accepted, as fs', async (t) => {
  const f = file(65537)
  const runs: Run[] = []
  for (const [, factory] of IMPLS) {
    const fh = await fs.promises.open(f, 'r')
    try {
      runs.push(await runStream(factory, null, { fd: fh, start: 10 }))
    } finally {
      await fh.close().catch(() => {})
    }
  }
  sameRun(t, runs[1], runs[0], 'FileHandle')
})
