#!/usr/bin/env node
// uring-fs serve [dir]: a static file server on node:http whose responses
// come from sendFile (on plain TCP the body goes file -> socket in the
// kernel). GET and HEAD only; a directory is served by its index.html, or
// by a plain listing when it has none.
'use strict'
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { sendFile, backend, fallbackReason } = require('..')

const USAGE = `Usage: uring-fs serve [dir] [options]

Serves the files beneath dir (default: the current directory) over HTTP.

Options:
  -p, --port <n>     port to listen on, 0 for any free one (default 8080)
  -H, --host <addr>  address to listen on (default 127.0.0.1)
  -c, --compress     serve a file's precompressed variant (file.br, file.zst,
                     file.gz) to clients that accept its encoding
  -h, --help         show this help
`

const SHUTDOWN_GRACE_MS = 5000

function fail(message) {
  process.stderr.write(`uring-fs: ${message}\n`)
  process.exit(1)
}

function parse(argv) {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        port: { type: 'string', short: 'p', default: '8080' },
        host: { type: 'string', short: 'H', default: '127.0.0.1' },
        compress: { type: 'boolean', short: 'c', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
  } catch (err) {
    fail(`${err.message.split('. ')[0]} (see uring-fs --help)`)
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(USAGE)
    process.exit(0)
  }
  const [command, dir = '.', ...extra] = positionals
  if (command === undefined) {
    process.stderr.write(USAGE)
    process.exit(1)
  }
  if (command !== 'serve') fail(`unknown command '${command}' (see uring-fs --help)`)
  if (extra.length) fail(`unexpected argument '${extra[0]}' (see uring-fs --help)`)
  const port = /^\d+$/.test(values.port) ? Number(values.port) : NaN
  if (!(port >= 0 && port <= 65535)) fail(`--port must be an integer from 0 to 65535, not '${values.port}'`)
  return { dir, port, host: values.host, compress: values.compress }
}

// ---- directory listing ------------------------------------------------------

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/**
 * The directory to list for `pathname`, or null to leave the request to
 * sendFile. Only a path ending in '/' whose decoded form sendFile would take
 * as it is (no '..', no dot parts, no NUL), naming a directory whose real
 * path is beneath the root's and which has no index.html, is listed.
 */
async function listingTarget(root, realRoot, pathname) {
  if (!pathname.endsWith('/')) return null
  let p
  try {
    p = decodeURIComponent(pathname)
  } catch {
    return null
  }
  if (p.includes('\0') || p.includes('\\')) return null
  const parts = p.split('/')
  if (parts.some((part) => part === '..' || (part.length > 1 && part[0] === '.'))) return null
  try {
    const real = await fs.promises.realpath(path.join(root, p))
    if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return null
    if (!(await fs.promises.stat(real)).isDirectory()) return null
    try {
      await fs.promises.lstat(path.join(real, 'index.html'))
      return null // sendFile serves it (or answers for it)
    } catch (err) {
      if (err.code !== 'ENOENT') return null
    }
    return { dir: real, shown: p, realRoot }
  } catch {
    return null
  }
}

async function listing(target) {
  const entries = await fs.promises.readdir(target.dir, { withFileTypes: true })
  const rows = []
  for (const e of entries) {
    if (e.name[0] === '.') continue // sendFile ignores dotfiles (404)
    let isDir = e.isDirectory()
    if (e.isSymbolicLink()) {
      // sendFile answers 404 for a link out of the root: leave those out.
      const to = await fs.promises.realpath(path.join(target.dir, e.name)).catch(() => null)
      if (to === null || !to.startsWith(target.realRoot + path.sep)) continue
      isDir = await fs.promises.stat(to).then((st) => st.isDirectory(), () => false)
    }
    rows.push({ name: e.name, isDir })
  }
  rows.sort((a, b) => b.isDir - a.isDir || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const links = target.shown === '/' ? [] : ['<a href="../">../</a>']
  for (const { name, isDir } of rows) {
    const slash = isDir ? '/' : ''
    links.push(`<a href="./${encodeURIComponent(name)}${slash}">${escapeHtml(name)}${slash}</a>`)
  }
  const title = `Index of ${escapeHtml(target.shown)}`
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${title}</title>\n</head>\n<body>\n<h1>${title}</h1>\n<pre>\n${links.join('\n')}\n</pre>\n</body>\n</html>\n`
}

// ---- the server -------------------------------------------------------------

function pathnameOf(url) {
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

function printable(s) {
  return s.replace(/[\x00-\x20\x7f"]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`)
}

