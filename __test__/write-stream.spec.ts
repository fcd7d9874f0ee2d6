// createWriteStream against fs.createWriteStream: every scenario runs through
// both, each on its own copy of the same starting file, and what fs does
// (bytes in the file, events, write() return values, callbacks, counters,
// errors) is the expected value.
//
// The tests that count this process's descriptors or read the engine's
// counters are serial (ava runs them first, alone).

import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { pipeline } from 'node:stream/promises'

import { WriteStream, backend, createReadStream, createWriteStream, stats } from 'uring-fs'
import {
  REPO,
  WRITE_IMPLS,
  type AnyWriteStream,
  type WriteDriver,
  type WriteRun,
  type WriteScript,
  errorSnapshot,
  fdCount,
  fdTarget,
  fsWriteFactory,
  makeTmpDir,
  mulberry32,
  randInt,
  randomContent,
  recordWrite,
  removeTmpDir,
  runWriteBoth,
  sameBytes,
  settleFdCount,
  sleep,
  spawnAsync,
  testSeed,
  thrown,
  uringWriteFactory,
} from './helpers'
import { engineTestSerial } from './engine-test'

const SEED = testSeed()
const MiB = 1024 * 1024

let dir = ''
let counter = 0

test.before(async () => {
  dir = makeTmpDir('write')
  // Start the engine (ring, eventfd, threads) before any descriptor count.
  await new Promise<void>((resolve, reject) => {
    createWriteStream(path.join(dir, 'warm-up')).on('error', reject).on('close', resolve).end('warm')
  })
})

test.after.always(() => removeTmpDir(dir))

/** A new path in the temp dir; with `content`, a file holding it. */
function fresh(label: string, content?: Buffer | string): string {
  const f = path.join(dir, `${label}-${counter++}`)
  if (content !== undefined) fs.writeFileSync(f, content)
  return f
}

/** A target maker: a fresh copy of `content` (or no file) for each implementation; remembers the paths. */
function targets(label: string, content?: Buffer | string): { make: (impl: string) => string; paths: Record<string, string> } {
  const paths: Record<string, string> = {}
  return {
    paths,
    make: (impl: string) => (paths[impl] = fresh(`${label}-${impl}`, content)),
  }
}

/** uring-fs's run must be fs's: events, error, returns, callbacks, counters. */
function sameWriteRun(t: ExecutionContext, uring: WriteRun, expected: WriteRun, what: string): void {
  t.deepEqual(uring.events, expected.events, `${what}: events`)
  t.deepEqual(errorSnapshot(uring.error), errorSnapshot(expected.error), `${what}: error`)
  t.deepEqual(uring.returns, expected.returns, `${what}: write() return values`)
  t.deepEqual(uring.callbacks, expected.callbacks, `${what}: write callbacks`)
  t.is(uring.bytesWritten, expected.bytesWritten, `${what}: bytesWritten`)
  t.is(uring.bytesWrittenAtFinish, expected.bytesWrittenAtFinish, `${what}: bytesWritten at 'finish'`)
  t.is(uring.pos, expected.pos, `${what}: pos`)
  t.is(uring.pendingAtStart, expected.pendingAtStart, `${what}: pending at start`)
  t.is(uring.pendingAtOpen, expected.pendingAtOpen, `${what}: pending at 'open'`)
  t.is(uring.destroyed, expected.destroyed, `${what}: destroyed`)
  // Numbers may differ (each run opens its own descriptor): open or not.
  t.is(uring.fdAtEnd === null, expected.fdAtEnd === null, `${what}: fd at the end`)
}

/** Both files hold the same bytes. */
function sameFiles(t: ExecutionContext, paths: Record<string, string>, what: string): void {
  sameBytes(t, fs.readFileSync(paths['uring-fs']), fs.readFileSync(paths.fs), `${what}: file content`)
}

// ---------------------------------------------------------------------------
// Scripts of writes

type Op =
  | { op: 'write'; chunk: Buffer | Uint8Array | string; encoding?: BufferEncoding; waitDrain: boolean }
  | { op: 'cork' }
  | { op: 'uncork' }
  | { op: 'setDefaultEncoding'; encoding: BufferEncoding }

const ALPHABET = ['a', 'Z', ' ', '\n', 'é', 'ß', '€', '中', '😀', '🦀', '\u0000', '\ud800', '\udfff']
const ENCODINGS: BufferEncoding[] = ['utf8', 'hex', 'base64', 'base64url', 'latin1', 'ascii', 'ucs2']

/** A string of about `size` bytes that is valid (mostly) in `encoding`. */
function randomString(rng: () => number, encoding: BufferEncoding, size: number): string {
  const bytes = randomContent(rng, size)
  switch (encoding) {
    case 'hex':
    case 'base64':
    case 'base64url':
      return bytes.toString(encoding)
    case 'latin1':
    case 'ascii':
      return bytes.toString('latin1')
    default: {
      let s = ''
      for (let i = 0; i < size / 2; i++) s += ALPHABET[randInt(rng, 0, ALPHABET.length - 1)]
      return s
    }
  }
}

/** A chunk size: mostly small, sometimes 0, sometimes up to 300 KiB. */
function randomSize(rng: () => number): number {
  const r = rng()
  if (r < 0.1) return 0
  if (r < 0.45) return randInt(rng, 1, 200)
  if (r < 0.8) return randInt(rng, 201, 64 * 1024)
  return randInt(rng, 64 * 1024, 300 * 1024)
}

/** A random script: Buffers, Uint8Arrays (views at an offset), strings with and without encodings, cork episodes. */
function randomOps(rng: () => number, count: number): Op[] {
  const ops: Op[] = []
  let defaultEncoding: BufferEncoding = 'utf8'
  const write = (waitDrain: boolean): Op => {
    const size = randomSize(rng)
    const kind = rng()
    if (kind < 0.4) return { op: 'write', chunk: randomContent(rng, size), waitDrain }
    if (kind < 0.55) {
      const backing = randomContent(rng, size + 16)
      return { op: 'write', chunk: new Uint8Array(backing.buffer, backing.byteOffset + 7, size), waitDrain }
    }
    if (kind < 0.8) {
      const encoding = ENCODINGS[randInt(rng, 0, ENCODINGS.length - 1)]
      return { op: 'write', chunk: randomString(rng, encoding, size), encoding, waitDrain }
    }
    // A string in the stream's default encoding.
    return { op: 'write', chunk: randomString(rng, defaultEncoding, size), waitDrain }
  }
  while (ops.length < count) {
    const r = rng()
    if (r < 0.1) {
      // A cork episode: no waiting inside it ('drain' cannot come while corked).
      const depth = rng() < 0.3 ? 2 : 1
      for (let i = 0; i < depth; i++) ops.push({ op: 'cork' })
      const n = randInt(rng, 2, 40)
      for (let i = 0; i < n; i++) ops.push(write(false))
      for (let i = 0; i < depth; i++) ops.push({ op: 'uncork' })
    } else if (r < 0.15) {
      defaultEncoding = ENCODINGS[randInt(rng, 0, ENCODINGS.length - 1)]
      ops.push({ op: 'setDefaultEncoding', encoding: defaultEncoding })
    } else {
      ops.push(write(rng() < 0.7))
    }
  }
  return ops
}

/**
 * Runs `ops`, waiting for 'drain' where a write said so and returned false
 * (the same decision in both runs as long as the return values are the
 * same, which is asserted), then end().
 */
function opsScript(ops: Op[], end: (s: AnyWriteStream, d: WriteDriver) => void = (s) => s.end()): WriteScript {
  return async (s, d) => {
    let corked = 0
    for (const op of ops) {
      if (op.op === 'cork') {
        s.cork()
        corked++
      } else if (op.op === 'uncork') {
        s.uncork()
        corked--
      } else if (op.op === 'setDefaultEncoding') {
        s.setDefaultEncoding(op.encoding)
      } else if (!d.write(op.chunk, op.encoding) && op.waitDrain && corked === 0) {
        await d.drain()
      }
      if (s.destroyed) return
    }
    end(s, d)
  }
}

