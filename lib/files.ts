// readFile / writeFile: the fs/promises helpers. A path and whole data (a
// string, Buffer, TypedArray or DataView) take one native call (open, size
// from fstat, read or batch write, close on the engine's runtime) and one
// crossing back. On io_uring a regular file up to 8 MiB is read as one
// linked open -> read -> close on the JavaScript thread's own ring, with no
// thread hand-off at all; anything else then takes the general way. Everything else follows Node's lib/internal/fs/promises.js
// step by step: the order in which arguments are checked (so that the same
// error wins when several are wrong), an (async) iterable written piece by
// piece into a file opened first, and a FileHandle in place of the path.

import { Writable, addAbortSignal } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import * as binding from '../binding'
import {
  type FileError,
  type LargeFile,
  close as nativeClose,
  fsync as nativeFsync,
  open as nativeOpen,
  readFile as nativeReadFile,
  readInto as nativeReadInto,
  writeFile as nativeWriteFile,
  writev as nativeWritev,
} from '../binding'
import { fileTooLarge, invalidArgType, systemError } from './errors'
import { ReadStream } from './read-stream'
import { asFileHandle, getOptions, parseFileMode, stringToFlags, toPath, validateBoolean } from './validate'
import type { FileHandleLike } from './validate'

export interface ReadFileOptions {
  encoding?: BufferEncoding | null
  flag?: string | number
  signal?: AbortSignal
}

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

/** fs/promises' checkAborted. */
function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const AbortError = nodeAbortError()
    throw new AbortError(undefined, { cause: signal.reason })
  }
}

/** fs.promises.readFile: the whole file as a Buffer, or a string with `encoding`. */
export async function readFile(path: unknown, options?: ReadFileOptions | BufferEncoding | null): Promise<Buffer | string> {
  const opts = getOptions<ReadFileOptions>(options)
  const flag = opts.flag || 'r'
  const signal = opts.signal
  const handle = asFileHandle(path)
  if (handle !== null) return readFileHandle(handle, opts.encoding, signal)
  checkAborted(signal)
  const p = toPath(path)
  const flags = stringToFlags(flag)
  const pathBuf = Buffer.from(p)
  const res = (await readSmall(pathBuf, flags)) ?? (await nativeReadFile(pathBuf, flags))
  if ('fd' in res) return decode(await readLarge(res), opts.encoding, signal)
  if (!Buffer.isBuffer(res)) {
    // Once the file is open, fs makes its decoder before reading: an
    // encoding it cannot decode fails before a read error (a directory).
    if (res.syscall !== 'open' && opts.encoding) new StringDecoder(opts.encoding as BufferEncoding)
    throw systemError(res.errno, res.syscall, res.syscall === 'open' ? p : undefined)
  }
  // fs refuses, before reading, a file of more than kIoMaxLength bytes; the
  // native read does not look, so the same error comes after the read.
  if (res.length > K_IO_MAX_LENGTH) throw fileTooLarge(res.length)
  return decode(res, opts.encoding, signal)
}

/**
 * A large regular file the native side opened: read in parallel parts into
 * a Buffer allocated here, as fs allocates it, so that V8 accounts for it
 * and collects earlier ones before this one's pages are faulted in. Closes
 * the file.
 */
async function readLarge(file: LargeFile): Promise<Buffer> {
  try {
    // fs refuses, before reading, a file of more than kIoMaxLength bytes.
    if (file.size > K_IO_MAX_LENGTH) throw fileTooLarge(file.size)
    const buf = Buffer.allocUnsafeSlow(file.size)
    const n = await nativeReadInto(file.fd, buf, file.size)
    if (typeof n !== 'number') throw systemError(n.errno, n.syscall)
    return n < file.size ? buf.subarray(0, n) : buf
  } finally {
    await nativeClose(file.fd)
  }
}

/** The JavaScript thread's ring: absent from builds without io_uring. */
const nativeReadSmall: typeof binding.readSmallFile | undefined = (binding as Partial<typeof binding>).readSmallFile

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

/** The end of fs's readFileHandle: its abort check, and its decoding (which rejects 'buffer'). */
function decode(buf: Buffer, encoding: BufferEncoding | 'buffer' | null | undefined, signal: AbortSignal | undefined): Buffer | string {
  // fs makes its decoder before reading: an encoding it cannot decode
  // (getOptions lets 'buffer' through) fails once the file is open.
  if (encoding) new StringDecoder(encoding as BufferEncoding)
  checkAborted(signal)
  return encoding ? buf.toString(encoding as BufferEncoding) : buf
}

