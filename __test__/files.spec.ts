// readFile / writeFile against fs.promises.readFile / writeFile: every case
// runs through both, and what fs.promises does (the bytes, the file written,
// its mode, the error it rejects with) is the expected value.

import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'

import { readFile, writeFile } from 'uring-fs'
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
  writeFixture,
} from './helpers'

const SEED = testSeed()
const MiB = 1024 * 1024
const SIZES = [0, 1, 4096, 65537, 5 * MiB]

let dir = ''
let counter = 0
const files = new Map<number, string>()
let textFile = ''

test.before(() => {
  dir = makeTmpDir('files')
  for (const size of SIZES) files.set(size, writeFixture(dir, `random-${size}.bin`, randomContent(mulberry32(SEED + size), size)))
  const rng = mulberry32(SEED ^ 0x7e47)
  const alphabet = ['a', 'Z', ' ', '\n', 'é', 'ß', '€', '中', '😀', '\u0000']
  const parts: string[] = []
  for (let bytes = 0; bytes < 200_000; ) {
    const c = alphabet[randInt(rng, 0, alphabet.length - 1)]
    parts.push(c)
    bytes += Buffer.byteLength(c)
  }
  const text = parts.join('')
  textFile = writeFixture(dir, 'text.txt', text)
  fs.mkdirSync(path.join(dir, 'a-dir'))
})

test.after.always(() => removeTmpDir(dir))

function file(size: number): string {
  const f = files.get(size)
  if (f === undefined) throw new Error(`no fixture of ${size} bytes`)
  return f
}

/** A new path in the temp dir; with `content`, a file holding it. */
function fresh(label: string, content?: Buffer | string): string {
  const f = path.join(dir, `${label}-${counter++}`)
  if (content !== undefined) fs.writeFileSync(f, content)
  return f
}

type Outcome = { value: unknown } | { error: Record<string, unknown> | null; cause?: unknown }

/** What a call gives: its value, or the error it rejects with (snapshot). Never a synchronous throw. */
async function outcome(t: ExecutionContext, what: string, call: () => Promise<unknown>): Promise<Outcome> {
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
    return { error: errorSnapshot(err), cause: errorSnapshot((err as { cause?: unknown }).cause) }
  }
}

/** The same outcome as fs.promises; returns fs's. */
async function sameOutcome(t: ExecutionContext, what: string, expected: () => Promise<unknown>, actual: () => Promise<unknown>): Promise<Outcome> {
  const a = await outcome(t, `${what} (fs)`, expected)
  const b = await outcome(t, what, actual)
  if ('value' in a && 'value' in b && (Buffer.isBuffer(a.value) || typeof a.value === 'string')) {
    sameBytes(t, b.value as Buffer | string, a.value as Buffer | string, what)
  } else {
    t.deepEqual(b, a, what)
  }
  return a
}

// ---------------------------------------------------------------------------
// readFile: bytes

for (const size of SIZES) {
  test(`readFile: the bytes of fs.promises.readFile (${size} bytes), as Buffer and with encodings`, async (t) => {
    const f = file(size)
    const a = await sameOutcome(t, 'Buffer', () => fs.promises.readFile(f), () => readFile(f))
    t.true('value' in a && Buffer.isBuffer(a.value) && a.value.length === size, 'fs read it all (harness check)')
    for (const options of ['hex', { encoding: 'base64' }, { encoding: 'latin1' }, { encoding: 'utf8' }, { encoding: null }, { flag: 'r+' }, { flag: 'a+', encoding: 'hex' }, { flag: fs.constants.O_RDONLY }, { flag: 'rs' }] as const) {
      await sameOutcome(t, JSON.stringify(options), () => fs.promises.readFile(f, options as never), () => readFile(f, options as never))
    }
  })
}

test('readFile: UTF-8 text with multi-byte characters, as fs (utf8 and ucs2)', async (t) => {
  for (const encoding of ['utf8', 'ucs2', 'base64url'] as const) {
    await sameOutcome(t, encoding, () => fs.promises.readFile(textFile, encoding), () => readFile(textFile, encoding))
  }
})

test('readFile: a Buffer path and a file: URL, as fs', async (t) => {
  const f = file(65537)
  await sameOutcome(t, 'Buffer path', () => fs.promises.readFile(Buffer.from(f)), () => readFile(Buffer.from(f)))
  await sameOutcome(t, 'file: URL', () => fs.promises.readFile(pathToFileURL(f)), () => readFile(pathToFileURL(f)))
})

