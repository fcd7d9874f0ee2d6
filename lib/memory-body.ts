// The body of a small file the open-file cache keeps in memory, written
// with its head straight to the socket: one sendmsg(2) from this thread,
// as Node's own res.end(buffer) would end up doing, minus the Writable and
// libuv write machinery in between (a large share of what a 4 KiB
// response costs). Node builds the head as always (res._header), and is
// told the head went out, so that res.end() completes the response
// without writing anything itself; what the socket did not take, Node
// writes after it, in order.
//
// Only when nothing else is queued on the socket (else Node's own write).

import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { native } from './native'
import { zeroCopySocketFd } from './zero-copy-body'

interface HeadInternals {
  _header: string | null
  _headerSent: boolean
  _implicitHeader?: () => void
}

/**
 * Ends `res` with `body`, the head and body sent straight to its socket
 * when it is a plain TCP socket with nothing queued; else by res.end(body).
 * False when the connection failed (the socket is destroyed).
 */
export function endWithBytes(res: ServerResponse, body: Buffer): boolean {
  const r = res as unknown as HeadInternals
  const socket = res.socket as Socket | null
  const fd = native !== null && socket !== null ? zeroCopySocketFd(res) : -1
  if (fd < 0 || socket === null || socket.writableLength !== 0 || socket.writableCorked || r._headerSent || typeof r._implicitHeader !== 'function') {
    res.end(body)
    return true
  }
  if (!r._header) r._implicitHeader()
  const head = r._header as string
  // Bytes the socket took, head first; or -errno.
  const took = (native as NonNullable<typeof native>).sendBytesInline(fd, head, body)
  if (took < 0) {
    socket.destroy()
    return false
  }
  const headSent = took < head.length ? took : head.length
  const bodySent = took - headSent
  if (headSent === 0) {
    // The socket took nothing: Node writes it all.
    res.end(body)
    return true
  }
  r._headerSent = true
  if (headSent < head.length) socket.write(Buffer.from(head.slice(headSent), 'latin1'))
  if (bodySent === body.length) res.end()
  else res.end(body.subarray(bodySent))
  return true
}
