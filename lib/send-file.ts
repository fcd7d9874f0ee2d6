// sendFile: a file as an HTTP response, with the behaviour of the `send`
// package (statuses, headers, conditional requests, ranges, option names)
// and a body that goes file -> socket inside the kernel on plain TCP.
//
// The steps follow send's SendStream.pipe/send/sendFile/sendIndex in
// order, so that the same request gets the same answer; the differences are
// deliberate: the file is opened confined beneath `root` by the kernel
// (openat2 RESOLVE_BENEATH: a symlink out of `root` is a 404, never a
// byte), non-regular files are not served, `redirect: false` turns the
// directory redirect into a 404, and the promise reports what happened
// instead of events.

import { type Stats, fstatSync, statSync } from 'node:fs'
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { STATUS_CODES, ServerResponse as HttpServerResponse } from 'node:http'
import { constants as osConstants } from 'node:os'
import { basename, dirname, extname, join, normalize, resolve, sep } from 'node:path'
import encodeUrl from 'encodeurl'
import mime from 'mime-types'
import ms from 'ms'
import parseRange from 'range-parser'
import vary from 'vary'
import type { ServedFile, SharedFile } from '../binding'
import { ServedSlot } from '../binding'
import { native } from './native'
import { openServedJs } from './node-fs-backend'
import { type CacheLimits, type CacheOptions, type CachedFile, cacheOption, cachedOpen, rememberUrl, shareCached, urlHit } from './open-file-cache'
import { type Encoding, SUFFIX, accepted, encodingsOption } from './precompressed'
import { type Handoff, type XSendfileOptions, handoffHeader, handoffOption } from './proxy-handoff'
import { closeFile } from './zero-copy-body'
import { endWithBytes } from './memory-body'
import { invalidArgType, outOfRange, systemError } from './errors'
import { validateInteger } from './validate'
import { isConditional, isFresh, isPreconditionFailure, isRangeFresh, validatorsOf } from './http-conditional'
import { createReadStream } from './read-stream'
import { type ServedDir, withRoot } from './served-root'
import { sendZeroCopy, zeroCopySocketFd } from './zero-copy-body'

export interface SendFileOptions {
  /** Directory to serve from; `path` is then a URL path beneath it. */
  root?: string
  /** File(s) to serve for a path ending in '/'. Default 'index.html'. */
  index?: string | string[] | false
  /**
   * Extensions tried in order, as send does, when the path has none and no
   * file has it: `['html']` serves `/about` from `about.html`.
   */
  extensions?: string | string[] | false
  /** A directory path without a trailing '/' gets a 301 to it with one (default), or a 404 when false. */
  redirect?: boolean
  /** Cache-Control max-age, in ms or an `ms` string ('1d'). Default 0, at most a year. */
  maxAge?: number | string
  /** Adds `immutable` to Cache-Control. */
  immutable?: boolean
  etag?: boolean
  lastModified?: boolean
  acceptRanges?: boolean
  cacheControl?: boolean
  /** Paths with a part starting with '.': 'ignore' (404, default), 'deny' (403) or 'allow'. */
  dotfiles?: 'allow' | 'deny' | 'ignore'
  /** Headers set on every successful response, before sendFile's own. */
  headers?: OutgoingHttpHeaders
  /**
   * Called for each file about to be served, after `headers` and before
   * sendFile's own (serve-static's hook, at send's 'headers' time): the
   * response, the file's path and its fs.Stats. A header set here is kept
   * (sendFile sets Cache-Control, Last-Modified, ETag... only when absent).
   */
  setHeaders?: (res: ServerResponse, path: string, stat: Stats) => void
  /** Serve only this byte range of the file (inclusive), as send's start/end. */
  start?: number
  end?: number
  /** false: always send the body through a read stream. Default true. */
  zeroCopy?: boolean
  /**
   * Serve `file.br`, `file.zst` or `file.gz` in place of `file` when it
   * exists beneath the root and the request's Accept-Encoding takes it:
   * `true` for all three (ties in that order), or a list in the order of
   * preference. Every response of a file that has a variant says
   * `Vary: Accept-Encoding`. Default false.
   */
  precompressed?: boolean | Array<'br' | 'zstd' | 'gzip'>
  /**
   * Hand the body to a front proxy (Rack::Sendfile's convention): a
   * response with a header naming the file (X-Accel-Redirect for nginx,
   * X-Sendfile, X-Lighttpd-Send-File) and no body. `true` takes the header
   * and the path mapping from the request's X-Sendfile-Type and
   * X-Accel-Mapping, which the proxy sets; an object fixes them. A file no
   * mapping covers is served as usual. Default false.
   */
  xSendfile?: boolean | XSendfileOptions
  /**
   * The open-file cache (per root; nginx's open_file_cache): files already
   * served are kept with their stat, small ones (up to 64 KiB) with their
   * bytes, larger ones as an open descriptor, and answered without a path
   * walk, open, stat or close. Never stale: a change to the file or a
   * directory on its path (write, truncate, rename, unlink, chmod) is seen
   * by the next request (inotify, read before each cached answer), and
   * what inotify cannot see (a write through a shared mmap, a mount over a
   * served path) within a second. Paths through a symlink are not cached.
   * `false` turns it off; an object bounds it. Default on, 1024 entries,
   * 64 MiB, 128 descriptors per root.
   */
  cache?: boolean | CacheOptions
  /**
   * On a 404, write nothing and leave the response to the caller
   * (serve-static's `fallthrough`): the result says `fellThrough`, and the
   * headers are as they were before the call. Default false.
   */
  fallthrough?: boolean
}