/** readFile of a FileHandle: from its current position to the end; the handle stays open. */
async function readFileHandle(
  handle: FileHandleLike,
  encoding: BufferEncoding | 'buffer' | null | undefined,
  signal: AbortSignal | undefined,
): Promise<Buffer | string> {
  if (encoding) new StringDecoder(encoding as BufferEncoding)
  checkAborted(signal)
  const chunks: Buffer[] = []
  const stream = new ReadStream(null, { fd: handle.fd, autoClose: false, highWaterMark: 1 << 20 })
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer)
    if (signal?.aborted) {
      // Leaving the loop destroys the stream, which closes the descriptor
      // it has: let go of it first, it is the handle's.
      stream.fd = null
      checkAborted(signal)
    }
  }
  return decode(Buffer.concat(chunks), encoding, signal)
}

function isIterable(obj: unknown): obj is Iterable<unknown> | AsyncIterable<unknown> {
  if (obj == null) return false
  const o = obj as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown }
  return typeof o[Symbol.asyncIterator] === 'function' || typeof o[Symbol.iterator] === 'function'
}

/** fs's isCustomIterable: iterable, but neither a view nor a string. */
function isCustomIterable(obj: unknown): obj is Iterable<unknown> | AsyncIterable<unknown> {
  return isIterable(obj) && !ArrayBuffer.isView(obj) && typeof obj !== 'string'
}

function asBuffer(view: ArrayBufferView): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength)
}

/**
 * fs.promises.writeFile: a string, Buffer, TypedArray or DataView is
 * written as one batch; an (async) iterable piece by piece, as it comes,
 * into the file opened first (as fs does: a failing iterable leaves what
 * was written before it). With `flush`, fsynced before the promise
 * resolves.
 */
export async function writeFile(path: unknown, data: unknown, options?: WriteFileOptions | BufferEncoding | null): Promise<void> {
  const opts = getOptions<WriteFileOptions>(options)
  const flag = opts.flag || 'w'
  const flush = opts.flush ?? false
  validateBoolean(flush, 'options.flush')
  const encoding = (opts.encoding || 'utf8') as BufferEncoding
  let whole: Buffer | null = null
  if (ArrayBuffer.isView(data)) {
    whole = asBuffer(data)
  } else if (!isCustomIterable(data)) {
    if (typeof data !== 'string') throw invalidArgType('data', ['string', 'Buffer', 'TypedArray', 'DataView'], data)
    whole = Buffer.from(data, encoding)
  }
  const signal = opts.signal
  const handle = asFileHandle(path)
  if (handle !== null) {
    // As fs: at the handle's position, neither flushed nor closed.
    await writeAll(handle.fd, whole ?? (data as Iterable<unknown>), signal, encoding)
    return
  }
  checkAborted(signal)
  const p = toPath(path)
  const flags = stringToFlags(flag)
  const mode = parseFileMode(opts.mode, 'mode', 0o666)
  if (whole !== null) {
    const res = await nativeWriteFile(Buffer.from(p), whole.length > 0 ? [whole] : [], flags, mode, flush)
    if (res.errno !== 0) throw systemError(res.errno, res.syscall, res.syscall === 'open' ? p : undefined)
    return
  }
  const fd = await nativeOpen(Buffer.from(p), flags, mode)
  if (fd < 0) throw systemError(fd, 'open', p)
  let failure: unknown = null
  try {
    await writeAll(fd, data as Iterable<unknown>, signal, encoding)
    if (flush) {
      const res = await nativeFsync(fd, false)
      if (res < 0) throw systemError(res, 'fsync')
    }
  } catch (err) {
    failure = err
  }
  const closed = await nativeClose(fd)
  if (failure !== null) throw failure
  if (closed < 0) throw systemError(closed, 'close')
}

/** fs's writeFileHandle: `data` (whole, or piece by piece) at the descriptor's position. */
async function writeAll(fd: number, data: Buffer | Iterable<unknown> | AsyncIterable<unknown>, signal: AbortSignal | undefined, encoding: BufferEncoding): Promise<void> {
  checkAborted(signal)
  if (Buffer.isBuffer(data)) {
    if (data.length > 0) await writeChunk(fd, data)
    return
  }
  for await (const piece of data) {
    checkAborted(signal)
    // As fs: a view as it is, anything else through Buffer.from (which
    // throws fs's error for what it cannot take).
    const buf = ArrayBuffer.isView(piece) ? asBuffer(piece) : Buffer.from(piece as string, encoding)
    if (buf.length === 0) continue
    await writeChunk(fd, buf)
    checkAborted(signal)
  }
}

async function writeChunk(fd: number, buf: Buffer): Promise<void> {
  const res = await nativeWritev(fd, [buf], -1, 0)
  if (res.errno !== 0) throw systemError(res.errno, 'write')
}
