// The body of a sendFile response sent file -> socket inside the kernel
// (io_uring SPLICE through a pipe, or sendfile(2)): the bytes never enter
// JavaScript or any user-space buffer.
//
// Node writes the head: sendFile sets the headers and calls flushHeaders().
// That write is caught on its way from the socket's Writable side to libuv
// (the socket's own _write/_writev, replaced for that one write) and sent
// by the native transfer in front of the body, so head and body leave in
// order, in as few packets as the kernel likes. Its callback is held until
// the body is out: to Node the socket is busy writing the whole time, so
// anything else written to it meanwhile (the next pipelined response,
// socket.end() from a client half-close) waits in the Writable's own buffer
// and reaches the socket only after the body. The native side works on its
// own duplicate of the descriptor; if Node closes the socket (client gone,
// timeout, destroy), the transfer is aborted and ends promptly.

import type { ServerResponse } from 'node:http'
import { OutgoingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { BodyTransfer, close as nativeClose } from '../binding'

type WriteCb = (err?: Error | null) => void
interface Chunk { chunk: Buffer | string; encoding: BufferEncoding | 'buffer' }
interface SocketInternals {
  _handle?: { fd?: number } | null
  _write: (chunk: Buffer | string, encoding: BufferEncoding | 'buffer', cb: WriteCb) => void
  _writev?: (chunks: Chunk[], cb: WriteCb) => void
  encrypted?: boolean
}

/** The descriptor of a plain stream socket a zero-copy body can go to, or -1. */
export function zeroCopySocketFd(res: ServerResponse): number {
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

/**
 * Catches the next write that empties the socket's queue (the head
 * flushHeaders() queued) and holds its callback. Resolves with the bytes
 * and a release function, or null if the socket closed first.
 */
function captureHead(socket: Socket & SocketInternals): Promise<{ head: Buffer; release: () => void } | null> {
  return new Promise((resolve) => {
    const own = Object.prototype.hasOwnProperty
    const hadWrite = own.call(socket, '_write')
    const hadWritev = own.call(socket, '_writev')
    const origWrite = socket._write
    const origWritev = socket._writev
    const restore = (): void => {
      if (hadWrite) socket._write = origWrite
      else delete (socket as Partial<SocketInternals>)._write
      if (hadWritev) socket._writev = origWritev
      else delete (socket as Partial<SocketInternals>)._writev
      socket.removeListener('close', onClose)
    }
    const onClose = (): void => { restore(); resolve(null) }
    const take = (chunks: Chunk[], cb: WriteCb): void => {
      restore()
      const head = Buffer.concat(chunks.map(({ chunk, encoding }) =>
        typeof chunk === 'string' ? Buffer.from(chunk, encoding === 'buffer' ? 'utf8' : encoding) : chunk))
      resolve({ head, release: () => cb() })
    }
    const length = (chunks: Chunk[]): number => chunks.reduce((n, c) => n + c.chunk.length, 0)
    // Anything still queued behind a chunk means it is not the head yet
    // (an earlier response's tail): that goes to libuv as usual.
    socket._write = function (chunk, encoding, cb) {
      if (socket.writableLength > chunk.length) return origWrite.call(socket, chunk, encoding, cb)
      take([{ chunk, encoding }], cb)
    }
    socket._writev = function (chunks, cb) {
      if (socket.writableLength > length(chunks)) {
        if (origWritev) return origWritev.call(socket, chunks, cb)
      }
      take(chunks, cb)
    }
    socket.once('close', onClose)
  })
}

/**
 * Flushes `res`'s head and sends `len` bytes of `fileFd` from `offset` to
 * the socket `socketFd` in the kernel. Takes `fileFd` over (always closed).
 */
export async function sendZeroCopy(res: ServerResponse, socketFd: number, fileFd: number, offset: number, len: number): Promise<BodyOutcome> {
  const socket = res.socket as Socket & SocketInternals
  const captured = captureHead(socket)
  res.flushHeaders()
  const got = await captured
  if (!got) {
    void nativeClose(fileFd)
    return { bytes: 0, failed: true, errno: 0, syscall: '' }
  }
  let transfer: BodyTransfer
  try {
    transfer = new BodyTransfer(socketFd, got.head, fileFd, offset, len)
  } catch {
    // The socket's descriptor was unusable (closed under us): the
    // transfer closed the file; cut the response.
    socket.destroy()
    got.release()
    return { bytes: 0, failed: true, errno: 0, syscall: '' }
  }
  const onClose = (): void => transfer.abort()
  socket.once('close', onClose)
  const r = await transfer.wait()
  socket.removeListener('close', onClose)
  const failed = r.errno !== 0 || r.headSent < got.head.length || r.bodySent < len
  if (failed) socket.destroy()
  got.release()
  return { bytes: r.bodySent, failed, errno: r.errno, syscall: r.syscall }
}