export interface SendFileResult {
  /** The status sent. */
  statusCode: number
  /** Body bytes of the file that reached the socket. */
  bytes: number
  /** The body went file -> socket in the kernel. */
  zeroCopy: boolean
  /** The connection ended before the response was complete. */
  aborted: boolean
  /** Why the status is an error (404, 500...), or why the body was cut. */
  error?: Error
  /** With `fallthrough`: the file was not found and nothing was written. */
  fellThrough?: boolean
}

const UP_PATH_REGEXP = /(?:^|[\\/])\.\.(?:[\\/]|$)/
const BYTES_RANGE_REGEXP = /^ *bytes=/
const MAX_MAXAGE = 60 * 60 * 24 * 365 * 1000
const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const ENOENT = osConstants.errno.ENOENT
const EIO = osConstants.errno.EIO

interface Settings {
  root: string | null
  index: string[]
  extensions: string[]
  redirect: boolean
  maxAge: number
  immutable: boolean
  etag: boolean
  lastModified: boolean
  acceptRanges: boolean
  cacheControl: boolean
  dotfiles: 'allow' | 'deny' | 'ignore'
  headers: OutgoingHttpHeaders | undefined
  setHeaders: ((res: ServerResponse, path: string, stat: Stats) => void) | undefined
  start: number | undefined
  end: number | undefined
  zeroCopy: boolean
  precompressed: Encoding[]
  xSendfile: Handoff | null
  cache: CacheLimits | null
  fallthrough: boolean
}

/** A file opened to serve: by the usual open, or from the cache. */
/** An open file: its descriptor is its own, or `share`'s (then released, not closed). */
type Opened = ServedFile & { cached?: CachedFile; share?: SharedFile }

/** How a file is served: as itself, or as a precompressed variant of another. */
interface Variant {
  /** The path whose extension gives the Content-Type (the original's). */
  typePath: string
  /** Content-Encoding of the variant, or none for the file itself. */
  encoding: Encoding | null
  /** The file has variants: the answer depends on Accept-Encoding. */
  vary: boolean
}

function flag(v: unknown, def: boolean): boolean {
  return v === undefined ? def : Boolean(v)
}

function normalizeList(val: unknown, name: string): string[] {
  const list = ([] as unknown[]).concat(val || [])
  for (const item of list) {
    if (typeof item !== 'string') throw new TypeError(`${name} must be array of strings or false`)
  }
  return list as string[]
}

/** path.resolve of roots seen (for options objects made per request). */
const resolvedRoots = new Map<string, string>()

function resolveRoot(root: string): string {
  let abs = resolvedRoots.get(root)
  if (abs === undefined) {
    abs = resolve(root)
    // Relative roots depend on the working directory: not kept.
    if (root === abs && resolvedRoots.size < 256) resolvedRoots.set(root, abs)
  }
  return abs
}

function settingsOf(o: SendFileOptions): Settings {
  const dotfiles = o.dotfiles ?? 'ignore'
  if (dotfiles !== 'ignore' && dotfiles !== 'allow' && dotfiles !== 'deny') {
    throw new TypeError('dotfiles option must be "allow", "deny", or "ignore"')
  }
  if (o.setHeaders !== undefined && typeof o.setHeaders !== 'function') {
    throw new TypeError('option setHeaders must be function')
  }
  // fs.createReadStream's rules and errors for the same two options.
  const start = o.start === undefined ? undefined : validateInteger(o.start, 'start', 0)
  const end = o.end === undefined ? undefined : validateInteger(o.end, 'end', 0)
  if (start !== undefined && end !== undefined && start > end) throw outOfRange('start', `<= "end" (here: ${end})`, start)
  return {
    root: o.root ? resolveRoot(o.root) : null,
    index: o.index !== undefined ? normalizeList(o.index, 'index option') : ['index.html'],
    extensions: o.extensions !== undefined ? normalizeList(o.extensions, 'extensions option') : [],
    redirect: flag(o.redirect, true),
    maxAge: maxAgeOf(o.maxAge),
    immutable: flag(o.immutable, false),
    etag: flag(o.etag, true),
    lastModified: flag(o.lastModified, true),
    acceptRanges: flag(o.acceptRanges, true),
    cacheControl: flag(o.cacheControl, true),
    dotfiles,
    headers: o.headers,
    setHeaders: o.setHeaders,
    start,
    end,
    zeroCopy: flag(o.zeroCopy, true),
    precompressed: encodingsOption(o.precompressed),
    xSendfile: handoffOption(o.xSendfile),
    cache: cacheOption(o.cache),
    fallthrough: flag(o.fallthrough, false),
  }
}

