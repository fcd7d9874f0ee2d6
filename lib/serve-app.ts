// One `uring-fs serve` server: the request handler (sendFile, the
// directory listing, CORS, single-page fallback, cache headers) on
// node:http, https or http2, with a graceful stop. A worker process of
// serve-cluster runs one; the settings come checked from serve-options.

import { readFileSync, realpathSync, statSync } from 'node:fs'
import * as http from 'node:http'
import * as http2 from 'node:http2'
import * as https from 'node:https'
import { basename, resolve } from 'node:path'
import Negotiator from 'negotiator'
import { type SendFileOptions, type SendFileResult, sendFile } from './send-file'
import { listingPage, listingTarget } from './serve-listing'
import { AccessLog, printable } from './serve-log'
import type { ServeSettings } from './serve-options'

/** How long responses in flight may run after a stop is asked for. */
export const SHUTDOWN_GRACE_MS = 5000
const YEAR_S = 365 * 24 * 3600

type Request = http.IncomingMessage | http2.Http2ServerRequest
type Response = http.ServerResponse | http2.Http2ServerResponse

export interface ServerHooks {
  /** Listening on `port`. */
  listening(port: number): void
  /** Cannot serve at all (the port is taken...): the message to print. */
  fatal(message: string): void
  /** Lines for the operator (stop progress), on stdout. */
  say(message: string): void
  /** Something went wrong that the operator should see, on stderr. */
  warn(message: string): void
  /** Every response is done and the server closed: the process may end. */
  stopped(): void
}

/** The sendFile options the settings ask for, only those not at their default (so the fast path applies). */
function sendOptionsOf(s: ServeSettings, root: string): SendFileOptions {
  const o: SendFileOptions = { root, precompressed: s.compress }
  if (s.extensions.length) o.extensions = s.extensions
  if (s.dotfiles !== 'ignore') o.dotfiles = s.dotfiles
  if (s.maxAge) o.maxAge = s.maxAge
  if (s.cors) o.headers = { 'Access-Control-Allow-Origin': '*' }
  const immutable = s.immutable
  if (immutable !== null) {
    o.setHeaders = (res, path) => {
      if (immutable.test(basename(path))) res.setHeader('Cache-Control', `public, max-age=${YEAR_S}, immutable`)
    }
  }
  return o
}

function pathnameOf(url: string): string | null {
  if (url.startsWith('/')) {
    const q = url.indexOf('?')
    return q === -1 ? url : url.slice(0, q)
  }
  try {
    return new URL(url).pathname // absolute-form, as sent to proxies
  } catch {
    return null
  }
}

/**
 * --single: a GET or HEAD for a path whose last part has no extension, from
 * a client that takes HTML (a browser navigating), may get index.html. A
 * missing script or image stays a 404.
 */
function wantsAppShell(req: Request, pathname: string): boolean {
  const last = pathname.slice(pathname.lastIndexOf('/') + 1)
  if (last.includes('.')) return false
  return new Negotiator(req as http.IncomingMessage).mediaType(['text/html']) === 'text/html'
}