/** What `ops` write, decoded as Writable decodes them. */
function opsBytes(ops: Op[], initialEncoding: BufferEncoding = 'utf8'): Buffer {
  let enc = initialEncoding
  const out: Buffer[] = []
  for (const op of ops) {
    if (op.op === 'setDefaultEncoding') enc = op.encoding
    else if (op.op === 'write') {
      const c = op.chunk
      out.push(typeof c === 'string' ? Buffer.from(c, op.encoding ?? enc) : Buffer.from(c))
    }
  }
  return Buffer.concat(out)
}

// ---------------------------------------------------------------------------
// 1. Bytes

const RANDOM_CASES: Array<[string, Record<string, unknown> | undefined]> = [
  ['default options', undefined],
  ['highWaterMark 1', { highWaterMark: 1 }],
  ['highWaterMark 100000', { highWaterMark: 100_000 }],
  ["encoding option 'hex'", { encoding: 'hex' }],
  ["encoding option 'latin1', highWaterMark 4096", { encoding: 'latin1', highWaterMark: 4096 }],
]

for (const [i, [name, options]] of RANDOM_CASES.entries()) {
  test(`random writes (${name}): same file, events, returns and callbacks as fs (seed ${SEED})`, async (t) => {
    const rng = mulberry32(SEED + i)
    const ops = randomOps(rng, 120)
    const tg = targets('random')
    const { fs: a, uring: b } = await runWriteBoth(tg.make, options, opsScript(ops))
    t.is(a.error, null, 'fs succeeds (harness check)')
    sameWriteRun(t, b, a, name)
    sameFiles(t, tg.paths, name)
    const enc = ((options?.encoding as BufferEncoding | undefined) ?? 'utf8')
    sameBytes(t, fs.readFileSync(tg.paths.fs), opsBytes(ops, enc), 'fs wrote what the script says (harness check)')
    t.is(b.bytesWritten, fs.statSync(tg.paths['uring-fs']).size)
    t.true(b.events.includes('drain') || !a.events.includes('drain'))
  })
}

test('strings in each encoding, by argument, by setDefaultEncoding and by the encoding option: same bytes as fs', async (t) => {
  const rng = mulberry32(SEED ^ 0xe1c)
  for (const enc of ENCODINGS) {
    const strings = Array.from({ length: 5 }, () => randomString(rng, enc, randInt(rng, 0, 3000)))
    const scripts: Array<[string, unknown, WriteScript]> = [
      ['argument', undefined, (s, d) => { for (const str of strings) d.write(str, enc); s.end() }],
      ['setDefaultEncoding', undefined, (s, d) => { s.setDefaultEncoding(enc); for (const str of strings) d.write(str); s.end() }],
      ['encoding option', { encoding: enc }, (s, d) => { for (const str of strings) d.write(str); s.end() }],
      ['options string', enc, (s, d) => { for (const str of strings) d.write(str); s.end(strings[0]) }],
    ]
    for (const [how, options, script] of scripts) {
      const tg = targets('enc')
      const { fs: a, uring: b } = await runWriteBoth(tg.make, options, script)
      sameWriteRun(t, b, a, `${enc} by ${how}`)
      sameFiles(t, tg.paths, `${enc} by ${how}`)
    }
  }
})

test('cork() then more than 1024 chunks in one group (_writev): same file and callbacks as fs', async (t) => {
  const rng = mulberry32(SEED ^ 0xc0c)
  const chunks = Array.from({ length: 2500 }, () => randomContent(rng, randInt(rng, 0, 64)))
  for (const [how, script] of [
    ['cork/uncork', (s: AnyWriteStream, d: WriteDriver) => { s.cork(); for (const c of chunks) d.write(c); s.uncork(); s.end() }],
    // Without cork: the first write goes alone, the rest are one group.
    ['buffered while the first is written', (s: AnyWriteStream, d: WriteDriver) => { for (const c of chunks) d.write(c); s.end() }],
    // cork() with the stream already open, end() while corked flushes.
    ['end() while corked', async (s: AnyWriteStream, d: WriteDriver) => { await new Promise((r) => s.once('ready', r)); s.cork(); for (const c of chunks) d.write(c); s.end() }],
  ] as const) {
    const tg = targets('cork')
    const { fs: a, uring: b } = await runWriteBoth(tg.make, { highWaterMark: 1 << 20 }, script)
    sameWriteRun(t, b, a, how)
    sameFiles(t, tg.paths, how)
    t.true(Buffer.concat(chunks).equals(fs.readFileSync(tg.paths['uring-fs'])), `${how}: the chunks, in order`)
    t.is(b.callbacks.length, chunks.length)
  }
})

test("start: writes at offsets into an existing larger file (flags 'r+'), as fs", async (t) => {
  const rng = mulberry32(SEED ^ 0x57a7)
  const initial = randomContent(rng, MiB + 333)
  for (const start of [0, 1, 4095, 65536, randInt(rng, 0, MiB), MiB + 333, MiB + 1000]) {
    const ops = randomOps(rng, 20)
    const tg = targets('start', initial)
    const { fs: a, uring: b } = await runWriteBoth(tg.make, { flags: 'r+', start }, opsScript(ops))
    sameWriteRun(t, b, a, `start ${start}`)
    sameFiles(t, tg.paths, `start ${start}`)
    t.is(b.pos, start + b.bytesWritten, 'pos advanced past what was written')
  }
})

test("flags 'a' (append), and 'a' with start (ignored, as O_APPEND makes it): same file as fs", async (t) => {
  const rng = mulberry32(SEED ^ 0xa99)
  const initial = randomContent(rng, 100_000)
  for (const options of [{ flags: 'a' }, { flags: 'a', start: 10 }, { flags: 'a+', start: 0 }, { flags: fs.constants.O_WRONLY | fs.constants.O_APPEND }]) {
    const ops = randomOps(rng, 15)
    const tg = targets('append', initial)
    const { fs: a, uring: b } = await runWriteBoth(tg.make, options, opsScript(ops))
    const what = JSON.stringify(options)
    sameWriteRun(t, b, a, what)
    sameFiles(t, tg.paths, what)
    t.true(fs.readFileSync(tg.paths['uring-fs']).subarray(0, initial.length).equals(initial), `${what}: the old content is kept`)
  }
})

test("flags 'w' (the default) truncates an existing larger file, as fs", async (t) => {
  const initial = randomContent(mulberry32(SEED ^ 0x77), 500_000)
  for (const options of [undefined, { flags: 'w' }, { flags: 'w+' }]) {
    const tg = targets('trunc', initial)
    const { fs: a, uring: b } = await runWriteBoth(tg.make, options, (s, d) => {
      d.write('short')
      s.end()
    })
    sameWriteRun(t, b, a, JSON.stringify(options))
    sameFiles(t, tg.paths, JSON.stringify(options))
    t.is(fs.readFileSync(tg.paths['uring-fs'], 'utf8'), 'short')
  }
})

test('fd option with start: same file as fs, the fd is closed at the end (autoClose default)', async (t) => {
  const initial = randomContent(mulberry32(SEED ^ 0xfd), 200_000)
  const ops = randomOps(mulberry32(SEED ^ 0xfd1), 20)
  const tg = targets('fd', initial)
  const fds: Record<string, number> = {}
  const runs: WriteRun[] = []
  for (const [impl, factory] of WRITE_IMPLS) {
    const fd = (fds[impl] = fs.openSync(tg.make(impl), 'r+'))
    runs.push(await recordWrite(factory(null, { fd, start: 5000 }), opsScript(ops)))
  }
  sameWriteRun(t, runs[1], runs[0], 'fd + start')
  sameFiles(t, tg.paths, 'fd + start')
  t.is(runs[1].fdAtEnd, null)
  t.deepEqual(runs[1].events, runs[0].events)
  t.false(runs[1].events.includes('open'), "no 'open' with an fd, as fs")
  t.not(fdTarget(fds['uring-fs']), fs.realpathSync(tg.paths['uring-fs']), 'the fd was closed')
})