/**
 * send's maxAge: milliseconds, or an `ms` string ('1d'), clamped to
 * [0, a year]; absent, 0. send turns a value it cannot read into 0 (or lets
 * `ms` throw a plain Error for an empty string); a TypeError says which
 * value it was instead.
 */
function maxAgeOf(raw: unknown): number {
  if (raw === undefined || raw === null || raw === false || raw === 0) return 0
  let value: number | undefined
  if (typeof raw === 'number') value = raw
  else if (typeof raw === 'string' && raw.trim() !== '') {
    value = /^\s*-?\d+(?:\.\d+)?\s*$/.test(raw) ? Number(raw) : ms(raw as ms.StringValue)
  }
  if (value === undefined || Number.isNaN(value)) {
    throw new TypeError(`maxAge option must be a number of milliseconds or an ms string such as '1d', not ${JSON.stringify(raw) ?? String(raw)}`)
  }
  return Math.min(Math.max(0, value), MAX_MAXAGE)
}

/** send's escape-html: the five characters that could open markup or an attribute. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function htmlDocument(title: string, body: string): string {
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${title}</title>\n</head>\n<body>\n<pre>${body}</pre>\n</body>\n</html>\n`
}

function collapseLeadingSlashes(str: string): string {
  let i = 0
  while (i < str.length && str[i] === '/') i++
  return i > 1 ? '/' + str.slice(i) : str
}

function containsDotFile(parts: string[]): boolean {
  return parts.some((part) => part.length > 1 && part[0] === '.')
}

/** Settles once `res` has finished or closed. */
function responseDone(res: ServerResponse): Promise<void> {
  if (res.writableFinished || res.destroyed) return Promise.resolve()
  return new Promise((done) => {
    const end = (): void => {
      res.removeListener('finish', end)
      res.removeListener('close', end)
      done()
    }
    res.once('finish', end)
    res.once('close', end)
  })
}

let lastDateMs = NaN
let lastDate = ''

/** An HTTP date; the last one is kept (responses often share a file). */
function httpDate(ms: number): string {
  if (ms !== lastDateMs) {
    lastDate = new Date(ms).toUTCString()
    lastDateMs = ms
  }
  return lastDate
}

const types = new Map<string, string>()

/** mime-types' Content-Type for an extension, remembered. */
function contentType(ext: string): string {
  let type = types.get(ext)
  if (type === undefined) {
    type = mime.contentType(ext) || 'application/octet-stream'
    if (types.size < 1024) types.set(ext, type)
  }
  return type
}

const opened = new Float64Array(ServedSlot.Count)

/**
 * Opens a file beneath the root: from the open-file cache when it has it
 * or takes it (a cached file kept open comes with a descriptor of its own;
 * a small one with its bytes and no descriptor); else inline when the
 * kernel can without I/O; on the JavaScript fallback, by path with the
 * same confinement checked.
 */
function open(dir: ServedDir, rel: string, cache: CacheLimits | null): Opened | Promise<Opened> {
  if (native === null) return openServedJs(dir.path, rel)
  if (cache !== null && dir.fd >= 0) {
    const e = cachedOpen(dir.path, dir.fd, rel, cache)
    if (e !== null) {
      // A small file's bytes, or a path known to be missing (ENOENT).
      if (e.body !== null || e.errno !== 0) return e
      const share = shareCached(e)
      if (share !== null) {
        return { fd: share.fd, errno: 0, syscall: '', size: e.size, mode: e.mode, mtimeSec: e.mtimeSec, mtimeNsec: e.mtimeNsec, ino: e.ino, cached: e, share }
      }
    }
  }
  const p = Buffer.from(rel)
  if (!native.openServedCached(dir.fd, p, opened)) return native.openServed(dir.fd, p)
  const errno = opened[ServedSlot.Errno]
  return {
    fd: opened[ServedSlot.Fd],
    errno,
    syscall: errno === 0 ? '' : 'open',
    size: opened[ServedSlot.Size],
    mode: opened[ServedSlot.Mode],
    mtimeSec: opened[ServedSlot.MtimeSec],
    mtimeNsec: opened[ServedSlot.MtimeNsec],
    ino: opened[ServedSlot.Ino],
  }
}

/** A regular file to serve: open, or in memory (a cached small file). */
function servable(f: Opened): boolean {
  return f.fd >= 0 || f.cached !== undefined
}

