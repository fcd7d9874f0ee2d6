// WriteStream: a drop-in for fs.WriteStream whose writes go through the
// native batch writer. Every group of buffered chunks (_writev) is one batch:
// one submission, written in order at its offset, the JS Buffers held by
// reference until the kernel is done with them (never copied). On io_uring
// the batches go to the JavaScript thread's own ring and complete from its
// event loop (crates/node/src/loop_ops.rs): no thread hand-off. Options,
// events, properties and errors follow Node's lib/internal/fs/streams.js,
// quirks included: a destroy() while a write is in the kernel makes that
// write fail with ERR_STREAM_DESTROYED, which becomes the stream's 'error'.
//
// One deliberate difference: with `flush`, the descriptor is fsynced before
// 'finish' (in _final), so 'finish' means every byte is in the file and on
// disk; fs fsyncs while closing, after 'finish', and an fsync failure there
// comes after a 'finish' that promised too much. Here it comes instead.

import { Writable } from 'node:stream'
import { NativeWriter, close as nativeClose, fsync as nativeFsync, open as nativeOpen } from '../binding'
import { streamDestroyed, systemError } from './errors'
import { getOptions, parseFileMode, streamTarget, stringToFlags, validateBoolean, validateInteger } from './validate'
import type { FileHandleLike } from './validate'

export interface WriteStreamOptions {
  flags?: string | number
  encoding?: BufferEncoding | null
  fd?: number | FileHandleLike | null
  mode?: number | string
  autoClose?: boolean
  emitClose?: boolean
  start?: number
  highWaterMark?: number
  signal?: AbortSignal | null
  flush?: boolean
}

export class WriteStream extends Writable {
  fd: number | null
  path: string | Buffer | undefined
  flags: string | number | undefined
  mode: number | string | undefined
  start: number | undefined
  flush: boolean
  bytesWritten = 0
  pos: number | undefined
  /**
   * Settles when the batch the kernel is working on is done, with the error
   * its write callback got (if any).
   */
  #inflight: Promise<Error | null | undefined> | null = null
  /** The native batch writer for `fd`, made on the first write. */
  #writer: NativeWriter | null = null
  /** Where the result of the batch in the kernel goes. */
  #onWritten: ((written: number, errno: number) => void) | null = null
  /** A FileHandle given as `fd`: closed (instead of the bare fd) when done. */
  #handle: FileHandleLike | null = null
  /** The stream opened its descriptor (no `fd` option): nobody else uses it. */
  #ownsFd = false

  constructor(path: unknown, options?: WriteStreamOptions | BufferEncoding) {
    const opts = getOptions<WriteStreamOptions & { autoDestroy?: boolean; decodeStrings?: boolean }>(options)
    // Only buffers reach _write/_writev.
    opts.decodeStrings = true
    const { fd, handle, path: p, flags, mode } = streamTarget(path, opts, 'w')
    opts.autoDestroy = opts.autoClose === undefined ? true : opts.autoClose
    const flush = opts.flush == null ? false : validateBoolean(opts.flush, 'options.flush')
    const start = opts.start
    if (start !== undefined) validateInteger(start, 'start', 0)
    const encoding = opts.encoding
    super(opts as ConstructorParameters<typeof Writable>[0])
    this.fd = fd
    this.path = p
    this.flags = flags
    this.mode = mode
    this.start = start
    this.pos = start
    this.flush = flush
    this.#handle = handle
    if (encoding) this.setDefaultEncoding(encoding as BufferEncoding)
    if (handle !== null) handle.on('close', () => this.close())
  }

  get pending(): boolean {
    return this.fd === null
  }

  get autoClose(): boolean {
    return (this as unknown as { _writableState: { autoDestroy: boolean } })._writableState.autoDestroy
  }

  set autoClose(val: boolean) {
    ;(this as unknown as { _writableState: { autoDestroy: boolean } })._writableState.autoDestroy = val
  }

  _construct(callback: (error?: Error | null) => void): void {
    // Already closed before construction (a signal that was already
    // aborted): open nothing. fs opens (creating or truncating the file)
    // after its 'close' and never closes that descriptor; this leaks
    // nothing and leaves the file alone. (A destroy() called before this
    // waits for construction: that opens, as fs does, and _destroy closes.)
    if (this.closed) {
      callback()
      return
    }
    if (this.fd !== null) {
      callback()
      return
    }
    let flags: number
    let mode: number
    try {
      flags = stringToFlags(this.flags)
      mode = parseFileMode(this.mode, 'mode', 0o666)
    } catch (err) {
      callback(err as Error)
      return
    }
    nativeOpen(Buffer.from(this.path as string | Buffer), flags, mode).then(
      (res) => {
        if (res < 0) {
          callback(systemError(res, 'open', this.path))
          return
        }
        this.fd = res
        this.#ownsFd = true
        callback()
        this.emit('open', res)
        this.emit('ready')
      },
      (err: Error) => callback(err),
    )
  }