test('readFile: files in /proc (size 0 in stat, read until EOF), as fs', async (t) => {
  // Contents that are the same for both calls: the kernel's version, and
  // this very process's command line; of /proc/self/status the first line.
  for (const f of ['/proc/version', '/proc/self/cmdline']) {
    t.is(fs.statSync(f).size, 0, `${f}: stat says 0 bytes (harness check)`)
    const a = await sameOutcome(t, f, () => fs.promises.readFile(f), () => readFile(f))
    t.true('value' in a && (a.value as Buffer).length > 0, `${f}: not empty`)
  }
  const [fsStatus, ours] = [await fs.promises.readFile('/proc/self/status', 'utf8'), (await readFile('/proc/self/status', 'utf8')) as string]
  t.is(ours.split('\n')[0], fsStatus.split('\n')[0])
  t.regex(ours, /\nVmRSS:/, 'the whole of it')
})

test.serial('readFile: a FIFO with a writer (no size, no offsets), as fs', async (t) => {
  const content = randomContent(mulberry32(SEED ^ 0xf1f0), 300_001)
  const src = fresh('fifo-src', content)
  const results: Buffer[] = []
  for (const impl of ['fs', 'uring-fs']) {
    const fifo = path.join(dir, `fifo-${impl}-${counter++}`)
    const mk = await spawnAsync('mkfifo', [fifo])
    t.is(mk.status, 0, `mkfifo: ${mk.error ?? mk.stderr}`)
    const writer = spawn('sh', ['-c', 'cat "$0" > "$1"', src, fifo], { stdio: 'ignore' })
    const exited = new Promise((resolve) => writer.on('exit', resolve))
    results.push((impl === 'fs' ? await fs.promises.readFile(fifo) : await readFile(fifo)) as Buffer)
    await exited
  }
  sameBytes(t, results[0], content, 'fs (harness check)')
  sameBytes(t, results[1], results[0], 'uring-fs')
})

test('readFile: a FileHandle reads from its position to the end and stays open, as fs', async (t) => {
  const f = file(65537)
  const out: Array<{ data: string; fd: number }> = []
  for (const read of [fs.promises.readFile, readFile]) {
    const fh = await fs.promises.open(f, 'r')
    try {
      await fh.read(Buffer.alloc(1000), 0, 1000, null)
      const data = (await (read as typeof readFile)(fh as never, 'hex')) as string
      out.push({ data, fd: fh.fd === -1 ? -1 : 1 })
    } finally {
      await fh.close()
    }
  }
  t.is(out[0].data.length, (65537 - 1000) * 2, 'fs (harness check)')
  t.deepEqual(out[1], out[0])
})

test('readFile: a FileHandle with a signal aborted while it is read: the handle stays open and usable', async (t) => {
  const f = file(5 * MiB)
  for (const delay of [0, 1, 5, 20]) {
    const fh = await fs.promises.open(f, 'r')
    try {
      const ac = new AbortController()
      const p = readFile(fh as never, { signal: ac.signal })
      setTimeout(() => ac.abort(), delay)
      const o = await outcome(t, `abort after ${delay} ms`, () => p)
      t.true('value' in o ? (o.value as Buffer).length === 5 * MiB : o.error?.name === 'AbortError', `abort after ${delay} ms: all of it, or an AbortError`)
      // The handle's descriptor is still its own: stat and read it.
      t.is((await fh.stat()).size, 5 * MiB)
      const { bytesRead } = await fh.read(Buffer.alloc(10), 0, 10, 0)
      t.is(bytesRead, 10)
    } finally {
      await fh.close()
    }
  }
})

// ---------------------------------------------------------------------------
// readFile: errors

test('readFile: ENOENT, ENOTDIR, EISDIR, EEXIST and EBADF as fs.promises rejects them', async (t) => {
  const f = file(1)
  const cases: Array<[string, unknown, unknown, string]> = [
    ['missing file', path.join(dir, 'missing'), undefined, 'ENOENT'],
    ['missing file, Buffer path', Buffer.from(path.join(dir, 'missing')), undefined, 'ENOENT'],
    ['missing file, file: URL', pathToFileURL(path.join(dir, 'missing')), undefined, 'ENOENT'],
    ['through a file', path.join(f, 'child'), undefined, 'ENOTDIR'],
    ['a directory', path.join(dir, 'a-dir'), undefined, 'EISDIR'],
    ['a directory with an encoding', path.join(dir, 'a-dir'), 'utf8', 'EISDIR'],
    ["flag 'wx' on an existing file", f, { flag: 'wx' }, 'EEXIST'],
    ["flag 'a' (write-only): EBADF on read", fresh('wonly', 'abc'), { flag: 'a' }, 'EBADF'],
  ]
  for (const [name, p, options, code] of cases) {
    const a = await sameOutcome(t, name, () => fs.promises.readFile(p as string, options as never), () => readFile(p as never, options as never))
    t.is(('error' in a && a.error?.code) || null, code, `${name}: fs rejects with ${code} (harness check)`)
  }
})