/** Lets go of an opened file: closes its descriptor, or releases its share. */
function release(f: Opened): void {
  if (f.share !== undefined) f.share.release()
  else if (f.fd >= 0) closeFile(f.fd)
}

/** The regular file `rel` beneath the root, open, or null (missing, not regular, failed). */
async function openVariant(dir: ServedDir, rel: string, cache: CacheLimits | null): Promise<Opened | null> {
  const o = open(dir, rel, cache)
  const f = o instanceof Promise ? await o : o
  return f.errno === 0 && servable(f) ? f : null
}

function httpError(status: number, cause?: Error): Error {
  const err = new Error(STATUS_CODES[status] ?? String(status), cause ? { cause } : undefined) as Error & {
    status: number
    statusCode: number
    code?: string
  }
  err.status = err.statusCode = status
  if (cause && 'code' in cause) err.code = (cause as { code?: string }).code
  return err
}

class Response {
  /** The directory the served paths are relative to. */
  base: string = sep
  /**
   * The request path as sent, when it names `urlRel` directly beneath the
   * root (no dotfile part, no trailing '/'): a cached file served for it
   * is remembered for the fast path.
   */
  url: string | null = null
  urlRel = ''
  /** With `fallthrough`, the headers set before the call, to put back on a 404. */
  readonly before: OutgoingHttpHeaders | null

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly path: string,
    readonly s: Settings,
  ) {
    this.before = s.fallthrough ? { ...res.getHeaders() } : null
  }

  async done(bytes = 0, error?: Error, zeroCopy = false, aborted = false): Promise<SendFileResult> {
    await responseDone(this.res)
    const result: SendFileResult = { statusCode: this.res.statusCode, bytes, zeroCopy, aborted }
    if (error) result.error = error
    return result
  }

  /** send's error(): a small HTML page, every header set so far dropped. */
  error(status: number, cause?: Error, headers?: OutgoingHttpHeaders): Promise<SendFileResult> {
    const res = this.res
    if (status === 404 && this.before !== null) {
      // Left to the caller as it was found (serve-static's fallthrough):
      // the headers put back, nothing written.
      for (const name of res.getHeaderNames()) if (!(name in this.before)) res.removeHeader(name)
      for (const [name, value] of Object.entries(this.before)) if (value !== undefined) res.setHeader(name, value)
      return Promise.resolve({ statusCode: 404, bytes: 0, zeroCopy: false, aborted: false, error: httpError(404, cause), fellThrough: true })
    }
    const doc = htmlDocument('Error', escapeHtml(STATUS_CODES[status] ?? String(status)))
    for (const name of res.getHeaderNames()) res.removeHeader(name)
    if (headers) for (const [k, v] of Object.entries(headers)) if (v !== undefined) res.setHeader(k, v)
    this.page(status, doc)
    return this.done(0, httpError(status, cause))
  }

  /** A small HTML page as the whole response, with send's headers. */
  page(status: number, doc: string, location?: string): void {
    const res = this.res
    res.statusCode = status
    res.setHeader('Content-Type', 'text/html; charset=UTF-8')
    res.setHeader('Content-Length', Buffer.byteLength(doc))
    res.setHeader('Content-Security-Policy', "default-src 'none'")
    res.setHeader('X-Content-Type-Options', 'nosniff')
    if (location !== undefined) res.setHeader('Location', location)
    res.end(doc)
  }

  /** A failed open/fstat: missing -> 404, anything else -> 500. */
  statError(f: { errno: number; syscall: string }, path: string): Promise<SendFileResult> {
    const err = systemError(f.errno, f.syscall, path)
    switch (err.code) {
      case 'ENAMETOOLONG':
      case 'ENOENT':
      case 'ENOTDIR':
      case 'EXDEV': // resolves outside root: as if it did not exist
        return this.error(404, err)
      default:
        return this.error(500, err)
    }
  }

  hasTrailingSlash(): boolean {
    return this.path[this.path.length - 1] === '/'
  }

  redirect(): Promise<SendFileResult> {
    if (!this.s.redirect) return this.error(404)
    if (this.hasTrailingSlash()) return this.error(403)
    const loc = encodeUrl(collapseLeadingSlashes(this.path + '/'))
    this.page(301, htmlDocument('Redirecting', 'Redirecting to ' + escapeHtml(loc)), loc)
    return this.done()
  }

  setHeaders(f: Opened, filePath: string, encoding: Encoding | null): void {
    const { res, s } = this
    if (s.headers) for (const [k, v] of Object.entries(s.headers)) if (v !== undefined) res.setHeader(k, v)
    if (s.setHeaders) {
      const path = join(this.base, filePath)
      // A file cached in memory has no descriptor: its path names it (the
      // cache answered only because nothing on that path changed).
      s.setHeaders(res, path, f.fd >= 0 ? fstatSync(f.fd) : statSync(path))
    }
    if (s.acceptRanges && !res.getHeader('Accept-Ranges')) res.setHeader('Accept-Ranges', 'bytes')
    if (s.cacheControl && !res.getHeader('Cache-Control')) {
      let cc = 'public, max-age=' + Math.floor(s.maxAge / 1000)
      if (s.immutable) cc += ', immutable'
      res.setHeader('Cache-Control', cc)
    }
    // fs.Stats' mtime: mtimeMs computed as Node does, rounded to a Date.
    const mtime = Math.round(f.mtimeSec * 1e3 + f.mtimeNsec / 1e6)
    if (s.lastModified && !res.getHeader('Last-Modified')) res.setHeader('Last-Modified', httpDate(mtime))
    // The weak validator of the `etag` package for fs.Stats (size and mtime
    // in hex), so caches primed by `send` stay valid.
    // A variant's own, told apart from the other encodings' by their name.
    if (s.etag && !res.getHeader('ETag')) {
      const tag = `${f.size.toString(16)}-${mtime.toString(16)}`
      res.setHeader('ETag', encoding === null ? `W/"${tag}"` : `W/"${tag}-${encoding}"`)
    }
  }

  /**
   * Serves the regular file `f` found at `filePath`, or, with
   * `precompressed`, the variant of it the request accepts best. Owns `f.fd`.
   */
  async serve(dir: ServedDir, f: Opened, filePath: string): Promise<SendFileResult> {
    const offered = this.s.precompressed
    if (offered.length === 0) return this.send(f, filePath)
    const order = accepted(this.req, offered)
    const tried = new Set<string>()
    for (const enc of order) {
      if (enc === 'identity') break
      tried.add(enc)
      const v = await openVariant(dir, filePath + SUFFIX[enc as Encoding], this.s.cache)
      if (v !== null) {
        release(f)
        return this.send(v, filePath + SUFFIX[enc as Encoding], { typePath: filePath, encoding: enc as Encoding, vary: true })
      }
    }
    // The file itself; whether it has a variant decides Vary.
    let hasVariant = false
    for (const enc of offered) {
      if (tried.has(enc)) continue
      const v = await openVariant(dir, filePath + SUFFIX[enc], this.s.cache)
      if (v !== null) {
        release(v)
        hasVariant = true
        break
      }
    }
    return this.send(f, filePath, { typePath: filePath, encoding: null, vary: hasVariant })
  }

  /** send's send(): headers, conditionals, range, then the body. Owns `f.fd`. */
  async send(f: Opened, filePath: string, variant?: Variant): Promise<SendFileResult> {
    const { req, res, s } = this
    if (res.headersSent) {
      release(f)
      const err = new Error("Can't set headers after they are sent.") as Error & { code: string }
      err.code = 'ERR_HTTP_HEADERS_SENT'
      throw err
    }
    try {
      this.setHeaders(f, filePath, variant?.encoding ?? null)
    } catch (err) {
      // The hook threw: the file is not served (and its descriptor not kept).
      release(f)
      throw err
    }
    if (!res.getHeader('Content-Type')) res.setHeader('Content-Type', contentType(extname(variant?.typePath ?? filePath)))
    if (variant?.vary) vary(res, 'Accept-Encoding')
    if (variant?.encoding) res.setHeader('Content-Encoding', variant.encoding)
    const handoff = s.xSendfile && handoffHeader(s.xSendfile, req, join(this.base, filePath))
    if (handoff) {
      // The proxy sends the body, and answers ranges and conditionals itself.
      release(f)
      res.setHeader(handoff[0], handoff[1])
      res.setHeader('Content-Length', 0)
      res.end()
      return this.done()
    }
    if (isConditional(req.headers)) {
      const v = validatorsOf((n) => res.getHeader(n))
      if (isPreconditionFailure(req.headers, v)) {
        release(f)
        return this.error(412)
      }
      const cachable = (res.statusCode >= 200 && res.statusCode < 300) || res.statusCode === 304
      if (cachable && isFresh(req.headers, v)) {
        release(f)
        for (const h of ['Content-Encoding', 'Content-Language', 'Content-Length', 'Content-Range', 'Content-Type']) {
          res.removeHeader(h)
        }
        res.statusCode = 304
        res.end()
        return this.done()
      }
    }
    let offset = s.start || 0
    let len = Math.max(0, f.size - offset)
    if (s.end !== undefined) {
      const bytes = s.end - offset + 1
      if (len > bytes) len = bytes
    }
    const rangeHeader = req.headers.range
    if (s.acceptRanges && rangeHeader !== undefined && BYTES_RANGE_REGEXP.test(rangeHeader)) {
      let ranges = parseRange(len, rangeHeader, { combine: true })
      if (!isRangeFresh(req.headers, validatorsOf((n) => res.getHeader(n)))) ranges = -2
      if (ranges === -1) {
        release(f)
        return this.error(416, undefined, { 'Content-Range': `bytes */${len}` })
      }
      if (ranges !== -2 && ranges.length === 1) {
        res.statusCode = 206
        res.setHeader('Content-Range', `bytes ${ranges[0].start}-${ranges[0].end}/${len}`)
        offset += ranges[0].start
        len = ranges[0].end - ranges[0].start + 1
      }
    }
    res.setHeader('Content-Length', len)
    if (req.method === 'HEAD' || len === 0) {
      release(f)
      res.end()
      return this.done()
    }
    const body = f.cached?.body
    if (body != null) {
      // A small file cached in memory: written as Node writes any Buffer.
      if (this.url !== null && filePath === this.urlRel && !variant?.encoding) rememberUrl(f.cached as CachedFile, this.url)
      if (!endWithBytes(res, len === body.length ? body : body.subarray(offset, offset + len))) return this.done(0, undefined, false, true)
      return this.done(len)
    }
    const socketFd = s.zeroCopy ? zeroCopySocketFd(res) : -1
    if (socketFd >= 0) {
      const pending = sendZeroCopy(res, socketFd, f.fd, offset, len)
      const out = pending instanceof Promise ? await pending : pending
      release(f)
      if (out.failed) {
        const error = out.errno ? systemError(out.errno, out.syscall || 'write') : undefined
        // A file error (it shrank, EIO) is not the client's doing.
        const aborted = out.syscall !== 'read'
        return this.done(out.bytes, error, true, aborted)
      }
      res.end()
      return this.done(out.bytes, undefined, true)
    }
    return this.stream(f, filePath, offset, len)
  }

  /** The body through a read stream (TLS, HTTP/2, transforms). */
  stream(f: Opened, filePath: string, offset: number, len: number): Promise<SendFileResult> {
    const res = this.res
    // The stream closes what it is given, even when destroyed: a shared
    // descriptor goes to it as a duplicate of its own.
    let fd = f.fd
    if (f.share !== undefined) {
      fd = f.share.dup()
      f.share.release()
    }
    const stream = createReadStream(filePath, { fd, start: offset, end: offset + len - 1 })
    return new Promise((settle) => {
      let error: Error | undefined
      let finished = false
      res.once('finish', () => { finished = true })
      stream.once('error', (err) => {
        error = err
        res.destroy()
      })
      // A file that ends short of the length announced (it shrank since its
      // stat) cannot complete the response: the connection is cut, as the
      // engine's paths cut it, so that a keep-alive client does not wait
      // for the rest, and the result says why (EIO from read, as there).
      stream.once('end', () => {
        if (stream.bytesRead >= len) {
          res.end()
          return
        }
        error = systemError(EIO, 'read')
        res.destroy()
      })
      void responseDone(res).then(() => {
        if (!finished) stream.destroy()
        settle(this.done(finished ? len : stream.bytesRead, error, false, !finished && !error))
      })
      stream.pipe(res, { end: false })
    })
  }

  /** Opens `rel` beneath the root and serves it (send's sendFile). */
  async sendPath(dir: ServedDir, rel: string, shown: string): Promise<SendFileResult> {
    const o = open(dir, rel || '.', this.s.cache)
    const f = o instanceof Promise ? await o : o
    const endsWithSep = rel[rel.length - 1] === sep
    if (f.errno !== 0) {
      if (f.errno === -ENOENT && this.s.extensions.length && !extname(rel) && !endsWithSep) {
        return this.sendWithExtension(dir, rel, shown, f)
      }
      return this.statError(f, shown)
    }
    if ((f.mode & S_IFMT) === S_IFDIR) return this.redirect()
    if (!servable(f)) return this.error(404)
    if (endsWithSep) {
      release(f)
      return this.error(404)
    }
    return this.serve(dir, f, rel)
  }

  /**
   * `rel` plus each extension in turn (send's sendFile `next`): the first
   * regular file is served; a directory is passed over. With none, the
   * last attempt's error, or 404 if it was a directory.
   */
  async sendWithExtension(dir: ServedDir, rel: string, shown: string, first: ServedFile): Promise<SendFileResult> {
    let last: ServedFile | undefined = first
    for (const ext of this.s.extensions) {
      const p = rel + '.' + ext
      const o = open(dir, p, this.s.cache)
      const f = o instanceof Promise ? await o : o
      if (f.errno !== 0) {
        last = f
        continue
      }
      last = undefined
      if (!servable(f)) continue // a directory (or no regular file)
      return this.serve(dir, f, p)
    }
    return last ? this.statError(last, shown) : this.error(404)
  }

  /** The first index file of the directory `rel` (send's sendIndex). */
  async sendIndex(dir: ServedDir, rel: string, shown: string): Promise<SendFileResult> {
    let lastError: ServedFile | undefined
    for (const name of this.s.index) {
      const p = join(rel, name)
      const o = open(dir, p, this.s.cache)
      const f = o instanceof Promise ? await o : o
      if (f.errno !== 0) {
        lastError = f
        continue
      }
      if (!servable(f)) continue // a directory (or no regular file)
      return this.serve(dir, f, p)
    }
    return lastError ? this.statError(lastError, shown) : this.error(404)
  }
}