test('fd option with autoClose: false: the fd stays open and usable, as fs; the caller closes it', async (t) => {
  const initial = randomContent(mulberry32(SEED ^ 0xfd2), 50_000)
  const tg = targets('fdkeep', initial)
  const runs: WriteRun[] = []
  for (const [impl, factory] of WRITE_IMPLS) {
    const file = tg.make(impl)
    const fd = fs.openSync(file, 'r+')
    try {
      runs.push(await recordWrite(factory(null, { fd, start: 100, autoClose: false }), (s, d) => {
        d.write(Buffer.alloc(1000, 0x41))
        d.write('tail')
        s.end()
      }, { expectClose: false }))
      t.is(fdTarget(fd), fs.realpathSync(file), `${impl}: the fd is still open on the file`)
      fs.writeSync(fd, 'after', 0)
    } finally {
      fs.closeSync(fd)
    }
  }
  sameWriteRun(t, runs[1], runs[0], 'autoClose: false')
  t.false(runs[1].events.includes('close'), "no 'close', as fs")
  t.is(runs[1].fdAtEnd, runs[1].stream.fd)
  t.not(runs[1].fdAtEnd, null)
  sameFiles(t, tg.paths, 'autoClose: false')
})

test('fd option without start: writes at the fd position and advances it, as fs', async (t) => {
  const initial = randomContent(mulberry32(SEED ^ 0xfd3), 100_000)
  const ops = randomOps(mulberry32(SEED ^ 0xfd4), 25)
  const tg = targets('fdpos', initial)
  const runs: WriteRun[] = []
  for (const [impl, factory] of WRITE_IMPLS) {
    const fd = fs.openSync(tg.make(impl), 'r+')
    try {
      fs.readSync(fd, Buffer.alloc(12_345), 0, 12_345, null) // position: 12345
      runs.push(await recordWrite(factory(null, { fd, autoClose: false }), opsScript(ops), { expectClose: false }))
      // Where the fd's position is now: the next positionless write lands there.
      fs.writeSync(fd, '<after>')
    } finally {
      fs.closeSync(fd)
    }
  }
  sameWriteRun(t, runs[1], runs[0], 'fd without start')
  sameFiles(t, tg.paths, 'fd without start')
  t.true(runs[0].bytesWritten > 0)
})

test('fd: a FileHandle is accepted, as fs; the handle is closed at the end', async (t) => {
  const tg = targets('fh', randomContent(mulberry32(SEED ^ 0xf1), 30_000))
  const runs: WriteRun[] = []
  const handles: fs.promises.FileHandle[] = []
  for (const [impl, factory] of WRITE_IMPLS) {
    const fh = await fs.promises.open(tg.make(impl), 'r+')
    handles.push(fh)
    runs.push(await recordWrite(factory(null, { fd: fh, start: 10 }), (s, d) => {
      d.write('through a FileHandle')
      s.end(Buffer.alloc(5000, 0x42))
    }))
  }
  sameWriteRun(t, runs[1], runs[0], 'FileHandle')
  sameFiles(t, tg.paths, 'FileHandle')
  t.is(handles[1].fd, handles[0].fd, 'the handle is closed (fd -1), as fs')
  t.is(handles[1].fd, -1)
})

const COPY_SIZES = [0, 1, 65535, 65536, 65537, 3 * MiB]

for (const size of COPY_SIZES) {
  test(`pipeline(read stream, createWriteStream) copies ${size} bytes, from fs's and from uring-fs's read stream`, async (t) => {
    const src = fresh(`copy-src-${size}`, randomContent(mulberry32(SEED + size), size))
    const expected = fs.readFileSync(src)
    const results: Record<string, { bytesWritten: number; events: string[] }> = {}
    for (const [srcName, makeSrc] of [
      ['fs.createReadStream', () => fs.createReadStream(src)],
      ['uring-fs createReadStream', () => createReadStream(src)],
    ] as const) {
      for (const [impl, factory] of WRITE_IMPLS) {
        const dst = fresh(`copy-dst-${size}`)
        const w = factory(dst)
        const events: string[] = []
        for (const ev of ['open', 'ready', 'finish', 'close', 'error']) w.on(ev, () => events.push(ev))
        await pipeline(makeSrc(), w)
        await new Promise((r) => setImmediate(r))
        sameBytes(t, fs.readFileSync(dst), expected, `${srcName} -> ${impl}`)
        results[`${srcName} -> ${impl}`] = { bytesWritten: w.bytesWritten, events }
      }
      t.deepEqual(results[`${srcName} -> uring-fs`], results[`${srcName} -> fs`], srcName)
    }
    t.is(results['uring-fs createReadStream -> uring-fs'].bytesWritten, size)
  })
}

// ---------------------------------------------------------------------------
// 2. Events and properties

test('a plain write: same events, bytesWritten at finish, pending, path and open fd as fs', async (t) => {
  const tg = targets('plain')
  const { fs: a, uring: b } = await runWriteBoth(tg.make, undefined, (s, d) => {
    d.write('hello ')
    d.write(Buffer.from('world'))
    s.end('!')
  })
  sameWriteRun(t, b, a, 'plain')
  t.deepEqual(b.events, ['open', 'ready', 'finish', 'close'])
  t.is(b.bytesWrittenAtFinish, 12)
  t.true(b.pendingAtStart)
  t.false(b.pendingAtOpen)
  t.is(typeof b.openArg, 'number')
  t.is(b.stream.path, tg.paths['uring-fs'])
  t.is(fs.readFileSync(tg.paths['uring-fs'], 'utf8'), 'hello world!')
})

test('properties after construction are those of fs (path, flags, mode, start, pos, flush, autoClose, pending, bytesWritten)', async (t) => {
  const file = fresh('props')
  const shapes: Record<string, unknown>[] = []
  for (const [, factory] of WRITE_IMPLS) {
    for (const [p, options] of [
      [file, undefined],
      [Buffer.from(file), { flags: 'a', mode: 0o600, start: 3, flush: true }],
      [pathToFileURL(file), { autoClose: false, mode: '644' }],
    ] as const) {
      const s = factory(p, options)
      shapes.push({
        path: s.path,
        flags: s.flags,
        mode: s.mode,
        start: s.start,
        pos: s.pos,
        flush: s.flush,
        autoClose: s.autoClose,
        pending: s.pending,
        bytesWritten: s.bytesWritten,
        fd: s.fd,
        writableHighWaterMark: s.writableHighWaterMark,
        writableObjectMode: s.writableObjectMode,
      })
      await new Promise<void>((resolve) => {
        s.on('close', resolve)
        s.on('error', () => resolve())
        s.on('finish', () => s.destroy())
        s.end()
      })
    }
  }
  t.deepEqual(shapes.slice(3), shapes.slice(0, 3))
})

test('WriteStream is a Writable constructible with new (and without), like fs.WriteStream', async (t) => {
  const file = fresh('ctor')
  const s = new WriteStream(file)
  t.true(s instanceof WriteStream)
  t.true(s instanceof (await import('node:stream')).Writable)
  t.is(typeof s.destroySoon, 'function')
  t.is(typeof s.close, 'function')
  await new Promise<void>((resolve) => s.end('x', () => resolve()))
  t.is(fs.readFileSync(file, 'utf8'), 'x')
})

