// Shared helpers for the uring-fs specs: fixtures, a seeded PRNG, running a
// stream to completion while recording what it does, error snapshots, and
// descriptor counting. Every comparison in the specs runs the same scenario
// through `fs.createReadStream` and through uring-fs's `createReadStream`;
// the helpers here treat both alike.

import { type SpawnOptions, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Readable, Writable } from 'node:stream'
import type { ExecutionContext } from 'ava'

import { backend, createReadStream, createWriteStream } from 'uring-fs'

/**
 * The backend the suite runs on (URING_FS_BACKEND: io_uring here by
 * default, 'fallback', or 'node' for the JavaScript fallback).
 */
export const BACKEND = backend()
/** The native engine is live: its counters, zero-copy bodies and batching can be checked. */
export const ON_ENGINE = BACKEND !== 'node'
/**
 * How io_uring is kept from this process when the suite runs with it
 * unavailable (scripts/test.sh: 'sysctl' for kernel.io_uring_disabled=2,
 * 'seccomp' for the testkit's no-io-uring wrapper), or '' when it is
 * available. Then the backend chosen without URING_FS_BACKEND is the
 * fallback, with the kernel's EPERM as its reason.
 */
export const IO_URING_BLOCKED = process.env.URING_FS_IO_URING_BLOCKED ?? ''
/** The backend a process gets without URING_FS_BACKEND (or with 'auto'). */
export const AUTO_BACKEND = IO_URING_BLOCKED ? 'fallback' : 'io_uring'


/** The root of the repository: ava runs every spec with the project dir as cwd. */
export const REPO = process.cwd()
if (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).name !== 'uring-fs') {
  throw new Error(`the specs must run from the uring-fs repository, not ${REPO}`)
}

/** What the specs use of a read stream, fs's or ours. */
export type AnyReadStream = Readable & {
  fd: number | null
  path?: string | Buffer
  pending: boolean
  bytesRead: number
  pos?: number
  start?: number
  end?: number
  close(cb?: (err?: NodeJS.ErrnoException | null) => void): void
}

export type Factory = (path: unknown, options?: unknown) => AnyReadStream

export const fsFactory: Factory = (p, o) => fs.createReadStream(p as fs.PathLike, o as never) as unknown as AnyReadStream
export const uringFactory: Factory = (p, o) => createReadStream(p as never, o as never) as unknown as AnyReadStream

/** Both implementations, fs first: results are compared uring-fs against fs. */
export const IMPLS: ReadonlyArray<readonly [string, Factory]> = [
  ['fs', fsFactory],
  ['uring-fs', uringFactory],
]

// ---------------------------------------------------------------------------
// Fixtures

/** A fresh temp dir, readable by everyone (the EACCES check runs as nobody). */
export function makeTmpDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `uring-fs-${label}-`))
  fs.chmodSync(dir, 0o755)
  return dir
}

export function removeTmpDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true })
}

/** mulberry32: a small, fast, seeded PRNG giving floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The seed for randomized tests: URING_FS_TEST_SEED, or a fresh one. */
export function testSeed(): number {
  const env = process.env.URING_FS_TEST_SEED
  if (env !== undefined && env !== '') return Number(env) >>> 0
  return (Math.random() * 2 ** 32) >>> 0
}

/** An integer in [lo, hi]. */
export function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1))
}

/** `size` pseudo-random bytes from `rng`. */
export function randomContent(rng: () => number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size)
  let i = 0
  for (; i + 4 <= size; i += 4) buf.writeUInt32LE((rng() * 4294967296) >>> 0, i)
  for (; i < size; i++) buf[i] = (rng() * 256) >>> 0
  return buf
}

export function writeFixture(dir: string, name: string, content: Buffer | string): string {
  const file = path.join(dir, name)
  fs.writeFileSync(file, content)
  return file
}

// ---------------------------------------------------------------------------
// Running a stream

/** The events recorded, in order. All are safe to listen to in flowing mode. */
export const EVENTS = ['open', 'ready', 'data', 'end', 'close', 'error', 'pause', 'resume'] as const

export interface Run {
  /** Event names in emission order (every 'data' is one entry). */
  events: string[]
  chunks: Array<Buffer | string>
  /** The length of each 'data' chunk (string length for string chunks). */
  lengths: number[]
  error: NodeJS.ErrnoException | null
  /** The argument of 'open', if any. */
  openArg: unknown
  pendingAtStart: boolean
  pendingAtOpen: boolean | null
  bytesRead: number
  pos: number | undefined
  fdAtEnd: number | null
  destroyed: boolean
  stream: AnyReadStream
}