/**
 * Sends the file at `path` (a URL path, percent-encoded, beneath
 * `options.root`; or an absolute file path without `root`) as the response
 * to `req`, with the semantics of the `send` package. Resolves when the
 * response is done, also when it failed or the client went away (see the
 * result); rejects only on bad arguments or headers already sent.
 */
export function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  options: SendFileOptions = {},
): Promise<SendFileResult> {
  // Bad arguments throw here, synchronously, as send's constructor does.
  if (typeof req !== 'object' || req === null) throw invalidArgType('req', 'IncomingMessage', req)
  if (typeof res !== 'object' || res === null) throw invalidArgType('res', 'ServerResponse', res)
  if (typeof path !== 'string') throw invalidArgType('path', 'string', path)
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'Object', options)
  const quick = quickAnswer(req, res, path, options)
  if (quick !== null) return quick
  return respond(new Response(req, res, path, settingsOf(options)), path)
}

/**
 * Options given their default value (or one that cannot change the answer
 * for a file found at its very path), beside `root`: what the fast path
 * answers for. Anything else (and any value to validate) takes the full path.
 */
const FAST_DEFAULTS = new Map<string, (v: unknown) => boolean>([
  ['root', () => true],
  ['cache', (v) => v === true],
  ['precompressed', (v) => v === false],
  ['xSendfile', (v) => v === false],
  ['zeroCopy', (v) => typeof v === 'boolean'],
  ['redirect', (v) => typeof v === 'boolean'],
  ['etag', (v) => v === true],
  ['lastModified', (v) => v === true],
  ['acceptRanges', (v) => v === true],
  ['cacheControl', (v) => v === true],
  ['immutable', (v) => v === false],
  ['maxAge', (v) => v === 0],
  ['fallthrough', (v) => typeof v === 'boolean'],
])