test('highWaterMark and write() return values (backpressure): same sequence and drains as fs', async (t) => {
  const rng = mulberry32(SEED ^ 0x4e4)
  const sizes = Array.from({ length: 60 }, () => randInt(rng, 0, 40_000))
  for (const hwm of [undefined, 1, 1000, 16 * 1024, 65536, MiB]) {
    for (const wait of [true, false]) {
      const tg = targets('hwm')
      const options = hwm === undefined ? undefined : { highWaterMark: hwm }
      const { fs: a, uring: b } = await runWriteBoth(tg.make, options, async (s, d) => {
        for (const size of sizes) {
          if (!d.write(Buffer.alloc(size, size & 0xff)) && wait) await d.drain()
        }
        s.end()
      })
      const what = `highWaterMark ${hwm}, ${wait ? 'waiting for drain' : 'ignoring backpressure'}`
      sameWriteRun(t, b, a, what)
      sameFiles(t, tg.paths, what)
      t.is(b.stream.writableHighWaterMark, a.stream.writableHighWaterMark)
      if (wait && hwm !== MiB) t.true(b.events.includes('drain'), `${what}: 'drain' was emitted`)
    }
  }
})

test("emitClose: false: no 'close' (as fs), the fd is still closed", async (t) => {
  const tg = targets('noclose')
  const { fs: a, uring: b } = await runWriteBoth(tg.make, { emitClose: false }, (s) => { s.end('data') })
  sameWriteRun(t, b, a, 'emitClose: false')
  t.deepEqual(b.events, ['open', 'ready', 'finish'])
  t.is(b.fdAtEnd, null)
  t.not(fdTarget(b.openArg as number), fs.realpathSync(tg.paths['uring-fs']))
  sameFiles(t, tg.paths, 'emitClose: false')
})

test("autoClose: false: 'finish' but no close, the fd stays open until destroy(), as fs", async (t) => {
  const tg = targets('noauto')
  const { fs: a, uring: b } = await runWriteBoth(tg.make, { autoClose: false }, (s) => { s.end('data') })
  sameWriteRun(t, b, a, 'autoClose: false')
  t.is(fdTarget(b.fdAtEnd as number), fs.realpathSync(tg.paths['uring-fs']), 'still open')
  const closed = new Promise((resolve) => b.stream.on('close', resolve))
  b.stream.destroy()
  await closed
  t.is(b.stream.fd, null)
  t.not(fdTarget(b.openArg as number), fs.realpathSync(tg.paths['uring-fs']), 'closed by destroy()')
  a.stream.destroy()
})

test("flush: true: 'finish' comes, the file is right, events as fs", async (t) => {
  const rng = mulberry32(SEED ^ 0xf15)
  const ops = randomOps(rng, 20)
  for (const options of [{ flush: true }, { flush: false }, { flush: true, flags: 'a' }, { flush: undefined }]) {
    const tg = targets('flush', 'old')
    const { fs: a, uring: b } = await runWriteBoth(tg.make, options, opsScript(ops))
    sameWriteRun(t, b, a, JSON.stringify(options))
    t.true(b.events.includes('finish'))
    sameFiles(t, tg.paths, JSON.stringify(options))
  }
})

// With flush, as fs: every byte is written before 'finish'; the fsync runs
// while closing, so a failing fsync is an 'error' after 'finish', before
// 'close'.
test("flush: true on a file that cannot be fsynced (/dev/null): 'finish', then the fsync's EINVAL, then 'close', as fs", async (t) => {
  const { fs: a, uring: b } = await runWriteBoth(() => '/dev/null', { flush: true }, (s, d) => {
    d.write('x')
    s.end()
  })
  t.is(a.error?.code, 'EINVAL', 'fs: fsync fails on /dev/null (harness check)')
  t.deepEqual(a.events, ['open', 'ready', 'finish', 'error', 'close'], 'fs (harness check)')
  t.deepEqual(b.events, a.events)
  t.is(b.error?.code, a.error?.code)
  t.is(b.error?.syscall, 'fsync')
  t.is(b.error?.message, a.error?.message)
})

test('close(cb): ends the stream, cb after close; close(cb) once closed calls back too; as fs', async (t) => {
  const tg = targets('closecb')
  const cbs: Record<string, unknown[]> = { fs: [], 'uring-fs': [] }
  const { fs: a, uring: b } = await runWriteBoth(tg.make, undefined, (s, d) => {
    const impl = s instanceof WriteStream ? 'uring-fs' : 'fs'
    d.write('before close')
    s.close((err) => {
      cbs[impl].push(['first', errorSnapshot(err), s.closed])
      s.close((err2) => cbs[impl].push(['second', errorSnapshot(err2), s.closed]))
    })
  })
  sameWriteRun(t, b, a, 'close(cb)')
  await sleep(20)
  t.deepEqual(cbs['uring-fs'], cbs.fs)
  t.is(cbs.fs.length, 2, 'fs called both back (harness check)')
  sameFiles(t, tg.paths, 'close(cb)')
})

test('close() with autoClose: false: finishes, then destroys (closing the fd), as fs', async (t) => {
  const tg = targets('closenoauto')
  const { fs: a, uring: b } = await runWriteBoth(tg.make, { autoClose: false }, (s, d) => {
    d.write('data')
    s.close()
  })
  sameWriteRun(t, b, a, 'close() with autoClose: false')
  t.deepEqual(b.events, ['open', 'ready', 'finish', 'close'])
  t.is(b.fdAtEnd, null)
})

test('destroySoon() ends the stream like end(), as fs', async (t) => {
  const tg = targets('soon')
  const { fs: a, uring: b } = await runWriteBoth(tg.make, undefined, (s, d) => {
    d.write('soon')
    s.destroySoon()
  })
  sameWriteRun(t, b, a, 'destroySoon')
  t.true(b.events.includes('finish'))
  sameFiles(t, tg.paths, 'destroySoon')
})

test("an empty stream (end() at once) creates an empty file: same events as fs; end('') and write('') too", async (t) => {
  for (const [how, script] of [
    ['end()', (s: AnyWriteStream) => { s.end() }],
    ["end('')", (s: AnyWriteStream) => { s.end('') }],
    ["write(''), write(Buffer.alloc(0)), end()", (s: AnyWriteStream, d: WriteDriver) => { d.write(''); d.write(Buffer.alloc(0)); s.end() }],
  ] as const) {
    const tg = targets('empty', 'old content')
    const { fs: a, uring: b } = await runWriteBoth(tg.make, undefined, script)
    sameWriteRun(t, b, a, how)
    t.is(fs.statSync(tg.paths['uring-fs']).size, 0)
  }
})

test("an fd of a pipe (not seekable): same bytes as fs (stdout of a child)", async (t) => {
  const script = `
const [impl, repo] = process.argv.slice(1)
const { createWriteStream } = impl === 'fs' ? require('fs') : require(repo)
const s = createWriteStream(null, { fd: 1 })
let n = 0
const big = Buffer.alloc(300000, 0x61)
const next = () => { while (n < 20) { n++; if (!s.write(n % 2 ? big : 'line ' + n + '\\n')) return s.once('drain', next) } s.end('end', () => process.stderr.write(JSON.stringify({ bytesWritten: s.bytesWritten }))) }
next()
`
  const outs: Array<{ stdout: string; stderr: string }> = []
  for (const impl of ['fs', 'uring-fs']) {
    const res = await spawnAsync(process.execPath, ['-e', script, impl, REPO], { timeoutMs: 30_000 })
    t.is(res.status, 0, `${impl}: ${res.stderr}`)
    outs.push({ stdout: res.stdout, stderr: res.stderr })
  }
  t.true(outs[1].stdout === outs[0].stdout, `stdout: ${outs[1].stdout.length} chars, fs gave ${outs[0].stdout.length}`)
  t.is(outs[1].stderr, outs[0].stderr)
  t.is(outs[0].stdout.length, 10 * 300_000 + 'line 2\n'.length * 4 + 'line 10\n'.length * 6 + 3)
})