const READ_INVALID: Array<[string, unknown[]]> = [
  ['path 123', [123]],
  ['path {}', [{}]],
  ['path null', [null]],
  ['path undefined', [undefined]],
  ['path with a NUL byte', ['a\u0000b']],
  ['http: URL', [new URL('http://example.com/')]],
  ["flag 'bogus'", ['FILE', { flag: 'bogus' }]],
  ['flag {}', ['FILE', { flag: {} }]],
  ["flag '' (fs: the default)", ['FILE', { flag: '' }]],
  ["encoding 'bogus'", ['FILE', { encoding: 'bogus' }]],
  ["encoding 'bogus' (string options)", ['FILE', 'bogus']],
  ["encoding 'buffer'", ['FILE', { encoding: 'buffer' }]],
  ["encoding 'buffer', missing file", ['MISSING', { encoding: 'buffer' }]],
  ['options 42', ['FILE', 42]],
  ["signal 'x'", ['FILE', { signal: 'x' }]],
  ['signal {}', ['FILE', { signal: {} }]],
  ['path 123 and flag bogus (which first)', [123, { flag: 'bogus' }]],
  ['path 123 and encoding bogus (which first)', [123, { encoding: 'bogus' }]],
]

for (const [name, args] of READ_INVALID) {
  test(`readFile(${name}): rejects as fs.promises does`, async (t) => {
    const real = args.map((a) => (a === 'FILE' ? file(4096) : a === 'MISSING' ? path.join(dir, 'missing') : a))
    await sameOutcome(
      t,
      name,
      () => (fs.promises.readFile as (...a: unknown[]) => Promise<unknown>)(...real),
      () => (readFile as (...a: unknown[]) => Promise<unknown>)(...real),
    )
  })
}

test('readFile: a signal already aborted rejects with the AbortError of fs.promises (before the path is looked at)', async (t) => {
  for (const reason of [undefined, new Error('why'), 'a string']) {
    const ac = new AbortController()
    ac.abort(reason)
    for (const p of [file(4096), path.join(dir, 'missing'), 123]) {
      const a = await sameOutcome(t, `abort(${String(reason)}), path ${String(p)}`, () => fs.promises.readFile(p as string, { signal: ac.signal }), () => readFile(p as never, { signal: ac.signal }))
      t.is(('error' in a && a.error?.name) || null, 'AbortError', 'fs (harness check)')
    }
  }
  // The cause is the very reason.
  const ac = new AbortController()
  const reason = new Error('mine')
  ac.abort(reason)
  const err = await readFile(file(1), { signal: ac.signal }).catch((e: unknown) => e)
  t.is((err as { cause?: unknown }).cause, reason)
})

// ---------------------------------------------------------------------------
// writeFile: what is written

/** `o` with every occurrence of `file` in its strings replaced by <file>. */
function withoutPath(o: Outcome, file: string): Outcome {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return v.split(file).join('<file>')
    if (Array.isArray(v)) return v.map(walk)
    if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
    }
    return v
  }
  const r = walk({ ...o }) as Record<string, unknown>
  // Keep the error's constructor (walk copies plain entries only).
  if ('error' in o && o.error && r.error) (r.error as Record<string, unknown>).constructor = o.error.constructor
  return r as Outcome
}

/** Writes `data` with fs.promises.writeFile and with writeFile (each its own file, made by `setup`); same outcome and file. */
async function sameWrite(
  t: ExecutionContext,
  what: string,
  data: () => unknown,
  options?: unknown,
  setup: (impl: string) => string = (impl) => fresh(`w-${impl}`),
): Promise<{ outcome: Outcome; paths: string[] }> {
  const paths = [setup('fs'), setup('uring-fs')]
  const a = await outcome(t, `${what} (fs)`, () => fs.promises.writeFile(paths[0], data() as string, options as never))
  const b = await outcome(t, what, () => writeFile(paths[1], data() as never, options as never))
  // Each wrote its own file: its name is the one difference allowed in errors.
  t.deepEqual(withoutPath(b, paths[1]), withoutPath(a, paths[0]), `${what}: outcome`)
  const exists = paths.map((p) => fs.existsSync(p))
  t.is(exists[1], exists[0], `${what}: the file exists (or not) as with fs`)
  if (exists[0] && exists[1]) sameBytes(t, fs.readFileSync(paths[1]), fs.readFileSync(paths[0]), `${what}: file`)
  return { outcome: a, paths }
}