export function concat(chunks: Array<Buffer | string>): Buffer | string {
  if (chunks.length > 0 && typeof chunks[0] === 'string') return (chunks as string[]).join('')
  return Buffer.concat(chunks as Buffer[])
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve))
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Records everything a stream does until it is finished: until 'close' (plus
 * a few turns of the loop, to catch anything emitted after it), or, when no
 * 'close' follows 'end'/'error' within `quietMs`, until then.
 */
export interface RecordOptions {
  /**
   * Whether a 'close' must follow 'end'/'error' (default: true). Then the
   * record waits for it (up to 20 s: a busy machine must not cut it short);
   * otherwise it waits `quietMs` to see that none comes.
   */
  expectClose?: boolean
  quietMs?: number
  onData?: (chunk: Buffer | string, run: Run) => void
}

export function record(stream: AnyReadStream, opts: RecordOptions = {}): Promise<Run> {
  const quietMs = opts.expectClose === false ? (opts.quietMs ?? 150) : 20_000
  const run: Run = {
    events: [],
    chunks: [],
    lengths: [],
    error: null,
    openArg: undefined,
    pendingAtStart: stream.pending,
    pendingAtOpen: null,
    bytesRead: 0,
    pos: undefined,
    fdAtEnd: null,
    destroyed: false,
    stream,
  }
  return new Promise<Run>((resolve) => {
    let done = false
    // undefined: not waiting; a timer: waiting for 'close'; null: recorded.
    let quiet: NodeJS.Timeout | undefined | null
    const finish = async () => {
      if (done) return
      done = true
      if (quiet) clearTimeout(quiet)
      for (let i = 0; i < 5; i++) await tick()
      quiet = null
      run.bytesRead = stream.bytesRead
      run.pos = stream.pos
      run.fdAtEnd = stream.fd
      run.destroyed = stream.destroyed
      resolve(run)
    }
    const waitForClose = () => {
      if (quiet === undefined && !done) quiet = setTimeout(() => void finish(), quietMs)
    }
    for (const name of EVENTS) {
      stream.on(name, (arg: unknown) => {
        // The record ends when the promise resolves: later events (from a
        // destroy() by the test, say) are the test's business.
        if (done && quiet === null) return
        run.events.push(name)
        if (name === 'open') {
          run.openArg = arg
          run.pendingAtOpen = stream.pending
        } else if (name === 'data') {
          const chunk = arg as Buffer | string
          run.chunks.push(chunk)
          run.lengths.push(chunk.length)
          opts.onData?.(chunk, run)
        } else if (name === 'error') {
          run.error = arg as NodeJS.ErrnoException
          waitForClose()
        } else if (name === 'end') {
          waitForClose()
        } else if (name === 'close') {
          void finish()
        }
      })
    }
  })
}

/** Whether these stream options make a 'close' follow the end. */
function closes(options: unknown): boolean {
  if (options === null || typeof options !== 'object') return true
  const o = options as { emitClose?: unknown; autoClose?: unknown }
  return o.emitClose !== false && o.autoClose !== false
}

/** Creates a stream with `factory` and records it to the end. */
export function runStream(factory: Factory, file: unknown, options?: unknown, opts: RecordOptions = {}): Promise<Run> {
  return record(factory(file, options), { expectClose: closes(options), ...opts })
}

/** Runs the same scenario through fs and uring-fs, one after the other. */
export async function runBoth(file: unknown, options?: unknown, opts?: RecordOptions): Promise<{ fs: Run; uring: Run }> {
  // A copy each: neither implementation may see the other's mutations.
  const copy = () => (options !== null && typeof options === 'object' ? { ...(options as object) } : options)
  const a = await runStream(fsFactory, file, copy(), opts)
  const b = await runStream(uringFactory, file, copy(), opts)
  return { fs: a, uring: b }
}

export interface SpawnResult {
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  error?: Error
}

/**
 * spawnSync's result without blocking the event loop (streams of other
 * tests run meanwhile). Killed after `timeoutMs`.
 */
export function spawnAsync(
  command: string,
  args: string[],
  options: SpawnOptions & { input?: Buffer | string; timeoutMs?: number } = {},
): Promise<SpawnResult> {
  const { input, timeoutMs = 60_000, ...rest } = options
  return new Promise((resolve) => {
    const stdio = rest.stdio ?? ['pipe', 'pipe', 'pipe']
    const child = spawn(command, args, { ...rest, stdio })
    let stdout = ''
    let stderr = ''
    let error: Error | undefined
    child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    child.on('error', (e) => (error = e))
    // A child that exits before reading all its input: not our failure.
    child.stdin?.on('error', () => {})
    if (child.stdin) {
      if (input !== undefined) child.stdin.end(input)
      else child.stdin.end()
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      resolve({ status, signal, stdout, stderr, error })
    })
  })
}

