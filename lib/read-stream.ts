// ReadStream: a drop-in for fs.ReadStream whose bytes come from the native
// read-ahead pump. The semantics (options, events, properties, errors,
// destroy) follow Node's lib/internal/fs/streams.js; the byte work is native.

import { Readable, finished } from 'node:stream'
import { NativeReadStream } from '../binding'
import { systemError } from './errors'
import { getOptions, parseFileMode, streamTarget, stringToFlags, validateInteger } from './validate'
import type { FileHandleLike } from './validate'
import { outOfRange } from './errors'

export interface ReadStreamOptions {
  flags?: string | number
  encoding?: BufferEncoding | null
  fd?: number | null
  mode?: number | string
  autoClose?: boolean
  emitClose?: boolean
  start?: number
  end?: number
  highWaterMark?: number
  signal?: AbortSignal | null
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
const MIN_AHEAD = 4
const MAX_AHEAD = 64

export class ReadStream extends Readable {
  /** The descriptor, or null until it is open. */
  fd: number | null
  path: string | Buffer | undefined
  flags: string | number | undefined
  mode: number | string | undefined
  start: number | undefined
  end: number
  bytesRead = 0
  // Node's own name for the current position.
  pos: number | undefined

  #native: NativeReadStream | null = null
  #reading = false
  /** Chunks taken from the pump but not yet pushed. */
  #taken: Buffer[] = []

  constructor(path: unknown, options?: ReadStreamOptions | BufferEncoding) {
    const opts = getOptions<ReadStreamOptions & { autoDestroy?: boolean }>(options)
    if (opts.highWaterMark === undefined) opts.highWaterMark = 64 * 1024
    const { fd, handle, path: p, flags, mode } = streamTarget(path, opts, 'r')
    opts.autoDestroy = opts.autoClose === undefined ? true : opts.autoClose
    const start = opts.start
    let end = opts.end
    if (start !== undefined) validateInteger(start, 'start', 0)
    if (end === undefined) end = Infinity
    else if (end !== Infinity) {
      validateInteger(end, 'end', 0)
      if (start !== undefined && start > end) throw outOfRange('start', `<= "end" (here: ${end})`, start)
    }
    super(opts as ConstructorParameters<typeof Readable>[0])
    this.fd = fd
    this.path = p
    this.flags = flags
    this.mode = mode
    this.start = start
    this.end = end
    this.pos = start
    this.#readAhead = opts.readAhead
    this.#handle = handle
    if (handle !== null) handle.on('close', () => this.close())
  }

  #readAhead: number | undefined
  /** A FileHandle given as `fd`: closed (instead of the bare fd) when done. */
  #handle: FileHandleLike | null = null

  get pending(): boolean {
    return this.fd === null
  }

  get autoClose(): boolean {
    return (this as unknown as { _readableState: { autoDestroy: boolean } })._readableState.autoDestroy
  }

  set autoClose(val: boolean) {
    ;(this as unknown as { _readableState: { autoDestroy: boolean } })._readableState.autoDestroy = val
  }

  _construct(callback: (error?: Error | null) => void): void {
    // Already closed, before construction (a signal that was already
    // aborted): open nothing, so nothing leaks. (A destroy() called before
    // this waits for construction: that opens, and _destroy closes.)
    if (this.closed) {
      callback()
      return
    }
    let flags = 0
    let mode = 0
    if (this.fd === null) {
      try {
        flags = stringToFlags(this.flags)
        mode = parseFileMode(this.mode, 'mode', 0o666)
      } catch (err) {
        callback(err as Error)
        return
      }
    }
    const hwm = this.readableHighWaterMark
    // An empty range (start > end is rejected above; end < start never
    // reaches here) still opens the file, as fs does, then ends at once.
    // fs reads an fd given without `start` from its current position (-1),
    // and a path without `start` from 0, or from the current position when
    // it names a FIFO or a device (-2 lets the engine check).
    const first = this.start ?? (this.fd === null ? -2 : -1)
    // fs reads at most highWaterMark bytes per _read: with 0 it reads nothing
    // (an end at the start; at the current position, end counts bytes).
    const endExclusive = hwm === 0 ? Math.max(first, 0) : this.end === Infinity ? -1 : this.end + 1
    const chunk = Math.max(1, Math.min(hwm, 2 ** 31))
    const chunks = (bytes: number): number => Math.max(MIN_AHEAD, Math.min(MAX_AHEAD, Math.ceil(bytes / chunk)))
    // An explicit readAhead is used as given; the default grows for a
    // consumer that keeps up.
    const window = chunks(this.#readAhead ?? DEFAULT_READ_AHEAD)
    const growTo = this.#readAhead === undefined ? chunks(GROWN_READ_AHEAD) : window
    const pathBytes = this.fd === null ? Buffer.from(this.path as string | Buffer) : null
    const native = new NativeReadStream(
      pathBytes,
      this.fd ?? -1,
      flags,
      mode,
      first,
      endExclusive,
      chunk,
      window,
      growTo,
      () => this.#pull(),
    )
    this.#native = native
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

  _read(): void {
    this.#reading = true
    // Never push from inside _read, as fs never does (its reads are
    // asynchronous): a chunk pushed there is buffered while the previous one
    // is being emitted, and Readable emits buffered data even after a
    // destroy() in a 'data' handler.
    process.nextTick(() => this.#pull())
  }

  /**
   * Moves the chunks the pump has ready into the stream, as long as the
   * stream wants more (push() returns true) and is not destroyed; the rest
   * wait in #taken for the next _read.
   */
  #pull(): void {
    const native = this.#native
    if (!this.#reading || native === null || this.destroyed) return
    const r = this.#taken.length > 0 ? this.#taken : native.take()
    if (Array.isArray(r)) {
      if (r.length === 0) return // onReady calls back when data is in
      this.#reading = false
      let i = 0
      while (i < r.length) {
        const buf = r[i++]
        this.bytesRead += buf.length
        if (this.pos !== undefined) this.pos += buf.length
        if (!this.push(buf) || this.destroyed) break
      }
      this.#taken = i < r.length ? r.slice(i) : []
    } else if (r === null) {
      this.#reading = false
      native.release()
      this.push(null)
    } else {
      this.#reading = false
      native.release()
      this.destroy(systemError(r, 'read'))
    }
  }

  _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Readable's constructor destroys at once for an aborted signal, before
    // this class's fields exist.
    const native = #native in this ? this.#native : null
    if (native !== null) {
      this.#native = null
      this.#taken = []
    }
    // fs closes the descriptor on destroy whenever it has one (the `!fd`
    // test in fs skips fd 0, and so does this); a FileHandle given as `fd`
    // is closed through the handle.
    const closeFd = !!this.fd
    const handle = #handle in this ? this.#handle : null
    const closeHandle = (res: number): void => {
      if (closeFd) this.fd = null
      if (res < 0) {
        callback(systemError(res, 'close'))
      } else if (closeFd && handle !== null) {
        handle.close().then(
          () => callback(err),
          (e: Error) => callback(e),
        )
      } else {
        callback(err)
      }
    }
    if (native === null) {
      closeHandle(0)
      return
    }
    native.destroy(closeFd && handle === null).then(closeHandle, (e: Error) => callback(e))
  }

  close(cb?: (err?: NodeJS.ErrnoException | null) => void): void {
    if (typeof cb === 'function') finished(this, cb)
    this.destroy()
  }
}

export function createReadStream(path: unknown, options?: ReadStreamOptions | BufferEncoding): ReadStream {
  return new ReadStream(path, options)
}