test('writeFile: strings (each encoding, by option and options string), Buffers, TypedArrays, DataViews: the file of fs.promises.writeFile', async (t) => {
  const rng = mulberry32(SEED ^ 0x3217)
  const bytes = randomContent(rng, 100_003)
  const text = fs.readFileSync(textFile, 'utf8')
  const cases: Array<[string, () => unknown, unknown]> = [
    ['utf8 string', () => text, undefined],
    ['utf8 string, options null', () => text, null],
    ['empty string', () => '', undefined],
    ['hex string', () => bytes.toString('hex'), { encoding: 'hex' }],
    ['hex string (options string)', () => bytes.toString('hex'), 'hex'],
    ['base64 string', () => bytes.toString('base64'), { encoding: 'base64' }],
    ['latin1 string', () => bytes.toString('latin1'), { encoding: 'latin1' }],
    ['ucs2 string', () => text, { encoding: 'ucs2' }],
    ['encoding null', () => text, { encoding: null }],
    ['Buffer', () => bytes, undefined],
    ['Buffer, an encoding (ignored)', () => bytes, 'hex'],
    ['empty Buffer', () => Buffer.alloc(0), undefined],
    ['Uint8Array at an offset', () => new Uint8Array(bytes.buffer, bytes.byteOffset + 3, 50_000), undefined],
    ['Uint16Array', () => new Uint16Array(bytes.buffer, bytes.byteOffset + 2, 1000), undefined],
    ['Float64Array', () => new Float64Array([1.5, -0, NaN, Infinity]), undefined],
    ['DataView', () => new DataView(bytes.buffer, bytes.byteOffset + 5, 7777), undefined],
    ['5 MiB Buffer', () => fs.readFileSync(file(5 * MiB)), undefined],
  ]
  for (const [name, data, options] of cases) {
    const { outcome: a } = await sameWrite(t, name, data, options)
    t.true('value' in a, `${name}: fs succeeds (harness check)`)
  }
})

test('writeFile: iterables (arrays of strings, mixed pieces, Set, generators, async generators, String objects): as fs.promises', async (t) => {
  const bytes = randomContent(mulberry32(SEED ^ 0x17e7), 70_000)
  const cases: Array<[string, () => unknown, unknown]> = [
    ['array of strings', () => ['a', 'bc', '', 'déf', '😀'], undefined],
    ['array of strings, hex', () => ['6162', '63', 'zz'], 'hex'],
    ['array of Buffers and strings', () => [bytes.subarray(0, 1000), 'mid', new Uint8Array(bytes.buffer, bytes.byteOffset + 7, 500), new DataView(bytes.buffer, bytes.byteOffset, 9)], undefined],
    ['array of arrays of bytes (Buffer.from takes them)', () => [[65, 66, 67], [0x100, -1]], undefined],
    ['empty array', () => [], undefined],
    ['Set of strings', () => new Set(['x', 'y', 'z']), undefined],
    ['generator', () => (function* () { for (let i = 0; i < 100; i++) yield `line ${i}\n` })(), undefined],
    ['async generator with pauses', () => (async function* () { for (let i = 0; i < 20; i++) { await new Promise((r) => setTimeout(r, 1)); yield bytes.subarray(i * 3000, i * 3000 + 3000) } })(), undefined],
    ['async generator of strings, base64', () => (async function* () { yield bytes.subarray(0, 300).toString('base64'); yield 'QUJD' })(), { encoding: 'base64' }],
    ['a String object (iterable)', () => new String('string object'), undefined],
    ['an iterable of promises', () => [Promise.resolve('a'), Promise.resolve('b')], undefined],
  ]
  for (const [name, data, options] of cases) {
    const { outcome: a } = await sameWrite(t, name, data, options)
    t.true('value' in a, `${name}: fs succeeds (harness check)`)
  }
})

test("writeFile: flags 'a', 'a+', 'r+', 'w', '' and numeric, on an existing file: as fs.promises", async (t) => {
  const old = randomContent(mulberry32(SEED ^ 0xf1a9), 10_000)
  for (const flag of ['a', 'a+', 'r+', 'w', 'w+', '', fs.constants.O_WRONLY | fs.constants.O_APPEND, 0]) {
    for (const data of [() => 'new data', () => ['new', ' ', 'pieces']]) {
      const { outcome: a, paths } = await sameWrite(t, `flag ${JSON.stringify(flag)}`, data, { flag }, (impl) => fresh(`flag-${impl}`, old))
      t.true('value' in a || flag === 0, `flag ${JSON.stringify(flag)}: fs (harness check)`)
      if (flag === 'a') t.true(fs.readFileSync(paths[1]).subarray(0, old.length).equals(old), 'appended after the old content')
    }
  }
})

test("writeFile: flags 'wx' and 'ax' on an existing file reject with fs's EEXIST, the file untouched", async (t) => {
  for (const flag of ['wx', 'ax', 'xw']) {
    for (const data of [() => 'x', () => ['x', 'y'], () => (async function* () { yield 'x' })()]) {
      const { outcome: a, paths } = await sameWrite(t, `flag ${flag}`, data, { flag }, (impl) => fresh(`excl-${impl}`, 'keep'))
      t.is(('error' in a && a.error?.code) || null, 'EEXIST', 'fs (harness check)')
      t.is(fs.readFileSync(paths[1], 'utf8'), 'keep')
    }
  }
})

