// The body of a sendFile response sent file -> socket inside the kernel
// (sendfile(2) inline, io_uring SPLICE through a pipe, or sendfile(2) on
// the thread pool): the bytes never enter JavaScript or any user buffer.
//
// Node builds the head (status line and headers) as it always does. The
// head and the body must reach the socket in order and alone: nothing Node
// writes may land in between. Two ways:
//
// - Inline (the common case): the socket has nothing queued, so the head
//   Node built (res._header) and the start of the body go out right here,
//   on this thread, without blocking (the file range is in the page cache,
//   the socket is non-blocking). Nothing else runs meanwhile; when it all
//   went out the response is complete without a thread hand-off.
// - Held: whatever remains (a socket that was full, a file not cached, a
//   large body) is sent by the native engine, asynchronously. For that
//   time the socket's Writable side is held busy: one write (the head, or
//   an empty marker after an inline start) is caught on its way to libuv
//   and its callback held until the body is out. So anything else written
//   to the socket meanwhile (the next pipelined response, socket.end()
//   after a client half-close) waits in the Writable's own buffer. The
//   native side works on its own duplicate of the descriptor; if Node
//   closes the socket (client gone, timeout, destroy), the transfer is
//   aborted and ends promptly.

import type { ServerResponse } from 'node:http'
import { OutgoingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { BodyResult } from '../binding'
import { SentSlot, SentSyscall } from '../binding'
import { closeSync, read, readSync } from 'node:fs'
import { engine, native } from './native'

/** Bytes a response may send inline on the event loop's thread. */
const INLINE_BUDGET = 4 * 1024 * 1024
/**
 * How long a native transfer waits for room in the socket before it ends,
 * holding nothing, and Node waits instead (sendHeld). A client reading at
 * any useful rate makes room far sooner; a longer wait is a client that
 * stopped, or one so slow that a copy of STALL_CHUNK bytes is nothing.
 */
const STALL_AFTER_MS = 200
/** What Node writes itself to wait for room after a stall. */
const STALL_CHUNK = 16 * 1024
const EMPTY = Buffer.alloc(0)
/** sendInline's result, in SentSlot's layout. */
const sent = new Float64Array(SentSlot.Count)

function syscallName(code: number): string {
  return code === SentSyscall.Read ? 'read' : code === SentSyscall.Write ? 'write' : ''
}

type WriteCb = (err?: Error | null) => void
interface Chunk { chunk: Buffer | string; encoding: BufferEncoding | 'buffer' }
interface SocketInternals {
  _handle?: { fd?: number } | null
  _write: (chunk: Buffer | string, encoding: BufferEncoding | 'buffer', cb: WriteCb) => void
  _writev?: (chunks: Chunk[], cb: WriteCb) => void
  encrypted?: boolean
}
/** OutgoingMessage's head state, as Node keeps it since v0.x (also 20-24). */
interface HeadInternals {
  _header: string | null
  _headerSent: boolean
  _implicitHeader?: () => void
}

/**
 * Closes a served file's descriptor now, on this thread: close(2) of a
 * regular file costs a microsecond, where the engine's async close would
 * cost two thread hand-offs per response.
 */
export function closeFile(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // EBADF cannot happen (each descriptor is closed once); EIO on close
    // of a file only read from is meaningless.
  }
}

/** The descriptor of a plain stream socket a zero-copy body can go to, or -1. */
export function zeroCopySocketFd(res: ServerResponse): number {
  // No engine (the JavaScript fallback): the body takes the stream path.
  if (native === null) return -1
  const socket = res.socket as (Socket & SocketInternals) | null
  if (!socket || socket.destroyed || !socket.writable) return -1
  // TLS encrypts in user space; a transformed body (compression
  // middleware replaces write/end) must see every byte.
  if (socket.encrypted) return -1
  if (res.write !== OutgoingMessage.prototype.write || res.end !== OutgoingMessage.prototype.end) return -1
  if (res.socket !== res.req?.socket) return -1
  const fd = socket._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : -1
}

export interface BodyOutcome {
  /** Body bytes that reached the socket. */
  bytes: number
  /** The transfer failed or the socket went away: the response is cut. */
  failed: boolean
  errno: number
  syscall: string
}

interface Held {
  /** What the caught write carried. */
  bytes: Buffer
  /** Lets the Writable go on (calls the held write's callback). */
  release: () => void
}