function serve({ dir, port, host, compress }) {
  const root = path.resolve(dir)
  let realRoot
  try {
    realRoot = fs.realpathSync(root)
    if (!fs.statSync(realRoot).isDirectory()) fail(`${dir}: not a directory`)
  } catch (err) {
    fail(`${dir}: ${err.code === 'ENOENT' ? 'no such directory' : err.message}`)
  }

  let inFlight = 0
  let shuttingDown = false
  let serverClosed = false

  function log(start, remote, req, result) {
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    const how = result.aborted ? 'aborted' : result.zeroCopy ? 'zero-copy' : '-'
    const err = result.statusCode >= 500 && result.error ? ` (${result.error.message})` : ''
    process.stdout.write(
      `${new Date().toISOString()} ${remote} ${req.method} ${printable(req.url)} ${result.statusCode} ${result.bytes} ${ms.toFixed(1)}ms ${how}${err}\n`,
    )
  }

  /** Writes a small response of our own; settles when it is done. */
  function reply(req, res, status, headers, body) {
    res.writeHead(status, { 'Content-Length': Buffer.byteLength(body), ...headers })
    res.end(req.method === 'HEAD' ? undefined : body)
    return new Promise((done) => res.once('close', done)).then(() => ({
      statusCode: status,
      bytes: res.writableFinished && req.method !== 'HEAD' ? Buffer.byteLength(body) : 0,
      zeroCopy: false,
      aborted: !res.writableFinished,
    }))
  }

  async function handle(req, res) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return reply(req, res, 405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }, 'Method Not Allowed\n')
    }
    const pathname = pathnameOf(req.url)
    if (pathname === null) return reply(req, res, 400, { 'Content-Type': 'text/plain; charset=utf-8' }, 'Bad Request\n')
    const target = await listingTarget(root, realRoot, pathname)
    if (target) {
      const html = await listing(target)
      return reply(req, res, 200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' }, html)
    }
    return sendFile(req, res, pathname, { root, precompressed: compress })
  }

  const server = http.createServer((req, res) => {
    const start = process.hrtime.bigint()
    const remote = req.socket.remoteAddress ?? '-'
    if (shuttingDown) res.setHeader('Connection', 'close')
    inFlight++
    handle(req, res)
      .catch((err) => {
        // Not a client's doing: sendFile only rejects on a bug or misuse.
        process.stderr.write(`uring-fs: ${req.method} ${printable(req.url)}: ${err.stack || err}\n`)
        if (!res.headersSent) {
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' })
          res.end('Internal Server Error\n')
        } else {
          res.destroy()
        }
        return { statusCode: 500, bytes: 0, zeroCopy: false, aborted: false, error: err }
      })
      .then((result) => {
        log(start, remote, req, result)
        inFlight--
        if (shuttingDown) {
          server.closeIdleConnections()
          maybeExit()
        }
      })
  })

  server.on('error', (err) => {
    const where = `${host}:${port}`
    if (err.code === 'EADDRINUSE') fail(`cannot listen on ${where}: address already in use`)
    if (err.code === 'EACCES') fail(`cannot listen on ${where}: permission denied`)
    if (err.code === 'EADDRNOTAVAIL') fail(`cannot listen on ${where}: address not available`)
    fail(`cannot listen on ${where}: ${err.message}`)
  })

  server.listen(port, host, () => {
    const bound = server.address().port
    const urlHost = host.includes(':') ? `[${host}]` : host
    const rel = path.relative(process.cwd(), root)
    const shown = rel === '' ? '.' : rel.startsWith('..') || path.isAbsolute(rel) ? root : rel
    const reason = fallbackReason()
    process.stdout.write(`uring-fs serving ${shown} at http://${urlHost}:${bound}/ (backend: ${backend()}${reason ? `; ${reason}` : ''})\n`)
  })

  function maybeExit() {
    if (serverClosed && inFlight === 0) process.exit(0)
  }

  function shutdown(signal) {
    if (shuttingDown) {
      process.stderr.write(`uring-fs: ${signal} again, exiting now\n`)
      process.exit(1)
    }
    shuttingDown = true
    process.stdout.write(`uring-fs: ${signal}, closing (${inFlight} response${inFlight === 1 ? '' : 's'} in flight)\n`)
    server.close(() => {
      serverClosed = true
      maybeExit()
    })
    server.closeIdleConnections()
    setTimeout(() => {
      process.stderr.write(`uring-fs: ${inFlight} response(s) still running after ${SHUTDOWN_GRACE_MS / 1000} s, cutting them\n`)
      server.closeAllConnections() // their results settle (aborted) and are logged
      setTimeout(() => process.exit(0), 1000).unref()
    }, SHUTDOWN_GRACE_MS).unref()
  }
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  return server
}

function main(argv) {
  return serve(parse(argv))
}

module.exports = { main }
if (require.main === module) main(process.argv.slice(2))