function fastOptions(options: SendFileOptions): boolean {
  for (const k in options) {
    const v = (options as Record<string, unknown>)[k]
    if (v === undefined) continue
    const ok = FAST_DEFAULTS.get(k)
    if (ok === undefined || !ok(v)) return false
  }
  return true
}

/**
 * Node's own key of a response's headers (`kOutHeaders`: an object of
 * lower-case name -> [name, value], null until the first is set; the same
 * from Node 10 to 26). null where it cannot be found: then the public API.
 */
let kOutHeaders: symbol | null | undefined

function outHeadersKey(res: ServerResponse): symbol | null {
  if (kOutHeaders === undefined) {
    // Learnt from a response with no header set yet, so that it is null.
    const key = Object.getOwnPropertySymbols(res).find((sym) => sym.description === 'kOutHeaders')
    if (key === undefined || (res as unknown as Record<symbol, unknown>)[key] !== null) return null
    kOutHeaders = key
  }
  return kOutHeaders
}

/** Whether any header is set on `res` yet. */
function hasHeaders(res: ServerResponse): boolean {
  const key = outHeadersKey(res)
  if (key === null) return res.getHeaderNames().length > 0
  return (res as unknown as Record<symbol, unknown>)[key] != null
}

/**
 * Whether the request may be conditional or ranged, from its raw header
 * names (req.headers is built on first use, which costs more than the
 * rest of a cached answer): a name starting with 'if-' or equal to
 * 'range', in any case.
 */