// A non-blocking pipe that fills up (stdout of a child that touched
// process.stdout, which makes libuv set O_NONBLOCK on it; the reader waits a
// second before reading). fs takes EAGAIN as "0 bytes written", retries 5
// times at once and gives up with an ERR_SYSTEM_ERROR (whose message is
// broken: "undefined returned undefined"), after the 65,536 bytes the pipe
// holds. uring-fs differs: on io_uring the kernel waits for the pipe to have
// room (a poll, inside io_uring) and the whole 1 MiB is written; on the
// fallback the write fails at once with EAGAIN.
const NONBLOCK_SCRIPT = `
const [impl, repo] = process.argv.slice(1)
const { createWriteStream } = impl === 'fs' ? require('fs') : require(repo)
process.stdout // libuv makes a pipe on stdout non-blocking
const s = createWriteStream(null, { fd: 1 })
const events = []
let error = null
for (const e of ['finish', 'error', 'close']) s.on(e, (x) => { events.push(e); if (e === 'error') error = { code: x.code, message: x.message } })
s.on('close', () => process.stderr.write(JSON.stringify({ events, error, bytesWritten: s.bytesWritten })))
s.end(Buffer.alloc(1 << 20, 0x61))
`

async function nonBlockingPipe(impl: string): Promise<{ events: string[]; error: { code: string; message: string } | null; bytesWritten: number; received: number }> {
  const res = await spawnAsync('sh', ['-c', `"$0" -e "$1" "$2" "$3" | (sleep 1; wc -c)`, process.execPath, NONBLOCK_SCRIPT, impl, REPO], { timeoutMs: 30_000 })
  if (res.status !== 0) throw new Error(`${impl}: ${res.stderr}`)
  return { ...JSON.parse(res.stderr), received: Number(res.stdout.trim()) }
}

test('a non-blocking pipe that fills up: what fs and uring-fs do (a documented difference)', async (t) => {
  const a = await nonBlockingPipe('fs')
  t.deepEqual(a.events, ['error', 'close'], 'fs gives up (harness check)')
  t.is(a.error?.code, 'ERR_SYSTEM_ERROR')
  t.is(a.bytesWritten, a.received)
  const b = await nonBlockingPipe('uring-fs')
  t.log({ fs: a, 'uring-fs': b, backend: backend() })
  t.is(b.bytesWritten, b.received, 'bytesWritten is what went through the pipe')
  if (backend() === 'io_uring') {
    t.deepEqual(b.events, ['finish', 'close'], 'io_uring waits for room in the pipe')
    t.is(b.received, 1 << 20)
  } else if (backend() === 'node') {
    t.deepEqual(b, { ...a, received: b.received }, 'the JavaScript fallback is fs')
  } else {
    t.deepEqual(b.events, ['error', 'close'])
    t.is(b.error?.code, 'EAGAIN')
    t.is(b.bytesWritten, a.bytesWritten)
  }
})

// ---------------------------------------------------------------------------
// 3. Errors

test('a missing directory (ENOENT), a directory (EISDIR), an existing file with wx (EEXIST): same errors and events as fs', async (t) => {
  const existing = fresh('exists', 'keep me')
  for (const [name, p, options, code] of [
    ['missing directory', path.join(dir, 'no-such-dir', 'file'), undefined, 'ENOENT'],
    ['missing directory, Buffer path', Buffer.from(path.join(dir, 'no-such-dir', 'file')), undefined, 'ENOENT'],
    ['a directory', dir, undefined, 'EISDIR'],
    ["a directory with flags 'a'", dir, { flags: 'a' }, 'EISDIR'],
    ["'wx' on an existing file", existing, { flags: 'wx' }, 'EEXIST'],
    ["'ax' on an existing file", existing, { flags: 'ax' }, 'EEXIST'],
    ["'r+' on a missing file", path.join(dir, 'missing-r+'), { flags: 'r+' }, 'ENOENT'],
  ] as const) {
    const { fs: a, uring: b } = await runWriteBoth(() => p, options, (s, d) => {
      d.write('data')
      s.end()
    })
    t.is(a.error?.code, code, `${name}: fs fails with ${code} (harness check)`)
    sameWriteRun(t, b, a, name)
    t.is(b.error?.syscall, 'open')
    t.is(b.error?.path, p.toString())
    t.deepEqual(b.events, ['error', 'close'])
  }
  t.is(fs.readFileSync(existing, 'utf8'), 'keep me')
})

test('an fd opened read-only: EBADF on write, same error and events as fs', async (t) => {
  const tg = targets('ebadf', 'read only')
  const runs: WriteRun[] = []
  for (const [impl, factory] of WRITE_IMPLS) {
    const fd = fs.openSync(tg.make(impl), 'r')
    runs.push(await recordWrite(factory(null, { fd }), (s, d) => {
      d.write('x')
      d.write('y')
      s.end('z')
    }))
    t.not(fdTarget(fd), fs.realpathSync(tg.paths[impl]), `${impl}: the fd was closed`)
  }
  t.is(runs[0].error?.code, 'EBADF', 'fs (harness check)')
  sameWriteRun(t, runs[1], runs[0], 'EBADF')
  t.is(runs[1].error?.syscall, 'write')
  sameFiles(t, tg.paths, 'EBADF')
})

// Invalid options that fs reports as an 'error' event (or throws): the same.
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
    const file = fresh('inv')
    const sync = [thrown(() => fs.createWriteStream(file, options)), thrown(() => createWriteStream(file, options))]
    t.deepEqual(sync[1], sync[0], 'thrown synchronously (or not) like fs')
    t.false(fs.existsSync(file))
    if (sync[0] !== 'no throw') return
    const { fs: a, uring: b } = await runWriteBoth(() => file, options, (s, d) => {
      d.write('x')
      s.end()
    })
    t.truthy(a.error, 'fs fails (harness check)')
    sameWriteRun(t, b, a, name)
    t.regex(String(b.error?.code), /^ERR_/)
    t.false(fs.existsSync(file), 'nothing was created')
  })
}

const SYNC_INVALID: Array<[string, unknown[]]> = [
  ['path 123', [123]],
  ['path null', [null]],
  ['path undefined', [undefined]],
  ['path {}', [{}]],
  ['path with a NUL byte', ['a\u0000b']],
  ['http: URL', [new URL('http://example.com/')]],
  ['options 42', ['FILE', 42]],
  ["encoding 'bogus'", ['FILE', { encoding: 'bogus' }]],
  ["encoding 'bogus' (string options)", ['FILE', 'bogus']],
  ["encoding 'buffer'", ['FILE', { encoding: 'buffer' }]],
  ['start: -1', ['FILE', { start: -1 }]],
  ["start: 'x'", ['FILE', { start: 'x' }]],
  ['start: 1.5', ['FILE', { start: 1.5 }]],
  ['start: NaN', ['FILE', { start: NaN }]],
  ['start: Infinity', ['FILE', { start: Infinity }]],
  ['start: null', ['FILE', { start: null }]],
  ['start: 2 ** 53', ['FILE', { start: 2 ** 53 }]],
  ["fd: 'x'", ['FILE', { fd: 'x' }]],
  ['fd: -1', ['FILE', { fd: -1 }]],
  ['fd: 1.5', ['FILE', { fd: 1.5 }]],
  ['fd: 2 ** 31', ['FILE', { fd: 2 ** 31 }]],
  ['fd: {}', ['FILE', { fd: {} }]],
  ["flush: 'yes'", ['FILE', { flush: 'yes' }]],
  ['flush: 1', ['FILE', { flush: 1 }]],
  ['highWaterMark: -1', ['FILE', { highWaterMark: -1 }]],
  ["highWaterMark: 'x'", ['FILE', { highWaterMark: 'x' }]],
  ["signal: 'x'", ['FILE', { signal: 'x' }]],
  ['signal: null', ['FILE', { signal: null }]],
  ['start: a long string', ['FILE', { start: 'abcdefghijklmnopqrstuvwxyz0123456789' }]],
  ["start: a string with a quote", ['FILE', { start: "it's" }]],
  ['start: 10n', ['FILE', { start: 10n }]],
  ['start: a symbol', ['FILE', { start: Symbol('s') }]],
  ['fd: an anonymous function', ['FILE', { fd: () => 1 }]],
  ['fd: a null-prototype object', ['FILE', { fd: Object.create(null) }]],
  ['fd: -Infinity', ['FILE', { fd: -Infinity }]],
  ['flush and start both invalid (which is reported first)', ['FILE', { flush: 'yes', start: -1 }]],
  ['path and fd both invalid', [123, { fd: 'x' }]],
]