  _write(chunk: Buffer, _encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.#writeBatch([chunk], chunk.length, 'write', cb)
  }

  _writev(chunks: Array<{ chunk: Buffer }>, cb: (error?: Error | null) => void): void {
    const bufs = new Array<Buffer>(chunks.length)
    let size = 0
    for (let i = 0; i < chunks.length; i++) {
      bufs[i] = chunks[i].chunk
      size += bufs[i].length
    }
    this.#writeBatch(bufs, size, 'writev', cb)
  }

  /**
   * Writes `bufs` in order at the current position, as one native batch,
   * then calls `cb`. `call` names the write in ERR_STREAM_DESTROYED, as fs
   * names it.
   */
  #writeBatch(bufs: Buffer[], size: number, call: string, cb: (error?: Error | null) => void): void {
    let done!: (err: Error | null | undefined) => void
    this.#inflight = new Promise<Error | null | undefined>((resolve) => {
      done = resolve
    })
    const finish = (err?: Error | null): void => {
      this.#inflight = null
      cb(err)
      // A waiting _destroy goes on after the write's callback, as in fs.
      done(err)
    }
    if (size === 0) {
      // Nothing to write: no bytes, no error, as fs reports it.
      process.nextTick(() => finish(this.destroyed ? streamDestroyed(call) : null))
      return
    }
    const at = this.pos ?? -1
    if (this.pos !== undefined) this.pos += size
    this.#onWritten = (written, errno) => {
      // As fs: a write that completes after destroy() is not counted,
      // and fails (with ERR_STREAM_DESTROYED unless it failed itself).
      if (this.destroyed) {
        finish(errno !== 0 ? systemError(errno, 'write') : streamDestroyed(call))
        return
      }
      this.bytesWritten += written
      finish(errno !== 0 ? systemError(errno, 'write') : null)
    }
    try {
      this.#nativeWriter(this.fd as number).write(bufs, at, 0)
    } catch (err) {
      this.#onWritten = null
      finish(err as Error)
    }
  }

  /** The writer for `fd`: one threadsafe callback for all of its writes. */
  #nativeWriter(fd: number): NativeWriter {
    if (this.#writer === null) {
      const writer = new NativeWriter(
        fd,
        (res: [number, number]) => {
          writer.settled()
          const onWritten = this.#onWritten
          this.#onWritten = null
          onWritten?.(res[0], res[1])
        },
        this.#ownsFd,
      )
      this.#writer = writer
    }
    return this.#writer
  }

  _final(cb: (error?: Error | null) => void): void {
    if (!this.flush || this.fd === null) {
      cb()
      return
    }
    nativeFsync(this.fd, false).then(
      (res) => cb(res < 0 ? systemError(res, 'fsync') : null),
      (err: Error) => cb(err),
    )
  }

  _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    // Writable may call this while a batch is in the kernel: as fs does,
    // wait for it before closing, so that no queued write can reach a
    // reused descriptor number; its error (ERR_STREAM_DESTROYED at least)
    // becomes the stream's unless there is one already.
    // (Writable's constructor destroys at once for an aborted signal, before
    // this class's fields exist.)
    const inflight = #inflight in this ? this.#inflight : null
    if (inflight !== null) {
      inflight.then((er) => this._destroy(err || er || null, cb))
      return
    }
    // No write is out any more: let the writer go (it holds a callback
    // that holds this stream).
    const writer = #writer in this ? this.#writer : null
    if (writer !== null) {
      writer.release()
      this.#writer = null
    }
    // fs's close(): nothing without a descriptor (its `!fd` test skips fd
    // 0, and so does this). (`flush` was done in _final, before 'finish'.)
    if (!this.fd) {
      cb(err)
      return
    }
    const fd = this.fd
    const handle = #handle in this ? this.#handle : null
    const closeFd = (flushErr: Error | null): void => {
      const first = err || flushErr
      this.fd = null
      if (handle !== null) {
        handle.close().then(
          () => cb(first),
          (e: Error) => cb(e),
        )
        return
      }
      nativeClose(fd).then(
        (res) => cb(res < 0 ? systemError(res, 'close') : first),
        (e: Error) => cb(e),
      )
    }
    closeFd(null)
  }

  close(cb?: (err?: NodeJS.ErrnoException | null) => void): void {
    if (cb) {
      if (this.closed) {
        process.nextTick(cb)
        return
      }
      this.on('close', cb)
    }
    if (!this.autoClose) this.on('finish', this.destroy)
    this.end()
  }

  /** fs's alias: files have no shutdown(). */
  destroySoon(): this {
    return this.end()
  }
}

export function createWriteStream(path: unknown, options?: WriteStreamOptions | BufferEncoding): WriteStream {
  return new WriteStream(path, options)
}