/** A Writable that keeps what it is given. */
export function collector(): { writable: Writable; chunks: Buffer[] } {
  const chunks: Buffer[] = []
  const writable = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk)
      cb()
    },
  })
  return { writable, chunks }
}

// ---------------------------------------------------------------------------
// Errors

/** Everything about an error a caller could look at. */
export function errorSnapshot(err: unknown): Record<string, unknown> | null {
  if (err === null || err === undefined) return null
  const e = err as NodeJS.ErrnoException
  return {
    constructor: (e as { constructor?: unknown }).constructor,
    instanceOfError: e instanceof Error,
    instanceOfTypeError: e instanceof TypeError,
    instanceOfRangeError: e instanceof RangeError,
    name: e.name,
    code: e.code,
    errno: e.errno,
    syscall: e.syscall,
    path: e.path,
    message: e.message,
    keys: Object.keys(e),
    string: String(e),
    stackHeader: typeof e.stack === 'string' ? e.stack.split('\n')[0] : e.stack,
  }
}

/** The error `fn` throws synchronously (snapshot), or 'no throw'. */
export function thrown(fn: () => unknown): Record<string, unknown> | 'no throw' {
  try {
    const s = fn() as AnyReadStream | undefined
    // It was created after all: make sure it does not linger.
    if (s && typeof s.destroy === 'function') {
      s.on('error', () => {})
      s.destroy()
    }
    return 'no throw'
  } catch (err) {
    return errorSnapshot(err) as Record<string, unknown>
  }
}

// ---------------------------------------------------------------------------
// Descriptors

/** How many descriptors this process has open (the listing's own fd included, always). */
export function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length
}