/** This process's umask, from /proc (process.umask() without an argument is deprecated). */
function umask(): number {
  const m = /^Umask:\s+([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return m ? parseInt(m[1], 8) : 0o022
}

test('writeFile: mode applies to a new file, with the umask, as fs.promises; an existing file keeps its mode', async (t) => {
  const mask = umask()
  for (const mode of [0o600, 0o640, 0o777, 0o666, '755', '0644', 0o100644, undefined]) {
    for (const data of [() => 'x', () => ['x']]) {
      const { outcome: a, paths } = await sameWrite(t, `mode ${String(mode)}`, data, { mode })
      t.true('value' in a, 'fs (harness check)')
      const modes = paths.map((p) => fs.statSync(p).mode & 0o777)
      t.is(modes[1], modes[0], `mode ${String(mode)}: the file's mode`)
      const m = mode === undefined ? 0o666 : typeof mode === 'string' ? parseInt(mode, 8) : mode
      t.is(modes[1], m & 0o777 & ~mask, `mode ${String(mode)}: mode & ~umask`)
    }
  }
  const { paths } = await sameWrite(t, 'mode on an existing file', () => 'y', { mode: 0o600 }, (impl) => {
    const f = fresh(`existing-${impl}`, 'old')
    fs.chmodSync(f, 0o644)
    return f
  })
  t.deepEqual(paths.map((p) => fs.statSync(p).mode & 0o777), [0o644, 0o644])
})

test('writeFile: flush: true resolves with the file written, as fs.promises; on /dev/null it rejects with the fsync EINVAL of fs', async (t) => {
  const bytes = randomContent(mulberry32(SEED ^ 0xf105), 300_000)
  for (const data of [() => bytes, () => [bytes.subarray(0, 1000), 'x'], () => '']) {
    const { outcome: a } = await sameWrite(t, 'flush', data, { flush: true })
    t.true('value' in a)
  }
  await sameWrite(t, 'flush: false', () => 'x', { flush: false })
  await sameWrite(t, 'flush: null', () => 'x', { flush: null })
  for (const data of [() => 'x', () => ['x', 'y']]) {
    const a = await sameOutcome(t, '/dev/null with flush', () => fs.promises.writeFile('/dev/null', data() as string, { flush: true }), () => writeFile('/dev/null', data(), { flush: true }))
    t.is(('error' in a && a.error?.syscall) || null, 'fsync', 'fs: the fsync fails (harness check)')
  }
  await sameOutcome(t, '/dev/null without flush', () => fs.promises.writeFile('/dev/null', 'x'), () => writeFile('/dev/null', 'x'))
})

test('writeFile: a FileHandle is written at its position, not closed, as fs.promises', async (t) => {
  const out: string[] = []
  for (const write of [fs.promises.writeFile, writeFile]) {
    const f = fresh('fh')
    const fh = await fs.promises.open(f, 'w+')
    try {
      await fh.write('head:')
      await (write as typeof writeFile)(fh as never, 'one,')
      await (write as typeof writeFile)(fh as never, ['two', ','])
      await (write as typeof writeFile)(fh as never, Buffer.from('three'), { flush: true })
      t.not(fh.fd, -1, 'still open')
    } finally {
      await fh.close()
    }
    out.push(fs.readFileSync(f, 'utf8'))
  }
  t.is(out[0], 'head:one,two,three', 'fs (harness check)')
  t.is(out[1], out[0])
})

// ---------------------------------------------------------------------------
// writeFile: errors

test('writeFile: ENOENT (missing directory), EISDIR, ENOTDIR: the rejections of fs.promises', async (t) => {
  const f = file(1)
  for (const [name, p, code] of [
    ['missing directory', path.join(dir, 'no-dir', 'f'), 'ENOENT'],
    ['missing directory, Buffer path', Buffer.from(path.join(dir, 'no-dir', 'f')), 'ENOENT'],
    ['a directory', path.join(dir, 'a-dir'), 'EISDIR'],
    ['through a file', path.join(f, 'child'), 'ENOTDIR'],
  ] as const) {
    for (const data of [() => 'x', () => ['x'], () => Buffer.alloc(10)]) {
      const a = await sameOutcome(t, name, () => fs.promises.writeFile(p, data() as string), () => writeFile(p, data()))
      t.is(('error' in a && a.error?.code) || null, code, `${name}: fs (harness check)`)
      t.is(('error' in a && a.error?.syscall) || null, 'open')
    }
  }
})

const WRITE_INVALID: Array<[string, unknown[]]> = [
  ['data 42', ['FILE', 42]],
  ['data {}', ['FILE', {}]],
  ['data null', ['FILE', null]],
  ['data undefined', ['FILE', undefined]],
  ['data true', ['FILE', true]],
  ['data an ArrayBuffer (not a view)', ['FILE', new ArrayBuffer(8)]],
  ['data a function', ['FILE', () => 'x']],
  ['data a named function', ['FILE', function named() {}]],
  ['data 10n', ['FILE', 10n]],
  ['data a symbol', ['FILE', Symbol('s')]],
  ['data a null-prototype object', ['FILE', Object.create(null)]],
  ['path 123', [123, 'x']],
  ['path null', [null, 'x']],
  ['path with a NUL byte', ['a\u0000b', 'x']],
  ["flag 'bogus'", ['FILE', 'x', { flag: 'bogus' }]],
  ["flag 'bogus' with an iterable", ['FILE', ['x'], { flag: 'bogus' }]],
  ["mode 'abc'", ['FILE', 'x', { mode: 'abc' }]],
  ['mode -1', ['FILE', 'x', { mode: -1 }]],
  ['mode 1.5', ['FILE', 'x', { mode: 1.5 }]],
  ["flush 'yes'", ['FILE', 'x', { flush: 'yes' }]],
  ["encoding 'bogus'", ['FILE', 'x', { encoding: 'bogus' }]],
  ["encoding 'buffer' with a string", ['FILE', 'x', { encoding: 'buffer' }]],
  ['options 42', ['FILE', 'x', 42]],
  ["signal 'x'", ['FILE', 'x', { signal: 'x' }]],
  ['data 42 and path 123 (which first)', [123, 42]],
  ["data 42 and flush 'yes' (which first)", ['FILE', 42, { flush: 'yes' }]],
  ["path 123 and flag 'bogus' (which first)", [123, 'x', { flag: 'bogus' }]],
  ["flag 'bogus' and mode 'abc' (which first)", ['FILE', 'x', { flag: 'bogus', mode: 'abc' }]],
  ['an iterable of 42s', ['FILE', [42]]],
  ['an iterable of {}', ['FILE', ['ok', {}]]],
  ['an iterable of null', ['FILE', [null]]],
]

for (const [name, args] of WRITE_INVALID) {
  test(`writeFile(${name}): rejects as fs.promises does; the file as fs leaves it`, async (t) => {
    const targets = [fresh('inv-fs'), fresh('inv-uring')]
    const call = (fn: unknown, p: string) => () => (fn as (...a: unknown[]) => Promise<unknown>)(...args.map((a) => (a === 'FILE' ? p : a)))
    const a = await outcome(t, `${name} (fs)`, call(fs.promises.writeFile, targets[0]))
    const b = await outcome(t, name, call(writeFile, targets[1]))
    t.true('error' in a, 'fs rejects (harness check)')
    t.deepEqual(b, a)
    t.is(fs.existsSync(targets[1]), fs.existsSync(targets[0]), 'the file was created (or not) as with fs')
    if (fs.existsSync(targets[0])) t.is(fs.statSync(targets[1]).size, fs.statSync(targets[0]).size)
  })
}

test('writeFile: an (async) iterable that throws part way: the same rejection, and what was written before it stays, as fs', async (t) => {
  const makers: Array<[string, () => unknown]> = [
    ['generator', () => (function* () { yield 'first,'; yield 'second,'; throw new Error('boom') })()],
    ['async generator', () => (async function* () { yield 'first,'; await new Promise((r) => setTimeout(r, 5)); yield Buffer.from('second,'); throw new Error('boom') })()],
    ['async generator failing at once', () => (async function* () { throw new Error('boom') })()],
  ]
  for (const [name, data] of makers) {
    for (const flag of ['w', 'a']) {
      const { outcome: a, paths } = await sameWrite(t, `${name}, flag ${flag}`, data, { flag }, (impl) => fresh(`gen-${impl}`, 'old,'))
      t.is(('error' in a && a.error?.message) || null, 'boom', 'fs (harness check)')
      t.log(`${name}, flag ${flag}: the file holds ${JSON.stringify(fs.readFileSync(paths[1], 'utf8'))}`)
    }
  }
})

test('writeFile: a signal aborted before or while an async iterable is written: the AbortError of fs.promises, the same file', async (t) => {
  for (const when of ['before', 'after the first piece', 'after the last piece']) {
    const controllers: AbortController[] = []
    const data = () => {
      const ac = new AbortController()
      controllers.push(ac)
      if (when === 'before') ac.abort()
      return (async function* () {
        yield 'one,'
        if (when === 'after the first piece') ac.abort(new Error('stop'))
        yield 'two,'
        if (when === 'after the last piece') ac.abort()
      })()
    }
    // The signal goes in the options, made with the data: one per run.
    const paths = [fresh('abort-fs', 'old'), fresh('abort-uring', 'old')]
    const runs: Outcome[] = []
    for (const [i, write] of [fs.promises.writeFile, writeFile].entries()) {
      const d = data()
      runs.push(await outcome(t, when, () => (write as typeof writeFile)(paths[i], d, { signal: controllers[i].signal })))
    }
    if (when === 'after the last piece') {
      // fs checks the signal before each piece and after writing it: an
      // abort after the last check goes unnoticed.
      t.true('value' in runs[0], `${when}: fs resolves (harness check)`)
    } else {
      t.true('error' in runs[0] && runs[0].error?.name === 'AbortError', `${when}: fs (harness check)`)
    }
    t.deepEqual(runs[1], runs[0], when)
    sameBytes(t, fs.readFileSync(paths[1]), fs.readFileSync(paths[0]), `${when}: file`)
  }
})

test('writeFile: a signal already aborted rejects with the AbortError of fs.promises, nothing written', async (t) => {
  const ac = new AbortController()
  ac.abort()
  for (const [name, p] of [['a file', 'FILE'], ['path 123', 123]] as const) {
    for (const data of [() => 'x', () => ['x'], () => Buffer.alloc(3)]) {
      const targets = [fresh('pre-fs', 'old'), fresh('pre-uring', 'old')]
      const a = await outcome(t, name, () => fs.promises.writeFile(p === 'FILE' ? targets[0] : (p as never), data() as string, { signal: ac.signal }))
      const b = await outcome(t, name, () => writeFile((p === 'FILE' ? targets[1] : p) as never, data() as never, { signal: ac.signal }))
      t.true('error' in a && a.error?.name === 'AbortError', 'fs (harness check)')
      t.deepEqual(b, a)
      t.is(fs.readFileSync(targets[1], 'utf8'), 'old')
    }
  }
})

// ---------------------------------------------------------------------------
// Permission denied, as nobody

const EACCES_SCRIPT = `
const assert = require('assert')
const fs = require('fs')
const [repo, readOnly, unreadable, closedDir] = process.argv.slice(1)
assert.notStrictEqual(process.getuid(), 0, 'the child must run unprivileged')
assert.notStrictEqual(process.geteuid(), 0, 'the child must run unprivileged')
const lib = require(repo)
const snap = (e) => e && ({
  constructor: e.constructor.name, name: e.name, code: e.code, errno: e.errno, syscall: e.syscall,
  path: e.path, message: e.message, keys: Object.keys(e), string: String(e),
})
const settle = (p) => p.then((v) => ({ value: Buffer.isBuffer(v) ? v.toString('hex') : v }), (e) => ({ error: snap(e) }))
;(async () => {
  const out = { uid: process.getuid(), cases: [] }
  const cases = [
    ['readFile unreadable', (m) => m.readFile(unreadable)],
    ['writeFile read-only', (m) => m.writeFile(readOnly, 'x')],
    ['writeFile read-only, iterable', (m) => m.writeFile(readOnly, ['x'])],
    ['writeFile in a closed directory', (m) => m.writeFile(closedDir + '/new', 'x')],
    ['readFile read-only (allowed)', (m) => m.readFile(readOnly, 'utf8')],
  ]
  for (const [name, run] of cases) out.cases.push({ name, fs: await settle(run(fs.promises)), uring: await settle(run(lib)) })
  console.log(JSON.stringify(out))
})()
`

test('permission denied (EACCES), as nobody: the rejections of fs.promises', async (t) => {
  const readOnly = fresh('ro', 'read only')
  fs.chmodSync(readOnly, 0o444)
  const unreadable = fresh('secret', 'secret')
  fs.chmodSync(unreadable, 0o000)
  const closedDir = path.join(dir, `closed-${counter++}`)
  fs.mkdirSync(closedDir)
  fs.chmodSync(closedDir, 0o555)
  const root = process.getuid?.() === 0
  const res = await spawnAsync(process.execPath, ['-e', EACCES_SCRIPT, REPO, readOnly, unreadable, closedDir], {
    ...(root ? { uid: 65534, gid: 65534 } : {}),
    timeoutMs: 30_000,
  })
  t.is(res.status, 0, `child failed: ${res.error ?? ''} ${res.stderr}`)
  const out = JSON.parse(res.stdout) as { uid: number; cases: Array<{ name: string; fs: { error?: { code: string } }; uring: unknown }> }
  t.not(out.uid, 0, 'unprivileged')
  t.is(out.cases.length, 5)
  for (const c of out.cases) {
    if (!c.name.includes('allowed')) t.is(c.fs.error?.code, 'EACCES', `${c.name}: fs is denied (harness check)`)
    t.deepEqual(c.uring, c.fs, c.name)
  }
  t.is(fs.readFileSync(readOnly, 'utf8'), 'read only')
})

// ---------------------------------------------------------------------------
// ENOSPC (serial: mounts a tmpfs)

test.serial('writeFile on a full 1 MiB tmpfs: the ENOSPC of fs.promises, the same bytes left in the file', async (t) => {
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
  const data = randomContent(mulberry32(SEED ^ 0xe05f), 3 * MiB)
  const pieces = Array.from({ length: 48 }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536))
  for (const [name, make] of [['one Buffer', () => data], ['an iterable of 64 KiB Buffers', () => pieces]] as const) {
    const results: Array<{ outcome: Outcome; size: number; prefixOk: boolean }> = []
    for (const write of [fs.promises.writeFile, writeFile]) {
      const f = path.join(mnt, 'full')
      const o = await outcome(t, name, () => (write as typeof writeFile)(f, make()))
      const content = fs.readFileSync(f)
      results.push({ outcome: o, size: content.length, prefixOk: content.equals(data.subarray(0, content.length)) })
      fs.unlinkSync(f)
    }
    t.is(('error' in results[0].outcome && results[0].outcome.error?.code) || null, 'ENOSPC', `${name}: fs (harness check)`)
    t.deepEqual(results[1], results[0], name)
    t.true(results[1].prefixOk, `${name}: the bytes in the file are the data's first bytes`)
  }
})

// fs.promises.readFile refuses a file of more than 2 GiB before reading it;
// so does uring-fs (a file of 64 MiB or more is opened, its size checked,
// and only then is memory allocated for it), and the file is closed.
test.serial('readFile of a file over 2 GiB (sparse): the ERR_FS_FILE_TOO_LARGE of fs.promises, nothing read, no fd left', async (t) => {
  const f = fresh('huge', '')
  fs.truncateSync(f, 2 ** 31)
  try {
    const fds = fdCount()
    const started = Date.now()
    const o = await sameOutcome(t, '2 GiB', () => fs.promises.readFile(f), () => readFile(f))
    t.is('error' in o && o.error?.code, 'ERR_FS_FILE_TOO_LARGE', 'fs refuses it (harness check)')
    t.true(Date.now() - started < 5000, 'refused before 2 GiB were read')
    t.is(await settleFdCount(fds), fds, 'the file is closed')
  } finally {
    fs.unlinkSync(f)
  }
})

// Files of 64 MiB or more are read in parallel parts into a Buffer that
// JavaScript allocates: the bytes, the encodings and the descriptors as
// with fs.promises, on either side of that size.
test.serial('readFile: files around 64 MiB (read in parallel parts): the bytes of fs.promises, no fd left', async (t) => {
  const fds = fdCount()
  for (const size of [64 * MiB - 1, 64 * MiB, 64 * MiB + 4097, 97 * MiB + 3]) {
    const f = fresh(`large-${size}`, randomContent(mulberry32(SEED ^ size), size))
    try {
      const a = await sameOutcome(t, `${size} bytes`, () => fs.promises.readFile(f), () => readFile(f))
      t.true('value' in a && Buffer.isBuffer(a.value) && a.value.length === size, `${size}: fs read it all (harness check)`)
      await sameOutcome(t, `${size} bytes, latin1`, () => fs.promises.readFile(f, 'latin1'), () => readFile(f, 'latin1'))
    } finally {
      fs.unlinkSync(f)
    }
  }
  t.is(await settleFdCount(fds), fds, 'every file is closed')
})

// Many readFile calls at once, of every kind (small files read whole in one
// step, empty ones, large ones and missing paths and directories that take
// the general way), interleaved with writes: each promise gets its own
// file's bytes or error, as fs.promises gives them.
test('readFile: 600 at once, of every kind, each gets its own result', async (t) => {
  const sub = path.join(dir, `many-${Date.now()}`)
  fs.mkdirSync(sub)
  const paths: string[] = []
  for (let i = 0; i < 600; i++) {
    const p = path.join(sub, `f-${i}`)
    switch (i % 6) {
      case 0:
        paths.push(path.join(sub, `missing-${i}`))
        break
      case 1:
        fs.mkdirSync(p)
        paths.push(p)
        break
      case 2:
        fs.writeFileSync(p, '')
        paths.push(p)
        break
      case 3:
        fs.writeFileSync(p, Buffer.alloc(70_000 + i, i & 0xff))
        paths.push(p)
        break
      default:
        fs.writeFileSync(p, `file ${i} `.repeat(i % 50))
        paths.push(p)
    }
  }
  const settle = (p: Promise<Buffer | string>): Promise<Buffer | { code?: string; errno?: number; syscall?: string; path?: string }> =>
    p.then(
      (b) => b as Buffer,
      (e: NodeJS.ErrnoException) => ({ code: e.code, errno: e.errno, syscall: e.syscall, path: e.path }),
    )
  const writes = paths.map((_, i) => writeFile(path.join(sub, `w-${i}`), `written ${i}`))
  const ours = await Promise.all(paths.map((p) => settle(readFile(p))))
  await Promise.all(writes)
  const theirs = await Promise.all(paths.map((p) => settle(fs.promises.readFile(p))))
  for (let i = 0; i < paths.length; i++) {
    const [a, b] = [ours[i], theirs[i]]
    if (Buffer.isBuffer(b)) t.true(Buffer.isBuffer(a) && a.equals(b), paths[i])
    else t.deepEqual(a, b, paths[i])
    t.is(fs.readFileSync(path.join(sub, `w-${i}`), 'utf8'), `written ${i}`)
  }
})