for (const [name, args] of SYNC_INVALID) {
  test(`${name}: throws synchronously what fs throws`, (t) => {
    const file = fresh('sync-inv')
    const real = args.map((a) => (a === 'FILE' ? file : a))
    const expected = thrown(() => (fs.createWriteStream as (...a: unknown[]) => unknown)(...real))
    const actual = thrown(() => (createWriteStream as (...a: unknown[]) => unknown)(...real))
    t.not(expected, 'no throw', 'fs throws (harness check)')
    t.deepEqual(actual, expected)
  })
}

test('fd: -0 is fd 0, as fs', async (t) => {
  // Each child's stdin is a file opened read-only: writing to fd 0 fails
  // with EBADF in both, after the same events.
  const src = fresh('stdin', 'in')
  const script = `
const [impl, repo] = process.argv.slice(1)
const { createWriteStream } = impl === 'fs' ? require('fs') : require(repo)
const s = createWriteStream(null, { fd: -0 })
const events = []
for (const ev of ['open', 'finish', 'close', 'error']) s.on(ev, (e) => events.push(ev === 'error' ? e.code + ' ' + e.syscall : ev))
s.on('close', () => console.log(JSON.stringify({ events, fd: s.fd, bytesWritten: s.bytesWritten })))
s.end('x')
`
  const outs: unknown[] = []
  for (const impl of ['fs', 'uring-fs']) {
    const fd = fs.openSync(src, 'r')
    try {
      const res = await spawnAsync(process.execPath, ['-e', script, impl, REPO], { stdio: [fd, 'pipe', 'pipe'], timeoutMs: 30_000 })
      t.is(res.status, 0, `${impl}: ${res.stderr}`)
      outs.push(JSON.parse(res.stdout))
    } finally {
      fs.closeSync(fd)
    }
  }
  // Node 26 closes fd 0 too (its close() tests `fd == null`; before, `!fd`).
  const fd0 = Number(process.versions.node.split('.')[0]) >= 26 ? null : 0
  t.deepEqual(outs[0], { events: ['EBADF write', 'close'], fd: fd0, bytesWritten: 0 }, 'fs (harness check)')
  t.deepEqual(outs[1], outs[0])
})

test('write after end(): ERR_STREAM_WRITE_AFTER_END as fs (event and callback)', async (t) => {
  const tg = targets('wae')
  const { fs: a, uring: b } = await runWriteBoth(tg.make, undefined, (s, d) => {
    s.end('first')
    d.write('second')
  })
  t.is(a.error?.code, 'ERR_STREAM_WRITE_AFTER_END', 'fs (harness check)')
  sameWriteRun(t, b, a, 'write after end')
  sameFiles(t, tg.paths, 'write after end')
})

for (const [name, value] of [
  ['42', 42],
  ['{}', {}],
  ['null', null],
  ['true', true],
  ['an ArrayBuffer', new ArrayBuffer(4)],
  ['an array of bytes', [1, 2, 3]],
] as const) {
  test(`write(${name}): the same error as fs, thrown the same way`, async (t) => {
    const tg = targets('badchunk')
    const errs: Record<string, unknown> = {}
    const { fs: a, uring: b } = await runWriteBoth(tg.make, undefined, (s, d) => {
      const impl = s instanceof WriteStream ? 'uring-fs' : 'fs'
      try {
        d.write(value)
        errs[impl] = 'no throw'
      } catch (err) {
        errs[impl] = errorSnapshot(err)
      }
      s.end('ok')
    })
    t.not(errs.fs, 'no throw', 'fs throws (harness check)')
    t.deepEqual(errs['uring-fs'], errs.fs)
    sameWriteRun(t, b, a, `write(${name})`)
    sameFiles(t, tg.paths, `write(${name})`)
  })
}

// Permission denied needs an unprivileged process: as root, a child running
// as nobody; it runs the same scenarios through fs and uring-fs.
const EACCES_SCRIPT = `
const assert = require('assert')
const fs = require('fs')
const [repo, ...targets] = process.argv.slice(1)
assert.notStrictEqual(process.getuid(), 0, 'the child must run unprivileged')
assert.notStrictEqual(process.geteuid(), 0, 'the child must run unprivileged')
const { createWriteStream } = require(repo)
const snap = (e) => ({
  constructor: e.constructor.name, name: e.name, code: e.code, errno: e.errno, syscall: e.syscall,
  path: e.path, message: e.message, keys: Object.keys(e), string: String(e),
})
const run = (factory, file, options) => new Promise((resolve) => {
  const s = factory(file, options)
  const events = []
  let error = null
  for (const ev of ['open', 'ready', 'finish', 'close', 'error']) {
    s.on(ev, (arg) => { events.push(ev); if (ev === 'error') error = snap(arg); if (ev === 'close') setImmediate(() => resolve({ events, error, fd: s.fd, bytesWritten: s.bytesWritten })) })
  }
  s.end('data')
})
;(async () => {
  const out = { uid: process.getuid(), runs: [] }
  for (const t of targets) {
    for (const options of [undefined, { flags: 'a' }, { flags: 'r+' }]) {
      out.runs.push({ target: t, options, fs: await run(fs.createWriteStream, t, options), uring: await run(createWriteStream, t, options) })
    }
  }
  console.log(JSON.stringify(out))
})()
`

test('permission denied (EACCES), as nobody: same error and events as fs', async (t) => {
  const readOnly = fresh('ro', 'read only')
  fs.chmodSync(readOnly, 0o444)
  const closedDir = path.join(dir, `closed-${counter++}`)
  fs.mkdirSync(closedDir, { mode: 0o555 })
  fs.chmodSync(closedDir, 0o555)
  const root = process.getuid?.() === 0
  const res = await spawnAsync(process.execPath, ['-e', EACCES_SCRIPT, REPO, readOnly, path.join(closedDir, 'new')], {
    // As root, the check runs as nobody: root is never denied.
    ...(root ? { uid: 65534, gid: 65534 } : {}),
    timeoutMs: 30_000,
  })
  t.is(res.status, 0, `child failed: ${res.error ?? ''} ${res.stderr}`)
  const out = JSON.parse(res.stdout) as { uid: number; runs: Array<{ target: string; fs: { error: { code: string } | null }; uring: unknown }> }
  t.not(out.uid, 0, 'unprivileged')
  t.is(out.runs.length, 6)
  for (const r of out.runs) {
    t.is(r.fs.error?.code, r.target === readOnly || (r as { options?: { flags?: string } }).options?.flags !== 'r+' ? 'EACCES' : 'ENOENT', `fs is denied (harness check): ${JSON.stringify(r)}`)
    t.deepEqual(r.uring, r.fs, r.target)
  }
  t.is(fs.readFileSync(readOnly, 'utf8'), 'read only')
  t.false(fs.existsSync(path.join(closedDir, 'new')))
})

