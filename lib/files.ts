// readFile / writeFile: the fs/promises helpers. A plain call (a path, whole
// data: a string, Buffer, TypedArray or DataView, and options fs accepts as
// they are) takes one native call (open, size from fstat, read or batch
// write, close on the engine's runtime) and one crossing back. On io_uring
// a regular file up to 8 MiB is read as one linked open -> read -> close on
// the JavaScript thread's own ring, with no thread hand-off at all.
//
// Everything else is fs.promises itself: arguments fs refuses (so the error,
// and which one wins when several are wrong, is the running Node's own: it
// changes between versions), a FileHandle, an (async) iterable of data,
// options this package does not know. And so is a native call that fails:
// the call is made again through fs, whose error is the exact one of the
// Node that runs (a retry of what failed, before anything was written).

import { Writable, addAbortSignal } from 'node:stream'
import { promises as fsp } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import type { FileError, LargeFile } from '../binding'
import { engine, native } from './native'
import { fileTooLarge, systemError } from './errors'
import { parseFileMode, stringToFlags, toPath } from './validate'

export interface ReadFileOptions {
  encoding?: BufferEncoding | null
  flag?: string | number
  signal?: AbortSignal
}

/** What readFile, readFiles and writeFile take as a path (fs's PathLike). */
export type PathLike = string | Buffer | URL

export interface WriteFileOptions {
  encoding?: BufferEncoding | null
  mode?: number | string
  flag?: string | number
  flush?: boolean
  signal?: AbortSignal
}

/** fs's kIoMaxLength: the largest file readFile reads. */
const K_IO_MAX_LENGTH = 2 ** 31 - 1

type AbortErrorClass = new (message?: string, options?: { cause?: unknown }) => Error

let abortErrorClass: AbortErrorClass | null = null

/**
 * Node's own AbortError class (not exported by Node): taken once from the
 * error a stream gets for an already aborted signal.
 */
function nodeAbortError(): AbortErrorClass {
  if (abortErrorClass === null) {
    const ac = new AbortController()
    ac.abort()
    const probe = new Writable({ write: (_c, _e, cb) => cb() })
    probe.on('error', () => {})
    addAbortSignal(ac.signal, probe)
    abortErrorClass = (probe.errored as Error).constructor as AbortErrorClass
  }
  return abortErrorClass
}

/** fs/promises' checkAborted: an abort while the work ran still wins. */
function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const AbortError = nodeAbortError()
    throw new AbortError(undefined, { cause: signal.reason })
  }
}

/** A path fs takes as it is (a string or Buffer without NUL, a file: URL), or null. */
function plainPath(path: unknown): string | Buffer | null {
  if (path !== null && typeof path === 'object' && !(path instanceof Uint8Array) && !(path instanceof URL)) return null
  try {
    return toPath(path)
  } catch {
    return null
  }
}

/** fs's open flags for `flag`, or null when fs would refuse it. */
function plainFlags(flag: unknown, def: string): number | null {
  try {
    return stringToFlags(flag || def)
  } catch {
    return null
  }
}

function plainEncoding(encoding: unknown): encoding is BufferEncoding | null | undefined {
  return encoding == null || (typeof encoding === 'string' && encoding !== 'buffer' && Buffer.isEncoding(encoding))
}

/** A signal fs accepts and that has not fired. */
function liveSignal(signal: unknown): signal is AbortSignal | undefined {
  return signal === undefined || (signal instanceof AbortSignal && !signal.aborted)
}

/** The options as an object, if every key (own or inherited, as fs copies them) is one of `known`. */
function knownOptions(options: unknown, known: readonly string[]): Record<string, unknown> | null {
  if (options == null) return {}
  if (typeof options === 'string') return Buffer.isEncoding(options) && (options as string) !== 'buffer' ? { encoding: options } : null
  if (typeof options !== 'object') return null
  const o = options as Record<string, unknown>
  for (const key in o) if (!known.includes(key)) return null
  return o
}

interface PlainRead {
  path: string | Buffer
  flags: number
  encoding: BufferEncoding | null | undefined
  signal: AbortSignal | undefined
}

/** The read the engine does, when fs would take the arguments as they are. */
function plainRead(path: unknown, options: unknown): PlainRead | null {
  const o = knownOptions(options, ['encoding', 'flag', 'signal'])
  if (o === null || !plainEncoding(o.encoding) || !liveSignal(o.signal)) return null
  const p = plainPath(path)
  const flags = plainFlags(o.flag, 'r')
  if (p === null || flags === null) return null
  return { path: p, flags, encoding: o.encoding, signal: o.signal }
}

