// ReadStream: fs.ReadStream itself, with its bytes from the native
// read-ahead pump.
//
// ReadStream inherits from the fs.ReadStream of the Node that runs, the way
// fs's own classes are built (a function that calls its parent on `this`),
// so that the constructor (option copying, validation and its errors), the
// properties (`path`, `fd`, `flags`, `mode`, `start`, `end`, `pos`,
// `bytesRead`, `autoClose`, `pending`), `close()`, `instanceof
// fs.ReadStream`, a call without `new` and a subclass made with
// `ReadStream.call(this, ...)` are that Node's own, version quirks included.
// Only what moves bytes is replaced: opening, reading and closing go to the
// engine, unless the caller asked fs for something the engine cannot honour
// (`fsDoesTheWork`, a patched open(), no native binary): then every method
// is fs's, and the package calls exactly the functions fs would call.

import * as fs from 'node:fs'
import type { NativeReadStream } from '../binding'
import { engine, nativeLoaded } from './native'
import { outOfRange, systemError } from './errors'
import { constructedWithoutEngine, fsDoesTheWork, fsOpenOf, handOverFd, inheritFsStream, kEngine, nodeStreamMethod } from './fs-stream-base'
import { parseFileMode, stringToFlags } from './validate'

export interface ReadStreamOptions {
  flags?: string | number
  encoding?: BufferEncoding | null
  fd?: number | fs.promises.FileHandle | null
  mode?: number | string
  autoClose?: boolean
  emitClose?: boolean
  start?: number
  end?: number
  highWaterMark?: number
  signal?: AbortSignal | null
  /** Custom fs functions (`open`, `read`, `close`): used as fs uses them. */
  fs?: Partial<Pick<typeof fs, 'open' | 'read' | 'close'>> | null
  /**
   * uring-fs only: how many bytes to read ahead of the consumer, in flight
   * or read and waiting (within 4 to 64 chunks). Default: 1 MiB, growing to
   * 12 MiB while the consumer keeps up.
   */
  readAhead?: number
}

/**
 * Bytes read ahead of the consumer by default (within MIN_AHEAD and
 * MAX_AHEAD chunks): what a stream holds while its consumer is slower than
 * the reads (a slow HTTP client).
 */
const DEFAULT_READ_AHEAD = 1 << 20
/**
 * What the read-ahead grows to while the consumer keeps up (finds nothing
 * ready when it comes back), if the process-wide budget for growth allows
 * (the engine's, 256 MiB). The chunks are Buffers allocated before their
 * reads, and one that waits long enough to outlive two scavenges (V8
 * scavenges when about 32 MiB of young Buffers are out) is promoted and
 * dies only in a full GC; less room, and the reads wait for the consumer.
 * 1 GiB cached, 'data' consumer: 1 MiB chunks, 8-12 chunks ahead 0-4
 * mark-compacts per GiB, 16 or more 5-12 and slower; 64 KiB chunks, 64
 * ahead 1.2x faster than 16.
 */
const GROWN_READ_AHEAD = 12 << 20
/** fs's kIoMaxLength: the most one read asks for. */
const K_IO_MAX_LENGTH = 2 ** 31 - 1
const MIN_AHEAD = 4
const MAX_AHEAD = 64

const fsConstruct = nodeStreamMethod(fs.ReadStream, '_construct')
const fsRead = nodeStreamMethod(fs.ReadStream, '_read')
const fsDestroy = nodeStreamMethod(fs.ReadStream, '_destroy')
const fsOpen = fsOpenOf(fs.ReadStream)

/**
 * The bytes come from the engine. False where fs must do the work: a custom
 * `fs`, a FileHandle as `fd` (read through the handle, as fs does), a
 * patched open(), or no native binary. Absent until the constructor ran.
 */
const kReadAhead = Symbol('kReadAhead')
const kNative = Symbol('kNative')
/** A _read is waiting for chunks. */
const kReading = Symbol('kReading')
/** Chunks taken from the pump but not yet pushed. */
const kTaken = Symbol('kTaken')