// ---------------------------------------------------------------------------
// 6. The Buffer-modified-after-write rule

test('a Buffer modified after its write callback: the file keeps what was written (the rule of fs)', async (t) => {
  // The rule is fs's: the caller must not modify a Buffer given to write()
  // until that write's callback has been called. Before it, what reaches
  // the file is not defined, for fs (a thread-pool write may or may not
  // have read the memory yet) as for uring-fs (the kernel reads the very
  // Buffer, which is never copied): this test does not assert it; it only
  // logs what each wrote. After the callback, the write is done and the
  // Buffer is the caller's again: modifying it changes nothing in the file.
  const rng = mulberry32(SEED ^ 0xb0f)
  const original = randomContent(rng, 200_000)
  const results: Record<string, Buffer> = {}
  for (const [impl, factory] of WRITE_IMPLS) {
    const file = fresh(`mut-${impl}`)
    const buf = Buffer.from(original)
    const early = Buffer.from(original.subarray(0, 1000))
    const s = factory(file)
    const closed = new Promise((resolve) => s.on('close', resolve))
    // Modified right after write() returns, before the callback: undefined.
    s.write(early)
    early.fill(0x45)
    await new Promise<void>((resolve, reject) =>
      s.write(buf, (err) => {
        if (err) return reject(err)
        // The callback: from here on the Buffer is the caller's.
        buf.fill(0xee)
        resolve()
      }),
    )
    buf.fill(0x11)
    s.end()
    await closed
    const content = fs.readFileSync(file)
    results[impl] = content
    t.true(content.subarray(1000).equals(original), `${impl}: what was written before the callback, not what the Buffer holds now`)
    t.log(`${impl}: modified before its callback, the first write left ${content.subarray(0, 1000).equals(original.subarray(0, 1000)) ? 'the original bytes' : content[0] === 0x45 ? 'the modified bytes' : 'a mix'}`)
  }
  t.is(results['uring-fs'].length, results.fs.length)
})

// ---------------------------------------------------------------------------
// 4. ENOSPC (serial: counts descriptors)

test.serial('ENOSPC on a 1 MiB tmpfs: an error like fs, no finish, fd closed, bytesWritten = file size', async (t) => {
  if (process.getuid?.() !== 0) {
    t.log('skipped: mounting a tmpfs needs root')
    t.pass()
    return
  }
  const mnt = path.join(dir, `tmpfs-${counter++}`)
  fs.mkdirSync(mnt)
  const mount = await spawnAsync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt])
  if (mount.status !== 0) {
    t.log(`skipped: mount failed: ${mount.error ?? ''} ${mount.stderr}`)
    t.pass()
    return
  }
  t.teardown(async () => {
    await spawnAsync('umount', ['-l', mnt])
  })
  const rng = mulberry32(SEED ^ 0xe05)
  const data = randomContent(rng, 3 * MiB)
  const runs: Record<string, WriteRun> = {}
  const sizes: Record<string, number> = {}
  for (const [chunking, chunk] of [['64 KiB chunks', 64 * 1024], ['300 KiB chunks', 300 * 1024], ['one 3 MiB write', 3 * MiB]] as const) {
    for (const [impl, factory] of WRITE_IMPLS) {
      const file = path.join(mnt, `full-${impl}`)
      const before = fdCount()
      const run = await recordWrite(factory(file), (s, d) => {
        for (let off = 0; off < data.length; off += chunk) d.write(data.subarray(off, off + chunk))
        s.end()
      })
      t.is(await settleFdCount(before), before, `${chunking}, ${impl}: the fd was closed`)
      runs[impl] = run
      sizes[impl] = fs.statSync(file).size
      t.true(fs.readFileSync(file).equals(data.subarray(0, sizes[impl])), `${chunking}, ${impl}: the prefix written is right`)
      fs.unlinkSync(file)
    }
    const a = runs.fs
    const b = runs['uring-fs']
    t.is(a.error?.code, 'ENOSPC', `${chunking}: fs fails with ENOSPC (harness check)`)
    t.deepEqual(errorSnapshot(b.error), errorSnapshot(a.error), `${chunking}: error`)
    t.is(b.error?.syscall, 'write')
    t.false(b.events.includes('finish'), `${chunking}: no 'finish'`)
    t.deepEqual(b.events, ['open', 'ready', 'error', 'close'], `${chunking}: events`)
    t.deepEqual(b.events, a.events, `${chunking}: events`)
    t.is(b.bytesWritten, sizes['uring-fs'], `${chunking}: bytesWritten is the file's size`)
    t.is(a.bytesWritten, sizes.fs, `${chunking}: fs's bytesWritten is its file's size (harness check)`)
    t.is(b.bytesWritten, a.bytesWritten, `${chunking}: bytesWritten as fs`)
    t.is(b.fdAtEnd, null)
    // Every write callback got the error, or ERR_STREAM_DESTROYED, as fs's.
    t.deepEqual(b.callbacks, a.callbacks, `${chunking}: callbacks`)
  }
})

// ---------------------------------------------------------------------------
// 5. Lifecycle (serial: counts descriptors)

/**
 * Resolves once the stream is constructed: a turn of the loop after 'ready'
 * (Writable takes the construction as done in a nextTick after it); from
 * then on a write goes to the kernel at once.
 */
function constructed(s: AnyWriteStream): Promise<void> {
  return new Promise((resolve) => s.once('ready', () => setImmediate(resolve)))
}

/** Runs `body`, then waits for the descriptor count to come back to where it was. */
async function noLeak(t: ExecutionContext, body: () => Promise<void>): Promise<void> {
  const before = fdCount()
  await body()
  t.is(await settleFdCount(before), before, 'every descriptor was closed')
}

test.serial('destroy() right after creation, in open, mid-write: same events and errors as fs, nothing leaks', async (t) => {
  const big = randomContent(mulberry32(SEED ^ 0xde5), 4 * MiB)
  const scenarios: Array<[string, WriteScript]> = [
    ['right after creation', (s) => void s.destroy()],
    ['right after creation, with a write queued', (s, d) => { d.write(big); s.destroy() }],
    ["in 'open'", (s) => void s.once('open', () => s.destroy())],
    ["in 'ready' with writes queued", (s, d) => { d.write(big); d.write('more'); s.once('ready', () => s.destroy()) }],
    // Once constructed (a tick after 'ready'), a write goes to the kernel at once: destroy() finds it in flight.
    ['mid-write (a 4 MiB write in flight)', async (s, d) => { await constructed(s); d.write(big); s.destroy() }],
    ['mid-write (a group in flight, more queued)', (s, d) => new Promise<void>((resolve) => s.once('ready', () => {
      d.write(big.subarray(0, MiB))
      for (let i = 0; i < 10; i++) d.write(big.subarray(i * 1000, i * 1000 + 300_000))
      s.once('drain', () => {})
      setImmediate(() => { s.destroy(); resolve() })
    }))],
    ['in the first write callback (a group in flight)', (s, d) => new Promise<void>((resolve) => s.once('ready', () => {
      s.write(big.subarray(0, 100_000), () => { s.destroy(); resolve() })
      for (let i = 0; i < 10; i++) d.write(big.subarray(i * 1000, i * 1000 + 300_000))
    }))],
    ['destroy(err) mid-write', async (s, d) => { await constructed(s); d.write(big); s.destroy(new Error('mine')) }],
  ]
  for (const [name, script] of scenarios) {
    await noLeak(t, async () => {
      const tg = targets('destroy')
      const { fs: a, uring: b } = await runWriteBoth(tg.make, undefined, script)
      sameWriteRun(t, b, a, name)
      t.is(b.events.at(-1), 'close', `${name}: 'close' is last`)
      if (b.openArg !== undefined) t.not(fdTarget(b.openArg as number), fs.realpathSync(tg.paths['uring-fs']), `${name}: fd closed`)
      if (name === 'mid-write (a 4 MiB write in flight)') {
        // fs fails the write in flight, and so the stream, with ERR_STREAM_DESTROYED.
        t.is(a.error?.code, 'ERR_STREAM_DESTROYED', 'fs (harness check)')
        t.is(b.error?.message, 'Cannot call write after a stream was destroyed')
        t.deepEqual(b.callbacks.map((c) => c.error?.code), ['ERR_STREAM_DESTROYED'])
        t.is(b.bytesWritten, 0, 'a write completed after destroy() is not counted, as fs')
      }
      if (name.startsWith('mid-write')) {
        // Both waited for the write in flight before closing: the file holds what the kernel wrote.
        t.is(fs.statSync(tg.paths['uring-fs']).size, fs.statSync(tg.paths.fs).size, `${name}: file size`)
      }
    })
  }
})

