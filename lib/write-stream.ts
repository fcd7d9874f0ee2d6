// WriteStream: fs.WriteStream itself, with its writes going through the
// native batch writer.
//
// WriteStream inherits from the fs.WriteStream of the Node that runs, as
// ReadStream does from fs.ReadStream (constructor, validation, properties,
// close(), destroySoon(), `instanceof fs.WriteStream`, a call without `new`,
// `WriteStream.call(this, ...)` from a subclass), and replaces what moves
// bytes, unless the caller asked fs for something the engine cannot honour:
// a custom `fs`, a FileHandle as `fd`, a patched open() (then every method
// is fs's). Every group of
// buffered chunks (_writev) is one batch: one submission, written in order
// at its offset, the JS Buffers held by reference until the kernel is done
// with them (never copied). On io_uring the batches go to the JavaScript
// thread's own ring and complete from its event loop
// (crates/node/src/loop_ops.rs): no thread hand-off. Quirks are fs's: a
// destroy() while a write is in the kernel makes that write fail with
// ERR_STREAM_DESTROYED, which becomes the stream's 'error'.
// With `flush`, as fs (whose _destroy closes): the descriptor is fsynced
// while closing, after 'finish', so 'close' says the bytes are on disk.

import * as fs from 'node:fs'
import type { NativeWriter } from '../binding'
import { engine, nativeLoaded } from './native'
import { invalidArgType, streamDestroyed, systemError } from './errors'
import { constructedWithoutEngine, fsDoesTheWork, fsOpenOf, handOverFd, inheritFsStream, kEngine, nodeStreamMethod } from './fs-stream-base'
import { parseFileMode, stringToFlags } from './validate'

export interface WriteStreamOptions {
  flags?: string | number
  encoding?: BufferEncoding | null
  fd?: number | fs.promises.FileHandle | null
  mode?: number | string
  autoClose?: boolean
  emitClose?: boolean
  start?: number
  highWaterMark?: number
  signal?: AbortSignal | null
  flush?: boolean
  /** Custom fs functions (`open`, `write` and/or `writev`, `close`, `fsync`): used as fs uses them. */
  fs?: Partial<Pick<typeof fs, 'open' | 'write' | 'writev' | 'close' | 'fsync'>> | null
}

const fsConstruct = nodeStreamMethod(fs.WriteStream, '_construct')
const fsWrite = nodeStreamMethod(fs.WriteStream, '_write')
const fsWritev = nodeStreamMethod(fs.WriteStream, '_writev')
const fsDestroy = nodeStreamMethod(fs.WriteStream, '_destroy')
const fsOpen = fsOpenOf(fs.WriteStream)

type WriteCallback = (error?: Error | null) => void

/** The writes go to the engine (see the file's header for when not). Absent until the constructor ran. */
/**
 * Settles when the batch the kernel is working on is done, with the error
 * its write callback got (if any).
 */
const kInflight = Symbol('kInflight')
/** The native batch writer for `fd`, made on the first write. */
const kWriter = Symbol('kWriter')
/** Where the result of the batch in the kernel goes. */
const kOnWritten = Symbol('kOnWritten')
/** The stream opened its descriptor (no `fd` option): nobody else uses it. */
const kOwnsFd = Symbol('kOwnsFd')

export interface WriteStream extends fs.WriteStream {
  fd: number | null
  flags: string | number | undefined
  mode: number | string | undefined
  start: number | undefined
  pos: number | undefined
  flush: boolean
  /** fs's alias of end(): files have no shutdown(). */
  destroySoon(): this
  [kEngine]?: boolean
  [kInflight]: Promise<Error | null | undefined> | null
  [kWriter]: NativeWriter | null
  [kOnWritten]: ((written: number, errno: number) => void) | null
  [kOwnsFd]: boolean
}

/** A path, or null with `fd` (fs's PathLike). */
type StreamPath = string | Buffer | URL | null

export interface WriteStreamConstructor {
  new (path: StreamPath, options?: WriteStreamOptions | BufferEncoding): WriteStream
  (path: StreamPath, options?: WriteStreamOptions | BufferEncoding): WriteStream
  readonly prototype: WriteStream
}

/** fs.WriteStream's drop-in: callable with or without `new`, and on a subclass's `this`. */
export const WriteStream = function WriteStream(
  this: WriteStream | undefined,
  path: unknown,
  options?: WriteStreamOptions | BufferEncoding,
): WriteStream {
  if (!(this instanceof WriteStream)) return new (WriteStream as unknown as WriteStreamConstructor)(path as StreamPath, options)
  ;(fs.WriteStream as unknown as (this: WriteStream, ...args: unknown[]) => void).call(this, path, options)
  this[kInflight] = null
  this[kWriter] = null
  this[kOnWritten] = null
  this[kOwnsFd] = false
  this[kEngine] = nativeLoaded() && !fsDoesTheWork(options)
  return this
} as unknown as WriteStreamConstructor

inheritFsStream(WriteStream, fs.WriteStream)

WriteStream.prototype._construct = function (this: WriteStream, callback: (error?: Error | null) => void): void {
  if (constructedWithoutEngine(this, fsOpen, fsConstruct, callback)) return
  if (this.fd !== null) {
    callback()
    return
  }
  let flags: number
  let mode: number
  try {
    // fs.open's order: the mode is checked before the flags.
    mode = parseFileMode(this.mode, 'mode', 0o666)
    flags = stringToFlags(this.flags)
  } catch (err) {
    callback(err as Error)
    return
  }
  engine().open(Buffer.from(this.path as string | Buffer), flags, mode).then(
    (res) => {
      if (res < 0) {
        callback(systemError(res, 'open', this.path))
        return
      }
      this.fd = res
      this[kOwnsFd] = true
      callback()
      this.emit('open', res)
      this.emit('ready')
    },
    (err: Error) => callback(err),
  )
}