/**
 * Catches the write that `trigger` makes and that nothing queued before
 * it follows (earlier bytes go to libuv as usual), holding its callback.
 * Resolves null if the socket closes first.
 */
function holdNextWrite(socket: Socket & SocketInternals, trigger: () => void): Promise<Held | null> {
  return new Promise((resolve) => {
    const origWrite = socket._write
    const origWritev = socket._writev
    // Own properties for the time of one write; removed in the reverse
    // order they were added, which lets V8 return the socket to its shape.
    const restore = (): void => {
      delete (socket as Partial<SocketInternals>)._writev
      delete (socket as Partial<SocketInternals>)._write
      socket.removeListener('close', onClose)
    }
    const onClose = (): void => { restore(); resolve(null) }
    const take = (chunks: Chunk[], cb: WriteCb): void => {
      restore()
      const bytes = Buffer.concat(chunks.map(({ chunk, encoding }) =>
        typeof chunk === 'string' ? Buffer.from(chunk, encoding === 'buffer' ? 'utf8' : encoding) : chunk))
      resolve({ bytes, release: () => cb() })
    }
    const length = (chunks: Chunk[]): number => chunks.reduce((n, c) => n + c.chunk.length, 0)
    socket._write = function (chunk, encoding, cb) {
      if (socket.writableLength > chunk.length) return origWrite.call(socket, chunk, encoding, cb)
      take([{ chunk, encoding }], cb)
    }
    socket._writev = function (chunks, cb) {
      if (socket.writableLength > length(chunks) && origWritev) return origWritev.call(socket, chunks, cb)
      take(chunks, cb)
    }
    socket.once('close', onClose)
    trigger()
  })
}

const failure = (bytes: number, errno = 0, syscall = ''): BodyOutcome => ({ bytes, failed: true, errno, syscall })

/**
 * Sends `res`'s head, then `len` bytes of `fileFd` from `offset`, to the
 * socket `socketFd` in the kernel. `fileFd` stays the caller's, to close
 * (or release, a shared one) once this settles.
 */
export function sendZeroCopy(res: ServerResponse, socketFd: number, fileFd: number, offset: number, len: number): BodyOutcome | Promise<BodyOutcome> {
  const socket = res.socket as Socket & SocketInternals
  const r = res as unknown as HeadInternals
  if (socket.writableLength === 0 && !socket.writableCorked && !r._headerSent && typeof r._implicitHeader === 'function') {
    if (!r._header) r._implicitHeader()
    const head = r._header as string
    engine().sendInline(socketFd, head, fileFd, offset, len, INLINE_BUDGET, sent)
    const headSent = sent[SentSlot.HeadSent]
    const bodySent = sent[SentSlot.BodySent]
    const errno = sent[SentSlot.Errno]
    if (headSent > 0) r._headerSent = true
    if (errno !== 0) {
      socket.destroy()
      return failure(bodySent, errno, syscallName(sent[SentSlot.Syscall]))
    }
    if (headSent === head.length && bodySent === len) {
      return { bytes: len, failed: false, errno: 0, syscall: '' }
    }
    if (headSent === 0) {
      // Nothing went out (the file is not all cached): Node sends the
      // head through the held write, as below.
      return sendHeld(res, socketFd, fileFd, offset, len, 0, () => res.flushHeaders(), null)
    }
    const rest = Buffer.from(head.slice(headSent), 'latin1')
    // The whole head and part of a range that was all cached: the socket
    // was full (not the budget spent). Node waits for its room.
    const full = headSent === head.length && bodySent < Math.min(len, INLINE_BUDGET)
    return sendHeld(res, socketFd, fileFd, offset + bodySent, len - bodySent, bodySent, () => socket.write(EMPTY), rest, full)
  }
  // Bytes of an earlier response are still queued: the head goes out
  // behind them, through the held write.
  return sendHeld(res, socketFd, fileFd, offset, len, 0, () => res.flushHeaders(), null)
}

/**
 * The asynchronous part: holds the socket's Writable busy (the write
 * `trigger` makes), sends `head` (or, when null, the bytes of that write)
 * and the body range natively, then lets the Writable go on. `sent`: body
 * bytes already sent inline. `fileFd` stays the caller's.
 *
 * A client that stops reading: each native transfer gives up after
 * STALL_AFTER_MS without room, holding nothing (its duplicates of the
 * socket and the file closed). Node then waits for room the way it always
 * does, on its own descriptor: the next STALL_CHUNK bytes are read and
 * written through the socket's own _write (past the held write, which
 * keeps everything else queued behind). Once libuv has handed them to the
 * kernel the client reads again, and the next transfer goes on from there.
 * So a stalled response costs its socket and the file, as with `send`,
 * not also a duplicate and a pipe for as long as the client waits. A
 * socket the inline start left full (`waitFirst`) gets Node's wait first:
 * a burst of clients that never read costs no duplicate at all.
 */