/** fs.promises.readFile: the whole file as a Buffer, or a string with `encoding`. */
export function readFile(path: PathLike | FileHandle, options?: (ReadFileOptions & { encoding?: null }) | null): Promise<Buffer>
export function readFile(path: PathLike | FileHandle, options: (ReadFileOptions & { encoding: BufferEncoding }) | BufferEncoding): Promise<string>
export function readFile(path: PathLike | FileHandle, options?: ReadFileOptions | BufferEncoding | null): Promise<Buffer | string>
export async function readFile(path: unknown, options?: ReadFileOptions | BufferEncoding | null): Promise<Buffer | string> {
  const fsReadFile = (): Promise<Buffer | string> => fsp.readFile(path as Parameters<typeof fsp.readFile>[0], options)
  const plain = native === null ? null : plainRead(path, options)
  if (plain === null) return fsReadFile()
  const pathBuf = Buffer.from(plain.path)
  const res = (await readSmall(pathBuf, plain.flags)) ?? (await engine().readFile(pathBuf, plain.flags))
  let buf: Buffer | null
  if ('fd' in res) buf = await readLarge(res)
  else buf = Buffer.isBuffer(res) && res.length <= K_IO_MAX_LENGTH ? res : null
  // A failure (or a file fs refuses as too large): fs's own outcome.
  if (buf === null) return fsReadFile()
  checkAborted(plain.signal)
  return plain.encoding ? buf.toString(plain.encoding) : buf
}

/**
 * A large regular file the native side opened: read in parallel parts into
 * a Buffer allocated here, as fs allocates it, so that V8 accounts for it
 * and collects earlier ones before this one's pages are faulted in. Closes
 * the file. Null when fs must say what went wrong.
 */
async function readLarge(file: LargeFile): Promise<Buffer | null> {
  try {
    // fs refuses, before reading, a file of more than kIoMaxLength bytes.
    if (file.size > K_IO_MAX_LENGTH) throw fileTooLarge(file.size)
    const buf = Buffer.allocUnsafeSlow(file.size)
    const n = await engine().readInto(file.fd, buf, file.size)
    if (typeof n !== 'number') return null
    return n < file.size ? buf.subarray(0, n) : buf
  } finally {
    await engine().close(file.fd)
  }
}

/** The JavaScript thread's ring: absent from builds without io_uring. */
const nativeReadSmall = (native as Partial<NonNullable<typeof native>> | null)?.readSmallFile

/**
 * The file whole if it is a regular file up to 8 MiB (one read), from the
 * JavaScript thread's ring; null when it must be read the general way
 * (larger, not a regular file, or no ring on this thread or backend).
 */
function readSmall(path: Buffer, flags: number): Promise<Buffer | FileError | null> | null {
  if (nativeReadSmall === undefined) return null
  let settle!: (res: Buffer | FileError | null) => void
  const done = new Promise<Buffer | FileError | null>((resolve) => (settle = resolve))
  const queued = nativeReadSmall(path, flags, (code: number, syscall: string, contents?: Buffer) => {
    settle(code === 0 && contents !== undefined ? contents : code < 0 ? { errno: code, syscall } : null)
  })
  return queued ? done : null
}

interface PlainWrite {
  path: string | Buffer
  data: Buffer
  flags: number
  mode: number
  flush: boolean
  signal: AbortSignal | undefined
}

function asBuffer(view: ArrayBufferView): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength)
}

/** The write the engine does, when fs would take the arguments as they are. */
function plainWrite(path: unknown, data: unknown, options: unknown): PlainWrite | null {
  const o = knownOptions(options, ['encoding', 'mode', 'flag', 'flush', 'signal'])
  if (o === null || !plainEncoding(o.encoding) || !liveSignal(o.signal)) return null
  if (o.flush != null && typeof o.flush !== 'boolean') return null
  if (!ArrayBuffer.isView(data) && typeof data !== 'string') return null
  const p = plainPath(path)
  const flags = plainFlags(o.flag, 'w')
  if (p === null || flags === null) return null
  let mode: number
  try {
    mode = parseFileMode(o.mode, 'mode', 0o666)
  } catch {
    return null
  }
  const bytes = typeof data === 'string' ? Buffer.from(data, o.encoding || 'utf8') : asBuffer(data)
  return { path: p, data: bytes, flags, mode, flush: o.flush === true, signal: o.signal }
}

/**
 * fs.promises.writeFile: a string, Buffer, TypedArray or DataView written as
 * one batch (with `flush`, fsynced before the promise resolves); an
 * (async) iterable, a FileHandle, and what fs refuses, as fs does them.
 */
export function writeFile(
  path: PathLike | FileHandle,
  data: string | NodeJS.ArrayBufferView | Iterable<string | NodeJS.ArrayBufferView> | AsyncIterable<string | NodeJS.ArrayBufferView>,
  options?: WriteFileOptions | BufferEncoding | null,
): Promise<void>
export async function writeFile(path: unknown, data: unknown, options?: WriteFileOptions | BufferEncoding | null): Promise<void> {
  const fsWriteFile = (): Promise<void> =>
    fsp.writeFile(path as Parameters<typeof fsp.writeFile>[0], data as Parameters<typeof fsp.writeFile>[1], options)
  const plain = native === null ? null : plainWrite(path, data, options)
  if (plain === null) return fsWriteFile()
  const d = plain.data
  const res = await engine().writeFile(Buffer.from(plain.path), d.length > 0 ? [d] : [], plain.flags, plain.mode, plain.flush)
  // The open failed, nothing is written: fs says exactly how.
  if (res.errno !== 0 && res.syscall === 'open') return fsWriteFile()
  if (res.errno !== 0) throw systemError(res.errno, res.syscall)
  checkAborted(plain.signal)
}
