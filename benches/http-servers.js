#!/usr/bin/env node
// The Node static-file servers benches/http.js measures, one per process so
// that each one's CPU time and RSS can be read from /proc/<pid>.
//
//   node benches/http-servers.js <fs-stream|send|fastify|memory|uring-fs> <root>
//
// Listens on 127.0.0.1 on a free port and writes {"port": N} on a line to
// stdout once it accepts connections. Every server answers GET /<file> with
// the file under <root> and a Content-Length, over keep-alive.
//
// `memory` is Node's ceiling for any file server: every file of <root> read
// into a Buffer at start, answered with the headers sendFile sends (type,
// length, ETag, Last-Modified, Cache-Control, Accept-Ranges) built once, and
// no I/O at all per request.

'use strict'
const http = require('node:http')
const fs = require('node:fs')
const path = require('node:path')
const { pipeline } = require('node:stream')

const [kind, root] = process.argv.slice(2)
if (!kind || !root) {
  console.error('usage: http-servers.js <fs-stream|send|fastify|memory|uring-fs> <root>')
  process.exit(2)
}

const ready = (port) => process.stdout.write(`${JSON.stringify({ port })}\n`)
const pathnameOf = (req) => new URL(req.url, 'http://localhost').pathname

function fsStream() {
  const base = path.resolve(root)
  return http.createServer((req, res) => {
    let file
    try {
      file = path.resolve(base, `.${decodeURIComponent(pathnameOf(req))}`)
    } catch {
      res.statusCode = 400
      return res.end()
    }
    if (!file.startsWith(base + path.sep)) {
      res.statusCode = 404
      return res.end()
    }
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) {
        res.statusCode = 404
        return res.end()
      }
      res.setHeader('Content-Type', 'application/octet-stream')
      res.setHeader('Content-Length', st.size)
      // pipeline rather than .pipe: same data path, but a client that goes
      // away also closes the file (with .pipe the read stream and its
      // descriptor would linger, which the slow-client mode would notice).
      // The client may have gone during the stat (wrk closing its
      // connections at the end of a run): Node 24's pipeline throws then.
      if (res.destroyed) return
      pipeline(fs.createReadStream(file), res, () => {})
    })
  })
}

function sendServer() {
  const send = require('send')
  return http.createServer((req, res) => {
    // send answers errors (404, 416, ...) itself when no 'error' listener is set.
    send(req, pathnameOf(req), { root }).pipe(res)
  })
}

function memory() {
  const mime = require('mime-types')
  const files = new Map()
  for (const name of fs.readdirSync(root)) {
    const file = path.join(root, name)
    const st = fs.statSync(file)
    if (!st.isFile()) continue
    const body = fs.readFileSync(file)
    const mtime = Math.round(st.mtimeMs)
    const headers = [
      'Accept-Ranges', 'bytes',
      'Cache-Control', 'public, max-age=0',
      'Last-Modified', new Date(mtime).toUTCString(),
      'ETag', `W/"${st.size.toString(16)}-${mtime.toString(16)}"`,
      'Content-Type', mime.contentType(path.extname(name)) || 'application/octet-stream',
      'Content-Length', String(body.length),
    ]
    const br = fs.existsSync(`${file}.br`) ? fs.readFileSync(`${file}.br`) : null
    const brHeaders = br && headers.slice(0, -1).concat(String(br.length), 'Content-Encoding', 'br', 'Vary', 'Accept-Encoding')
    files.set(`/${encodeURIComponent(name)}`, { body, headers, br, brHeaders })
  }
  return http.createServer((req, res) => {
    const f = files.get(pathnameOf(req))
    if (f === undefined) {
      res.statusCode = 404
      return res.end()
    }
    if (f.br !== null && /\bbr\b/.test(req.headers['accept-encoding'] ?? '')) {
      res.writeHead(200, f.brHeaders)
      return res.end(f.br)
    }
    res.writeHead(200, f.headers)
    res.end(f.body)
  })
}

function uringFs() {
  const { sendFile } = require('..')
  if (typeof sendFile !== 'function') {
    console.error('uring-fs: sendFile is not exported by the built package (run npm run build)')
    process.exit(3)
  }
  return http.createServer((req, res) => {
    // sendFile writes every status itself; a rejection is a bug or an I/O
    // failure, answered here so the bench sees it as a non-2xx / error.
    // .js files as a static server with precompressed variants serves them.
    const pathname = pathnameOf(req)
    const options = pathname.endsWith('.js') ? { root, precompressed: true } : { root }
    sendFile(req, res, pathname, options).catch((err) => {
      console.error('uring-fs sendFile:', err)
      if (!res.headersSent) {
        res.statusCode = 500
        res.end()
      } else {
        res.destroy()
      }
    })
  })
}

async function fastifyServer() {
  const app = require('fastify')({ logger: false })
  await app.register(require('@fastify/static'), { root: path.resolve(root), preCompressed: true })
  await app.listen({ host: '127.0.0.1', port: 0 })
  ready(app.server.address().port)
}

const nodeHttp = { 'fs-stream': fsStream, send: sendServer, memory, 'uring-fs': uringFs }

if (kind === 'fastify') {
  fastifyServer().catch((e) => {
    console.error(e)
    process.exit(1)
  })
} else if (nodeHttp[kind]) {
  const server = nodeHttp[kind]()
  server.listen(0, '127.0.0.1', () => ready(server.address().port))
} else {
  console.error(`unknown server kind ${kind}`)
  process.exit(2)
}