async function sendHeld(
  res: ServerResponse,
  socketFd: number,
  fileFd: number,
  offset: number,
  len: number,
  sent: number,
  trigger: () => void,
  head: Buffer | null,
  waitFirst = false,
): Promise<BodyOutcome> {
  const socket = res.socket as Socket & SocketInternals
  const held = await holdNextWrite(socket, trigger)
  if (!held) return failure(sent)
  let bytes = head ?? held.bytes
  const transfer = new (engine().BodyTransfer)(STALL_AFTER_MS)
  const onClose = (): void => transfer.abort()
  socket.once('close', onClose)
  let at = offset
  let left = len
  let total = sent
  let errno = 0
  let syscall = ''
  let failed = false
  // Node waits for room first (a socket the inline start filled): no
  // transfer, and so no duplicate, for a client that never reads.
  let needRoom = waitFirst && bytes.length === 0
  try {
    for (;;) {
      if (needRoom) {
        if (socket.destroyed) {
          failed = true
          break
        }
        // The first time, the range is known to be cached (the inline start
        // sent from it): read at once, not through the thread pool.
        const moved = await writeThroughNode(socket, fileFd, at, Math.min(left, STALL_CHUNK), total === sent && waitFirst)
        if (moved.errno !== 0 || moved.bytes === 0) {
          ;[failed, errno, syscall] = [true, moved.errno, moved.syscall]
          break
        }
        total += moved.bytes
        at += moved.bytes
        left -= moved.bytes
        if (left === 0) break
        // Node's descriptor, still this socket's: nothing else ran on this
        // thread between the check and the start that duplicates it.
        const fd = socket.destroyed ? -1 : (socket._handle?.fd ?? -1)
        if (fd < 0) {
          failed = true
          break
        }
        socketFd = fd
      }
      let done: Promise<BodyResult>
      try {
        done = transfer.start(socketFd, bytes, fileFd, at, left)
      } catch {
        // The socket's descriptor was unusable (closed under us).
        failed = true
        break
      }
      const out = await done
      total += out.bodySent
      at += out.bodySent
      left -= out.bodySent
      if (out.errno !== 0 || out.headSent < bytes.length) {
        ;[failed, errno, syscall] = [true, out.errno, out.syscall]
        break
      }
      bytes = EMPTY
      if (left === 0) break
      if (!out.stalled) {
        failed = true
        break
      }
      needRoom = true
    }
  } finally {
    socket.removeListener('close', onClose)
  }
  if (failed) socket.destroy()
  held.release()
  return { bytes: total, failed, errno, syscall }
}

/**
 * Reads up to `n` bytes of `fd` at `at` (on this thread when `cached`: a
 * copy from the page cache) and writes them through the
 * socket's own _write, bypassing its Writable (busy with the held write):
 * resolves once libuv has handed them to the kernel, that is, once the
 * client made room. `bytes` 0 with errno 0: the file ended early.
 */
async function writeThroughNode(
  socket: Socket & SocketInternals,
  fd: number,
  at: number,
  n: number,
  cached: boolean,
): Promise<{ bytes: number; errno: number; syscall: string }> {
  const buf = Buffer.allocUnsafe(n)
  let got: number
  try {
    got = cached
      ? readSync(fd, buf, 0, n, at)
      : await new Promise<number>((resolve, reject) => read(fd, buf, 0, n, at, (err, r) => (err ? reject(err) : resolve(r))))
  } catch (err) {
    return { bytes: 0, errno: (err as NodeJS.ErrnoException).errno ?? 0, syscall: 'read' }
  }
  if (got === 0) return { bytes: 0, errno: 0, syscall: '' }
  const chunk = got === n ? buf : buf.subarray(0, got)
  return new Promise((resolve) => {
    socket._write(chunk, 'buffer', (err) =>
      resolve(err ? { bytes: 0, errno: (err as NodeJS.ErrnoException).errno ?? 0, syscall: 'write' } : { bytes: got, errno: 0, syscall: '' }),
    )
  })
}
