// HTTP helpers for the sendFile specs: servers on 127.0.0.1:0 that count
// their connections and close everything on teardown, requests through
// node:http (which sends the path as given, unlike fetch), raw requests over
// a net.Socket (for request lines no client library would send), and a small
// HTTP/1.1 response parser for raw and pipelined responses.

import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import * as tls from 'node:tls'

export type AnyServer = http.Server | https.Server

export interface Listening {
  server: AnyServer
  port: number
  /** `http://127.0.0.1:port` (or https). */
  origin: string
  /** Connections the server has accepted so far. */
  connections(): number
  close(): Promise<void>
}

/** Starts `server` on 127.0.0.1, port 0, counting its connections. */
export async function listen(server: AnyServer, scheme: 'http' | 'https' = 'http'): Promise<Listening> {
  let connections = 0
  // 'connection' is the TCP accept, for https as well (before the handshake).
  server.on('connection', () => connections++)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as net.AddressInfo).port
  let closed: Promise<void> | null = null
  return {
    server,
    port,
    origin: `${scheme}://127.0.0.1:${port}`,
    connections: () => connections,
    close() {
      if (closed === null) {
        closed = new Promise<void>((resolve) => {
          server.close(() => resolve())
          server.closeAllConnections()
        })
      }
      return closed
    },
  }
}

export interface Response {
  status: number
  /** Lower-cased names; a repeated header's values joined with ', '. */
  headers: Record<string, string>
  body: Buffer
}

export interface RequestSpec {
  method?: string
  /** Sent as is in the request line (node:http does not normalize it). */
  path: string
  headers?: Record<string, string>
}

/**
 * One request through node:http: over a fresh connection, or through
 * `agent` when given (keep-alive tests).
 */
export function request(port: number, spec: RequestSpec, opts: { agent?: http.Agent; timeoutMs?: number } = {}): Promise<Response> {
  const timeoutMs = opts.timeoutMs ?? 30_000
  return new Promise<Response>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: spec.method ?? 'GET',
        path: spec.path,
        headers: spec.headers,
        agent: opts.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: flatHeaders(res.headers), body: Buffer.concat(chunks) }),
        )
      },
    )
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request ${spec.method ?? 'GET'} ${spec.path}: timed out`)))
    req.on('error', reject)
    req.end()
  })
}

/** One request through the global fetch (undici). */
export async function fetchResponse(origin: string, spec: RequestSpec): Promise<Response> {
  const res = await fetch(origin + spec.path, { method: spec.method ?? 'GET', headers: spec.headers, redirect: 'manual' })
  const headers: Record<string, string> = {}
  res.headers.forEach((value, name) => (headers[name] = value))
  const body = Buffer.from(await res.arrayBuffer())
  return { status: res.status, headers, body }
}

export function flatHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(h)) {
    if (value === undefined) continue
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value)
  }
  return out
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1

export interface ParsedResponse extends Response {
  /** The status line and header block as received. */
  head: string
}

/** Statuses that never carry a body. */
function bodiless(status: number): boolean {
  return status === 204 || status === 304 || (status >= 100 && status < 200)
}

/**
 * Parses one response from the start of `buf`: the response and the number
 * of bytes it took, or null when `buf` does not hold all of it yet. A body
 * without Content-Length or chunked framing runs to the end of the
 * connection: only complete when `eof`.
 */
export function parseResponse(
  buf: Buffer,
  method: string,
  eof: boolean,
): { response: ParsedResponse; consumed: number } | null {
  const headEnd = buf.indexOf('\r\n\r\n')
  if (headEnd < 0) return null
  const head = buf.subarray(0, headEnd).toString('latin1')
  const lines = head.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0])
  if (!m) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(lines[0])}`)
  const status = Number(m[1])
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    if (i < 0) throw new Error(`malformed header line ${JSON.stringify(line)}`)
    const name = line.slice(0, i).trim().toLowerCase()
    const value = line.slice(i + 1).trim()
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value
  }
  const bodyStart = headEnd + 4
  if (method === 'HEAD' || bodiless(status)) {
    return { response: { status, headers, body: Buffer.alloc(0), head }, consumed: bodyStart }
  }
  if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = []
    let at = bodyStart
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at)
      if (lineEnd < 0) return null
      const size = parseInt(buf.subarray(at, lineEnd).toString('latin1').split(';')[0], 16)
      if (Number.isNaN(size)) throw new Error('malformed chunk size')
      if (size === 0) {
        const end = buf.indexOf('\r\n\r\n', lineEnd)
        if (end < 0) return null
        return { response: { status, headers, body: Buffer.concat(parts), head }, consumed: end + 4 }
      }
      if (buf.length < lineEnd + 2 + size + 2) return null
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size))
      at = lineEnd + 2 + size + 2
    }
  }
  const cl = headers['content-length']
  if (cl !== undefined) {
    const len = Number(cl)
    if (!Number.isSafeInteger(len) || len < 0) throw new Error(`bad Content-Length ${cl}`)
    if (buf.length < bodyStart + len) return null
    return { response: { status, headers, body: Buffer.from(buf.subarray(bodyStart, bodyStart + len)), head }, consumed: bodyStart + len }
  }
  if (!eof) return null
  return { response: { status, headers, body: Buffer.from(buf.subarray(bodyStart)), head }, consumed: buf.length }
}