export interface ReadStream extends fs.ReadStream {
  fd: number | null
  flags: string | number | undefined
  mode: number | string | undefined
  start: number | undefined
  end: number
  pos: number | undefined
  [kEngine]?: boolean
  [kReadAhead]: number | undefined
  [kNative]: NativeReadStream | null
  [kReading]: boolean
  [kTaken]: Buffer[]
}

/** A path, or null with `fd` (fs's PathLike). */
type StreamPath = string | Buffer | URL | null

export interface ReadStreamConstructor {
  new (path: StreamPath, options?: ReadStreamOptions | BufferEncoding): ReadStream
  (path: StreamPath, options?: ReadStreamOptions | BufferEncoding): ReadStream
  readonly prototype: ReadStream
}

/** fs.ReadStream's drop-in: callable with or without `new`, and on a subclass's `this`. */
export const ReadStream = function ReadStream(
  this: ReadStream | undefined,
  path: unknown,
  options?: ReadStreamOptions | BufferEncoding,
): ReadStream {
  if (!(this instanceof ReadStream)) return new (ReadStream as unknown as ReadStreamConstructor)(path as StreamPath, options)
  ;(fs.ReadStream as unknown as (this: ReadStream, ...args: unknown[]) => void).call(this, path, options)
  this[kReadAhead] = typeof options === 'object' && options !== null ? options.readAhead : undefined
  this[kNative] = null
  this[kReading] = false
  this[kTaken] = []
  this[kEngine] = nativeLoaded() && !fsDoesTheWork(options)
  return this
} as unknown as ReadStreamConstructor

inheritFsStream(ReadStream, fs.ReadStream)

ReadStream.prototype._construct = function (this: ReadStream, callback: (error?: Error | null) => void): void {
  if (constructedWithoutEngine(this, fsOpen, fsConstruct, callback)) return
  let flags = 0
  let mode = 0
  if (this.fd === null) {
    try {
      // fs.open's order: the mode is checked before the flags.
      mode = parseFileMode(this.mode, 'mode', 0o666)
      flags = stringToFlags(this.flags)
    } catch (err) {
      callback(err as Error)
      return
    }
  }
  const hwm = this.readableHighWaterMark
  if (hwm > K_IO_MAX_LENGTH) {
    // fs allocates a highWaterMark-sized Buffer per read: from 2 GiB it
    // stalls, ends without data or fails, by Node version. One clear error.
    callback(outOfRange('highWaterMark', `<= ${K_IO_MAX_LENGTH}`, hwm))
    return
  }
  // fs reads an fd given without `start` from its current position, and a
  // path without `start` from 0, or from the current position when it
  // names a FIFO or a device (the engine checks, given no start).
  const atCurrentPosition = this.start === undefined && this.fd !== null
  // fs reads at most highWaterMark bytes per _read: with 0 it reads nothing
  // (an end at the start; at the current position, end counts bytes).
  const end = hwm === 0 ? (this.start ?? 0) : this.end === Infinity ? undefined : this.end + 1
  const chunk = Math.max(1, hwm)
  const chunks = (bytes: number): number => Math.max(MIN_AHEAD, Math.min(MAX_AHEAD, Math.ceil(bytes / chunk)))
  // An explicit readAhead is used as given; the default grows for a
  // consumer that keeps up.
  const readAhead = this[kReadAhead]
  const window = chunks(readAhead ?? DEFAULT_READ_AHEAD)
  const native = new (engine().NativeReadStream)(
    {
      path: this.fd === null ? Buffer.from(this.path as string | Buffer) : undefined,
      fd: this.fd ?? undefined,
      flags,
      mode,
      start: atCurrentPosition ? undefined : this.start,
      atCurrentPosition,
      end,
      chunkSize: chunk,
      readAhead: window,
      growReadAheadTo: readAhead === undefined ? chunks(GROWN_READ_AHEAD) : window,
    },
    () => pull(this),
  )
  this[kNative] = native
  native.start().then(
    (res) => {
      if (res < 0) {
        callback(systemError(res, 'open', this.path))
        return
      }
      if (this.fd === null) {
        this.fd = res
        callback()
        this.emit('open', res)
        this.emit('ready')
      } else {
        callback()
      }
    },
    (err: Error) => callback(err),
  )
}