function maybeConditional(raw: string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    const c = name.charCodeAt(0) | 0x20
    if (c === 0x69 /* i */ && name.length > 3 && (name.charCodeAt(1) | 0x20) === 0x66 && name.charCodeAt(2) === 0x2d) return true
    if (c === 0x72 /* r */ && name.length === 5 && name.toLowerCase() === 'range') return true
  }
  return false
}

/**
 * A cached answer's headers as Node keeps them (kOutHeaders: lower-case
 * name -> [name, value], nothing inherited). Made by a constructor whose
 * prototype is an empty object with no prototype: an object literal with
 * `__proto__: null` is a dictionary, and building one cost 2.7% of a cached
 * 4 KiB response's CPU in V8's runtime (perf); this one has a fixed shape
 * and is built inline. Fresh arrays each time: appendHeader() changes them.
 */
function OutHeaders(this: Record<string, [string, string | number]>, e: CachedFile): void {
  this['accept-ranges'] = ['Accept-Ranges', 'bytes']
  this['cache-control'] = ['Cache-Control', 'public, max-age=0']
  this['last-modified'] = ['Last-Modified', e.lastModified]
  this.etag = ['ETag', e.etag]
  this['content-type'] = ['Content-Type', e.contentType]
  this['content-length'] = ['Content-Length', e.size]
}
OutHeaders.prototype = Object.create(null)