test.serial('an AbortSignal aborted mid-write: AbortError like fs, the fd is closed', async (t) => {
  const big = randomContent(mulberry32(SEED ^ 0xab0), 4 * MiB)
  for (const reason of [undefined, new Error('why')]) {
    await noLeak(t, async () => {
      const tg = targets('abort')
      const runs: WriteRun[] = []
      for (const [impl, factory] of WRITE_IMPLS) {
        const ac = new AbortController()
        runs.push(await recordWrite(factory(tg.make(impl), { signal: ac.signal }), async (s, d) => {
          await constructed(s)
          d.write(big)
          d.write('queued')
          ac.abort(reason)
        }))
      }
      const [a, b] = runs
      t.is(a.error?.name, 'AbortError', 'fs (harness check)')
      sameWriteRun(t, b, a, `abort(${reason})`)
      // The write in flight fails with ERR_STREAM_DESTROYED (the queued one with the AbortError), as in fs.
      t.is(b.callbacks.find((c) => c.index === 0)?.error?.code, 'ERR_STREAM_DESTROYED')
      const causeA = (a.error as Error & { cause?: unknown }).cause
      const causeB = (b.error as Error & { cause?: unknown }).cause
      if (reason !== undefined) t.is(causeB, reason, 'the reason is the cause')
      else t.deepEqual(errorSnapshot(causeB), errorSnapshot(causeA), 'cause')
      t.not(fdTarget(b.openArg as number), fs.realpathSync(tg.paths['uring-fs']))
    })
  }
})

// fs (Node 20) opens the file after the AbortError and 'close' of an
// already aborted signal, creating or truncating it, and never closes that
// descriptor. uring-fs gives the same error, events and callbacks, but
// opens nothing: no descriptor leaks and the file is left alone. (The same
// choice as its createReadStream.)
test.serial('an AbortSignal already aborted: the AbortError of fs; nothing opened, nothing leaks', async (t) => {
  const ac = new AbortController()
  ac.abort()
  const tg = targets('preabort', 'old content')
  const fsStream = fsWriteFactory(tg.make('fs'), { signal: ac.signal })
  const fsOpened = new Promise<number>((resolve) => fsStream.once('open', resolve))
  const a = await recordWrite(fsStream, (s, d) => { d.write('x'); s.end() })
  fs.closeSync(await fsOpened)
  t.log(`fs: events ${a.events.join(', ')}; its file afterwards: ${fs.statSync(tg.paths.fs).size} bytes (it was 11)`)
  await noLeak(t, async () => {
    const b = await recordWrite(uringWriteFactory(tg.make('uring-fs'), { signal: ac.signal }), (s, d) => { d.write('x'); s.end() })
    t.deepEqual(errorSnapshot(b.error), errorSnapshot(a.error))
    t.is(b.error?.name, 'AbortError')
    t.deepEqual(b.events.slice(0, 2), ['error', 'close'], 'error, then close, first, as fs')
    t.deepEqual(a.events.slice(0, 2), ['error', 'close'])
    t.deepEqual(b.events, ['error', 'close'], "no 'open'")
    t.deepEqual(b.callbacks, a.callbacks)
    t.true(b.destroyed)
    await sleep(50)
    t.is(fs.readFileSync(tg.paths['uring-fs'], 'utf8'), 'old content', 'the file is left alone')
  })
})

test.serial('1,000 concurrent write streams to distinct files: every file right, every fd closed', async (t) => {
  t.timeout(60_000)
  const rng = mulberry32(SEED ^ 0x1000)
  const sub = path.join(dir, `many-${counter++}`)
  fs.mkdirSync(sub)
  const contents = Array.from({ length: 1000 }, () => [randomContent(rng, randInt(rng, 0, 3000)), randomContent(rng, randInt(rng, 0, 70_000)), randomContent(rng, randInt(rng, 0, 100))])
  await noLeak(t, async () => {
    const closed = await Promise.all(
      contents.map(
        (parts, i) =>
          new Promise<{ error: unknown; bytesWritten: number }>((resolve) => {
            const s = createWriteStream(path.join(sub, `f${i}`))
            let error: unknown = null
            s.on('error', (e) => (error = e))
            s.on('close', () => resolve({ error, bytesWritten: s.bytesWritten }))
            s.write(parts[0])
            s.write(parts[1])
            s.end(parts[2])
          }),
      ),
    )
    for (const [i, r] of closed.entries()) {
      const expected = Buffer.concat(contents[i])
      if (r.error !== null || r.bytesWritten !== expected.length || !fs.readFileSync(path.join(sub, `f${i}`)).equals(expected)) {
        t.fail(`stream ${i}: error ${String(r.error)}, bytesWritten ${r.bytesWritten}/${expected.length}`)
        return
      }
    }
    t.pass()
  })
})

// ---------------------------------------------------------------------------
// 8. Batching: one submission per group (serial: reads the engine's counters)

engineTestSerial('cork/uncork of 3,000 small chunks: few io_uring_enter calls for all of them', async (t) => {
  const rng = mulberry32(SEED ^ 0x3000)
  const chunks = Array.from({ length: 3000 }, () => randomContent(rng, randInt(rng, 1, 100)))
  const file = fresh('enters')
  const s = createWriteStream(file)
  await new Promise((resolve) => s.once('ready', () => resolve(undefined)))
  const before = stats()
  await new Promise<void>((resolve, reject) => {
    s.on('error', reject)
    s.cork()
    for (const c of chunks) s.write(c)
    s.uncork()
    s.end(resolve)
  })
  const after = stats()
  await new Promise((resolve) => s.on('close', () => resolve(undefined)))
  t.true(fs.readFileSync(file).equals(Buffer.concat(chunks)))
  const d = { ops: after.ops - before.ops, enters: after.enters - before.enters, bytesWritten: after.bytesWritten - before.bytesWritten }
  t.log(backend(), d)
  t.is(d.bytesWritten, Buffer.concat(chunks).length, 'every byte went through the engine')
  // One group of 3,000 chunks is one batch: a few operations, not one per
  // chunk (on the fallback one job on its threads) ...
  t.true(d.ops >= 1 && d.ops <= 6, `operations: ${d.ops}`)
  if (backend() === 'io_uring') {
    // ... on io_uring three writevs (at most 1,024 iovecs each), handed to
    // the kernel as one linked chain in one io_uring_enter (a short write
    // in the chain resubmits the rest: one more).
    t.true(d.ops >= 3, `operations: ${d.ops}`)
    t.true(d.enters >= 1, 'io_uring_enter was called')
    t.true(d.enters <= 3, `io_uring_enter calls: ${d.enters} for ${chunks.length} chunks`)
    t.true(d.enters * 1000 <= chunks.length, 'far fewer enters than chunks')
  } else {
    t.is(after.enters, 0, 'never an io_uring_enter on the fallback')
  }
})