export interface RawOptions {
  /** The method of each request written, in order (for HEAD framing). Default: one GET. */
  methods?: string[]
  timeoutMs?: number
  tls?: tls.ConnectionOptions
  /** Shut the writing side down right after the requests (a client half-close). */
  halfClose?: boolean
}

/**
 * Writes `raw` (one or more complete requests) at once on a new connection
 * and parses `methods.length` responses in order. Resolves when they are all
 * in, or at the end of the connection with those that came (a server that
 * rejects the request line outright answers 400 and closes).
 */
export function rawExchange(port: number, raw: string | Buffer, opts: RawOptions = {}): Promise<ParsedResponse[]> {
  const methods = opts.methods ?? ['GET']
  const timeoutMs = opts.timeoutMs ?? 30_000
  return new Promise<ParsedResponse[]>((resolve, reject) => {
    const socket: net.Socket = opts.tls
      ? tls.connect({ host: '127.0.0.1', port, ...opts.tls })
      : net.connect({ host: '127.0.0.1', port })
    // A buffer that doubles: appending 64 MiB in 64 KiB chunks stays linear.
    let store = Buffer.alloc(64 * 1024)
    let start = 0
    let end = 0
    const pending = () => store.subarray(start, end)
    const append = (chunk: Buffer) => {
      if (end + chunk.length > store.length) {
        const need = end - start + chunk.length
        const next = need * 2 > store.length ? Buffer.alloc(Math.max(need * 2, store.length)) : store
        store.copy(next, 0, start, end)
        store = next
        end -= start
        start = 0
      }
      chunk.copy(store, end)
      end += chunk.length
    }
    const responses: ParsedResponse[] = []
    let done = false
    const finish = (err?: Error) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      if (err) reject(err)
      else resolve(responses)
    }
    const drainParsed = (eof: boolean) => {
      while (responses.length < methods.length) {
        let parsed
        try {
          parsed = parseResponse(pending(), methods[responses.length], eof)
        } catch (err) {
          finish(err as Error)
          return
        }
        if (parsed === null) break
        responses.push(parsed.response)
        start += parsed.consumed
      }
      if (responses.length === methods.length || eof) finish()
    }
    const timer = setTimeout(
      () => finish(new Error(`raw exchange timed out with ${responses.length}/${methods.length} responses, ${end - start} bytes pending`)),
      timeoutMs,
    )
    socket.on(opts.tls ? 'secureConnect' : 'connect', () => {
      socket.write(raw)
      if (opts.halfClose) socket.end()
    })
    socket.on('data', (chunk: Buffer) => {
      append(chunk)
      drainParsed(false)
    })
    socket.on('end', () => drainParsed(true))
    socket.on('close', () => drainParsed(true))
    // A reset after the server answered and closed is the end of the exchange.
    socket.on('error', (err) => (responses.length > 0 ? drainParsed(true) : finish(err)))
  })
}

/** A GET (or `method`) request as raw text; Connection: close unless told. */
export function rawRequest(target: string, opts: { method?: string; headers?: Record<string, string>; keepAlive?: boolean } = {}): string {
  const lines = [`${opts.method ?? 'GET'} ${target} HTTP/1.1`, 'Host: 127.0.0.1']
  for (const [k, v] of Object.entries(opts.headers ?? {})) lines.push(`${k}: ${v}`)
  lines.push(opts.keepAlive ? 'Connection: keep-alive' : 'Connection: close')
  return lines.join('\r\n') + '\r\n\r\n'
}