export function createHandler(s: ServeSettings, log: AccessLog) {
  const root = resolve(s.dir)
  const realRoot = realpathSync(root)
  const options = sendOptionsOf(s, root)
  const spaOptions: SendFileOptions = { ...options, fallthrough: true }
  const corsHeaders: http.OutgoingHttpHeaders = s.cors ? { 'Access-Control-Allow-Origin': '*' } : {}
  const allow = s.cors ? 'GET, HEAD, OPTIONS' : 'GET, HEAD'

  /** Writes a small response of our own; settles when it is done. */
  function reply(req: Request, res: Response, status: number, headers: http.OutgoingHttpHeaders, body: string): Promise<SendFileResult> {
    const length = Buffer.byteLength(body)
    res.writeHead(status, { 'Content-Length': length, ...corsHeaders, ...headers })
    if (req.method === 'HEAD') res.end()
    else res.end(body)
    return new Promise<void>((done) => res.once('close', done)).then(() => ({
      statusCode: status,
      bytes: res.writableFinished && req.method !== 'HEAD' ? length : 0,
      zeroCopy: false,
      aborted: !res.writableFinished,
    }))
  }

  async function handle(req: Request, res: Response): Promise<SendFileResult> {
    const method = req.method
    if (method === 'OPTIONS' && s.cors) {
      // A CORS preflight: whatever the page asks to send, for a day.
      const asked = req.headers['access-control-request-headers']
      res.writeHead(204, {
        'Access-Control-Allow-Origin': '*',
        'Access-Control-Allow-Methods': allow,
        ...(asked ? { 'Access-Control-Allow-Headers': asked } : {}),
        'Access-Control-Max-Age': 86400,
        Allow: allow,
      })
      res.end()
      return { statusCode: 204, bytes: 0, zeroCopy: false, aborted: false }
    }
    if (method !== 'GET' && method !== 'HEAD') {
      return reply(req, res, 405, { Allow: allow, 'Content-Type': 'text/plain; charset=utf-8' }, 'Method Not Allowed\n')
    }
    const pathname = pathnameOf(req.url ?? '/')
    if (pathname === null) return reply(req, res, 400, { 'Content-Type': 'text/plain; charset=utf-8' }, 'Bad Request\n')
    if (s.listing && pathname.endsWith('/')) {
      const target = await listingTarget(root, realRoot, pathname, s.dotfiles)
      if (target) {
        const html = await listingPage(target, realRoot, s.dotfiles)
        return reply(req, res, 200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'" }, html)
      }
    }
    // HTTP/2's compatibility response carries the same methods sendFile
    // uses; its body takes the stream path.
    const r = res as http.ServerResponse
    const q = req as http.IncomingMessage
    if (s.single && wantsAppShell(req, pathname)) {
      const result = await sendFile(q, r, pathname, spaOptions)
      if (!result.fellThrough) return result
      return sendFile(q, r, '/index.html', options)
    }
    return sendFile(q, r, pathname, options)
  }

  return { handle, reply }
}

/** Starts one server; returns a function that stops it gracefully. */
export function startServer(s: ServeSettings, hooks: ServerHooks): (why: string) => void {
  const log = new AccessLog(s.log)
  const { handle } = createHandler(s, log)
  let inFlight = 0
  let stopping = false
  let closed = false
  const sessions = new Set<http2.Http2Session>()

  function onRequest(req: Request, res: Response): void {
    const start = process.hrtime.bigint()
    const remote = req.socket.remoteAddress ?? '-'
    if (stopping && req.httpVersionMajor < 2) res.setHeader('Connection', 'close')
    inFlight++
    handle(req, res)
      .catch((err: Error): SendFileResult => {
        // Not a client's doing: sendFile only rejects on a bug or misuse.
        process.stderr.write(`uring-fs: ${req.method} ${printable(req.url ?? '')}: ${err.stack || err}\n`)
        if (!res.headersSent) {
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', ...(req.httpVersionMajor < 2 ? { Connection: 'close' } : {}) })
          res.end('Internal Server Error\n')
        } else {
          res.destroy()
        }
        return { statusCode: 500, bytes: 0, zeroCopy: false, aborted: false, error: err }
      })
      .then((result) => {
        if (log.enabled) {
          const how = result.aborted ? 'aborted' : result.zeroCopy ? 'zero-copy' : '-'
          const error = result.statusCode >= 500 && result.error ? result.error.message : undefined
          log.add({ start, remote, method: req.method ?? '-', url: req.url ?? '-', status: result.statusCode, bytes: result.bytes, how, error })
        }
        inFlight--
        if (stopping) {
          closeIdle()
          maybeDone()
        }
      })
  }

  let server: http.Server | https.Server | http2.Http2SecureServer
  if (s.http2) {
    const secure = http2.createSecureServer({ cert: readFileSync(s.cert as string), key: readFileSync(s.key as string), allowHTTP1: true }, onRequest)
    secure.on('session', (session) => {
      sessions.add(session)
      session.on('close', () => sessions.delete(session))
    })
    server = secure
  } else if (s.cert !== null) {
    server = https.createServer({ cert: readFileSync(s.cert), key: readFileSync(s.key as string) }, onRequest)
  } else {
    server = http.createServer(onRequest)
  }

  function closeIdle(): void {
    if ('closeIdleConnections' in server) server.closeIdleConnections()
    for (const session of sessions) session.close() // GOAWAY: streams in flight finish
  }

  function maybeDone(): void {
    if (closed && inFlight === 0) {
      log.flush()
      hooks.stopped()
    }
  }

  server.on('error', (err: NodeJS.ErrnoException) => {
    const where = `${s.host}:${s.port}`
    const why =
      err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EADDRNOTAVAIL' ? 'address not available' : err.message
    hooks.fatal(`cannot listen on ${where}: ${why}`)
  })
  server.listen(s.port, s.host, () => {
    const address = server.address()
    hooks.listening(typeof address === 'object' && address !== null ? address.port : s.port)
  })

  return function stop(why: string): void {
    if (stopping) return
    stopping = true
    hooks.say(`${why}, closing (${inFlight} response${inFlight === 1 ? '' : 's'} in flight)`)
    server.close(() => {
      closed = true
      maybeDone()
    })
    closeIdle()
    setTimeout(() => {
      hooks.warn(`${inFlight} response(s) still running after ${SHUTDOWN_GRACE_MS / 1000} s, cutting them`)
      if ('closeAllConnections' in server) server.closeAllConnections() // their results settle (aborted) and are logged
      for (const session of sessions) session.destroy()
      setTimeout(() => {
        log.flush()
        hooks.stopped()
      }, 1000).unref()
    }, SHUTDOWN_GRACE_MS).unref()
  }
}

/** Whether `dir` is a directory one can serve: the reason when not. */
export function checkRoot(dir: string): string | null {
  try {
    if (!statSync(realpathSync(resolve(dir))).isDirectory()) return `${dir}: not a directory`
    return null
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    return `${dir}: ${e.code === 'ENOENT' ? 'no such directory' : e.message}`
  }
}