/** What `fd` refers to now, or null when it is not open. */
export function fdTarget(fd: number): string | null {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`)
  } catch {
    return null
  }
}

/** Polls until the descriptor count is `expected` or `timeoutMs` passes; returns the last count. */
export async function settleFdCount(expected: number, timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let n = fdCount()
  while (n !== expected && Date.now() < deadline) {
    await sleep(10)
    n = fdCount()
  }
  return n
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** Reads the whole stream into one Buffer (or string). */
export async function readAll(stream: Readable): Promise<Buffer | string> {
  const chunks: Array<Buffer | string> = []
  for await (const c of stream) chunks.push(c as Buffer | string)
  return concat(chunks)
}


/** Asserts two byte (or string) sequences are equal without diffing megabytes. */
export function sameBytes(t: ExecutionContext, actual: Buffer | string, expected: Buffer | string, what: string): void {
  t.is(typeof actual, typeof expected, `${what}: type`)
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
  t.fail(`${what}: ${actual.length} bytes, expected ${expected.length}; first difference at offset ${i}`)
}

// ---------------------------------------------------------------------------
// Write streams: the same scenario through fs.createWriteStream and
// uring-fs's createWriteStream, each on its own target file.

/** What the specs use of a write stream, fs's or ours. */
export type AnyWriteStream = Writable & {
  fd: number | null
  path?: string | Buffer
  flags?: string | number
  mode?: string | number
  start?: number
  pos?: number
  flush?: boolean
  pending: boolean
  bytesWritten: number
  autoClose: boolean
  close(cb?: (err?: NodeJS.ErrnoException | null) => void): void
  destroySoon(): unknown
}

export type WriteFactory = (path: unknown, options?: unknown) => AnyWriteStream

export const fsWriteFactory: WriteFactory = (p, o) => fs.createWriteStream(p as fs.PathLike, o as never) as unknown as AnyWriteStream
export const uringWriteFactory: WriteFactory = (p, o) => createWriteStream(p as never, o as never) as unknown as AnyWriteStream

/** Both implementations, fs first. */
export const WRITE_IMPLS: ReadonlyArray<readonly ['fs' | 'uring-fs', WriteFactory]> = [
  ['fs', fsWriteFactory],
  ['uring-fs', uringWriteFactory],
]

/** The events recorded on a write stream, in order. */
export const WRITE_EVENTS = ['open', 'ready', 'drain', 'finish', 'close', 'error', 'pipe', 'unpipe'] as const

export interface WriteRun {
  /** Event names in emission order. */
  events: string[]
  error: NodeJS.ErrnoException | null
  openArg: unknown
  pendingAtStart: boolean
  pendingAtOpen: boolean | null
  /** bytesWritten when 'finish' was emitted (null: no 'finish'). */
  bytesWrittenAtFinish: number | null
  bytesWritten: number
  pos: number | undefined
  fdAtEnd: number | null
  destroyed: boolean
  /** What each driver write() returned, in order. */
  returns: boolean[]
  /** Each write callback as it was called: the write's index and its error. */
  callbacks: Array<{ index: number; error: Record<string, unknown> | null }>
  stream: AnyWriteStream
}

/** How a script writes: through these, so that returns and callbacks are recorded. */
export interface WriteDriver {
  /** stream.write(chunk[, encoding], cb), recorded. */
  write(chunk: unknown, encoding?: BufferEncoding): boolean
  /** Resolves at the next 'drain' (or 'error'/'close': never hangs). */
  drain(): Promise<void>
}

export type WriteScript = (s: AnyWriteStream, d: WriteDriver) => void | Promise<void>

/**
 * Runs `script` on `stream` and records everything until 'close' (plus a few
 * turns of the loop), or, when no 'close' is expected, until `quietMs` after
 * 'finish'/'error'.
 */
export function recordWrite(stream: AnyWriteStream, script: WriteScript, opts: RecordOptions = {}): Promise<WriteRun> {
  const quietMs = opts.expectClose === false ? (opts.quietMs ?? 150) : 20_000
  const run: WriteRun = {
    events: [],
    error: null,
    openArg: undefined,
    pendingAtStart: stream.pending,
    pendingAtOpen: null,
    bytesWrittenAtFinish: null,
    bytesWritten: 0,
    pos: undefined,
    fdAtEnd: null,
    destroyed: false,
    returns: [],
    callbacks: [],
    stream,
  }
  const driver: WriteDriver = {
    write(chunk, encoding) {
      const index = run.returns.length
      const cb = (err?: Error | null) => run.callbacks.push({ index, error: errorSnapshot(err) })
      const ret = encoding === undefined ? stream.write(chunk, cb) : stream.write(chunk, encoding, cb)
      run.returns.push(ret)
      return ret
    },
    drain() {
      return new Promise<void>((resolve) => {
        const done = () => {
          stream.off('drain', done)
          stream.off('error', done)
          stream.off('close', done)
          resolve()
        }
        stream.on('drain', done)
        stream.on('error', done)
        stream.on('close', done)
      })
    },
  }
  return new Promise<WriteRun>((resolve, reject) => {
    let done = false
    let scriptDone = false
    let ended = false
    let quiet: NodeJS.Timeout | undefined | null
    const finish = async () => {
      if (done || !scriptDone || !ended) return
      done = true
      if (quiet) clearTimeout(quiet)
      for (let i = 0; i < 5; i++) await tick()
      quiet = null
      run.bytesWritten = stream.bytesWritten
      run.pos = stream.pos
      run.fdAtEnd = stream.fd
      run.destroyed = stream.destroyed
      resolve(run)
    }
    const waitForClose = () => {
      if (quiet === undefined && !done) {
        quiet = setTimeout(() => {
          ended = true
          void finish()
        }, quietMs)
      }
    }
    for (const name of WRITE_EVENTS) {
      stream.on(name, (arg: unknown) => {
        if (done && quiet === null) return
        run.events.push(name)
        if (name === 'open') {
          run.openArg = arg
          run.pendingAtOpen = stream.pending
        } else if (name === 'finish') {
          run.bytesWrittenAtFinish = stream.bytesWritten
          waitForClose()
        } else if (name === 'error') {
          run.error = arg as NodeJS.ErrnoException
          waitForClose()
        } else if (name === 'close') {
          ended = true
          void finish()
        }
      })
    }
    Promise.resolve()
      .then(() => script(stream, driver))
      .then(
        () => {
          scriptDone = true
          void finish()
        },
        reject,
      )
  })
}

/**
 * Runs `script` through fs and through uring-fs, one after the other, each
 * on the file `target(impl)` gives (a fresh copy of the same starting point).
 */
export async function runWriteBoth(
  target: (impl: 'fs' | 'uring-fs') => unknown,
  options: unknown,
  script: WriteScript,
  opts?: RecordOptions,
): Promise<{ fs: WriteRun; uring: WriteRun }> {
  const copy = () => (options !== null && typeof options === 'object' ? { ...(options as object) } : options)
  const runs: WriteRun[] = []
  for (const [impl, factory] of WRITE_IMPLS) {
    runs.push(await recordWrite(factory(target(impl), copy()), script, { expectClose: closes(options), ...opts }))
  }
  return { fs: runs[0], uring: runs[1] }
}