WriteStream.prototype._write = function (this: WriteStream, chunk: Buffer, encoding: BufferEncoding, cb: WriteCallback): void {
  if (!this[kEngine]) {
    fsWrite.call(this, chunk, encoding, cb)
    return
  }
  writeBatch(this, [chunk], chunk.length, 'write', cb)
}

WriteStream.prototype._writev = function (this: WriteStream, chunks: Array<{ chunk: Buffer }>, cb: WriteCallback): void {
  if (!this[kEngine]) {
    fsWritev.call(this, chunks, cb)
    return
  }
  const bufs = new Array<Buffer>(chunks.length)
  let size = 0
  for (let i = 0; i < chunks.length; i++) {
    bufs[i] = chunks[i].chunk
    size += bufs[i].length
  }
  writeBatch(this, bufs, size, 'writev', cb)
}

/** A write that never completes (see writeBatch). */
const NEVER = new Promise<Error | null | undefined>(() => {})

/**
 * Writes `bufs` in order at the stream's current position, as one native
 * batch, then calls `cb`. `call` names the write in ERR_STREAM_DESTROYED,
 * as fs names it.
 */
function writeBatch(stream: WriteStream, bufs: Buffer[], size: number, call: string, cb: WriteCallback): void {
  // fs.write/fs.writev check the descriptor first (a stream whose open
  // failed, with autoClose: false, still takes writes): the same throw.
  if (typeof stream.fd !== 'number') {
    // fs marks the stream as performing I/O before that throw, and nothing
    // ever clears the mark: a later destroy() waits for it for good, and
    // 'close' never comes. The same here, with a write that never ends.
    stream[kInflight] = NEVER
    throw invalidArgType('fd', 'number', stream.fd)
  }
  let done!: (err: Error | null | undefined) => void
  stream[kInflight] = new Promise<Error | null | undefined>((resolve) => {
    done = resolve
  })
  const finish = (err?: Error | null): void => {
    stream[kInflight] = null
    cb(err)
    // A waiting _destroy goes on after the write's callback, as in fs.
    done(err)
  }
  if (size === 0) {
    // Nothing to write: fs still makes the system call, which fails on a
    // descriptor not open for writing.
    // Its callback comes a turn of the event loop later, as the thread
    // pool's would: a destroy() meanwhile fails it, as in fs.
    const res = engine().writeNothing(stream.fd, stream.pos ?? -1)
    setImmediate(() => finish(res < 0 ? systemError(res, 'write') : stream.destroyed ? streamDestroyed(call) : null))
    return
  }
  const at = stream.pos ?? -1
  if (stream.pos !== undefined) stream.pos += size
  stream[kOnWritten] = (written, errno) => {
    // As fs: a write that completes after destroy() is not counted,
    // and fails (with ERR_STREAM_DESTROYED unless it failed itself).
    if (stream.destroyed) {
      finish(errno !== 0 ? systemError(errno, 'write') : streamDestroyed(call))
      return
    }
    stream.bytesWritten += written
    finish(errno !== 0 ? systemError(errno, 'write') : null)
  }
  try {
    nativeWriter(stream, stream.fd as number).write(bufs, at, 0)
  } catch (err) {
    stream[kOnWritten] = null
    finish(err as Error)
  }
}

/** The stream's writer for `fd`: one threadsafe callback for all of its writes. */
function nativeWriter(stream: WriteStream, fd: number): NativeWriter {
  let writer = stream[kWriter]
  if (writer === null) {
    const w = new (engine().NativeWriter)(
      fd,
      (res: [number, number]) => {
        w.settled()
        const onWritten = stream[kOnWritten]
        stream[kOnWritten] = null
        onWritten?.(res[0], res[1])
      },
      stream[kOwnsFd],
    )
    stream[kWriter] = writer = w
  }
  return writer
}

WriteStream.prototype._destroy = function (this: WriteStream, err: Error | null, cb: WriteCallback): void {
  // Writable's constructor destroys at once for an aborted signal, before
  // this class's part of the constructor ran: nothing is open then, and
  // fs's _destroy has nothing to close.
  if (!this[kEngine]) {
    fsDestroy.call(this, err, cb)
    return
  }
  // Writable may call this while a batch is in the kernel: as fs does,
  // wait for it before closing, so that no queued write can reach a
  // reused descriptor number; its error (ERR_STREAM_DESTROYED at least)
  // becomes the stream's unless there is one already.
  const inflight = this[kInflight]
  if (inflight !== null) {
    inflight.then((er) => this._destroy(err || er || null, cb))
    return
  }
  // No write is out any more: let the writer go (it holds a callback
  // that holds this stream), and let fs's own _destroy close the
  // descriptor by the rules of the Node that runs (fsync first with
  // `flush`; which descriptors it closes; which error wins).
  const writer = this[kWriter]
  if (writer !== null) {
    writer.release()
    this[kWriter] = null
  }
  // The descriptor the engine opened is the environment's to close when it
  // ends (a worker's) until here: fs's _destroy closes it from now on.
  handOverFd(this)
  fsDestroy.call(this, err, cb)
}

export function createWriteStream(path: StreamPath, options?: WriteStreamOptions | BufferEncoding): WriteStream {
  return new WriteStream(path, options)
}