/** Fills a cached file's header values once: the same as Response.setHeaders makes. */
function headerValues(e: CachedFile): void {
  const mtime = Math.round(e.mtimeSec * 1e3 + e.mtimeNsec / 1e6)
  e.lastModified = httpDate(mtime)
  e.etag = `W/"${e.size.toString(16)}-${mtime.toString(16)}"`
  e.contentType = contentType(extname(e.rel))
}

/**
 * The fast path: a GET or HEAD of a small file the open-file cache holds,
 * already served for this very request path, with sendFile's defaults
 * (options `{ root }`, or others at their default), nothing conditional,
 * no range, no header set yet.
 * The same answer as the full path (send's headers, in its order), minus
 * its steps: no decoding, no normalising, no open, no promise chain. null:
 * take the full path.
 */
function quickAnswer(req: IncomingMessage, res: ServerResponse, path: string, options: SendFileOptions): Promise<SendFileResult> | null {
  const root = options.root
  if (native === null || typeof root !== 'string' || root === '' || !fastOptions(options)) return null
  const e = urlHit(resolveRoot(root), path)
  if (e === null) return null
  const method = req.method
  if ((method !== 'GET' && method !== 'HEAD') || maybeConditional(req.rawHeaders)) return null
  // node:http's own response (Express's inherits from it); not HTTP/2's.
  if (!(res instanceof HttpServerResponse)) return null
  const socket = res.socket
  if (res.statusCode !== 200 || res.headersSent || socket === null || socket.destroyed || hasHeaders(res)) return null
  if (e.etag === '') headerValues(e)
  const key = outHeadersKey(res)
  if (key !== null) {
    // What six setHeader calls would leave, built at once: the values are
    // valid (made here), and getHeader() sees them as usual.
    (res as unknown as Record<symbol, unknown>)[key] = new (OutHeaders as unknown as new (e: CachedFile) => object)(e)
  } else {
    res.setHeader('Accept-Ranges', 'bytes')
    res.setHeader('Cache-Control', 'public, max-age=0')
    res.setHeader('Last-Modified', e.lastModified)
    res.setHeader('ETag', e.etag)
    res.setHeader('Content-Type', e.contentType)
    res.setHeader('Content-Length', e.size)
  }
  const body = e.body as Buffer
  const bytes = method === 'HEAD' || body.length === 0 ? 0 : body.length
  if (bytes === 0) res.end()
  else if (!endWithBytes(res, body)) return Promise.resolve({ statusCode: 200, bytes: 0, zeroCopy: false, aborted: true })
  const result: SendFileResult = { statusCode: 200, bytes, zeroCopy: false, aborted: false }
  // Handed to the kernel whole: done, as 'finish' would say a tick later.
  if (res.writableLength === 0 && !res.destroyed) return Promise.resolve(result)
  return responseDone(res).then(() => {
    result.statusCode = res.statusCode
    return result
  })
}

async function respond(r: Response, path: string): Promise<SendFileResult> {
  const s = r.s
  let p: string
  try {
    p = decodeURIComponent(path)
  } catch {
    return r.error(400)
  }
  if (p.includes('\0')) return r.error(400)
  let dir: string
  let rel: string
  let parts: string[]
  if (s.root !== null && p === '') {
    // An empty path is the root itself, as with send (a file, or a
    // directory's redirect), opened beneath its parent.
    parts = []
    dir = dirname(s.root)
    rel = basename(s.root)
  } else if (s.root !== null) {
    if (p) p = normalize('.' + sep + p)
    if (UP_PATH_REGEXP.test(p)) return r.error(403)
    parts = p.split(sep)
    dir = s.root
    rel = p
  } else {
    if (UP_PATH_REGEXP.test(p)) return r.error(403)
    parts = normalize(p).split(sep)
    // Beneath '/': anywhere, but through the same confined open.
    dir = '/'
    rel = resolve(p).slice(1) + (p.endsWith(sep) && p.length > 1 ? sep : '')
  }
  if (containsDotFile(parts)) {
    if (s.dotfiles === 'deny') return r.error(403)
    if (s.dotfiles !== 'allow') return r.error(404)
  }
  const shown = s.root !== null ? path : p
  r.base = dir
  if (s.root !== null && rel !== '' && rel[rel.length - 1] !== sep && !containsDotFile(parts)) {
    r.url = path
    r.urlRel = rel
  }
  return withRoot(dir, async (served) => {
    if (served.errno < 0) return r.statError({ errno: served.errno, syscall: 'open' }, shown)
    if (s.index.length && r.hasTrailingSlash()) return r.sendIndex(served, rel, shown)
    return r.sendPath(served, rel, shown)
  })
}