ReadStream.prototype._read = function (this: ReadStream, n: number): void {
  if (!this[kEngine]) {
    fsRead.call(this, n)
    return
  }
  this[kReading] = true
  // Never push from inside _read, as fs never does (its reads are
  // asynchronous): a chunk pushed there is buffered while the previous one
  // is being emitted, and Readable emits buffered data even after a
  // destroy() in a 'data' handler.
  process.nextTick(pull, this)
}

/**
 * Moves the chunks the pump has ready into the stream, as long as the
 * stream wants more (push() returns true) and is not destroyed; the rest
 * wait in kTaken for the next _read.
 */
function pull(stream: ReadStream): void {
  const native = stream[kNative]
  if (!stream[kReading] || native === null || stream.destroyed) return
  const r = stream[kTaken].length > 0 ? stream[kTaken] : native.take()
  if (Array.isArray(r)) {
    if (r.length === 0) return // onReady calls back when data is in
    stream[kReading] = false
    let i = 0
    while (i < r.length) {
      const buf = r[i++]
      stream.bytesRead += buf.length
      if (stream.pos !== undefined) stream.pos += buf.length
      if (!stream.push(buf) || stream.destroyed) break
    }
    stream[kTaken] = i < r.length ? r.slice(i) : []
  } else if (r === null) {
    stream[kReading] = false
    native.release()
    // fs learns of the end from a read's callback, a turn of the event
    // loop later; a stream destroyed meanwhile (from a 'data' handler
    // after a pause) ends without 'end' there, and so here.
    setImmediate(pushEnd, stream)
  } else {
    stream[kReading] = false
    native.release()
    errorOrDestroy(stream, systemError(r, 'read'))
  }
}

function pushEnd(stream: ReadStream): void {
  if (!stream.destroyed) stream.push(null)
}

/**
 * What Node's streams do with an I/O error (internal/streams/destroy.js's
 * errorOrDestroy): destroy with it when autoDestroy (autoClose) is on, else
 * only emit it, once, and leave the stream and its descriptor as they are.
 */
function errorOrDestroy(stream: ReadStream, err: Error): void {
  const state = (stream as unknown as { _readableState: { autoDestroy: boolean; errored: Error | null; errorEmitted: boolean } })._readableState
  if (stream.destroyed) return
  if (state.autoDestroy) {
    stream.destroy(err)
    return
  }
  if (!state.errored) state.errored = err
  if (state.errorEmitted) return
  state.errorEmitted = true
  stream.emit('error', err)
}

ReadStream.prototype._destroy = function (this: ReadStream, err: Error | null, callback: (error?: Error | null) => void): void {
  // The engine stops reading and waits for every read in flight to come
  // back from the kernel; then fs's own _destroy closes the descriptor, by
  // the rules of the Node that runs (which descriptors, which error wins).
  // (Readable's constructor destroys at once for an aborted signal, before
  // this class's part of the constructor ran: nothing is open then.)
  const native = this[kEngine] ? this[kNative] : null
  if (native === null) {
    fsDestroy.call(this, err, callback)
    return
  }
  this[kNative] = null
  this[kTaken] = []
  native.destroy(false).then(
    () => {
      // fs's _destroy is about to close the descriptor: the environment no
      // longer does when it ends (a worker's), even once the number is reused.
      handOverFd(this)
      fsDestroy.call(this, err, callback)
    },
    (e: Error) => callback(e),
  )
}

export function createReadStream(path: StreamPath, options?: ReadStreamOptions | BufferEncoding): ReadStream {
  return new ReadStream(path, options)
}
