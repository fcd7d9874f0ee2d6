#!/usr/bin/env node
// Static files over HTTP: uring-fs sendFile against the usual Node ways of
// serving a file and against nginx, in the same run.
//
//   node benches/http.js [--sizes 4k,64k,1m,16m] [--duration 5] [--rounds 3]
//                        [--only fs-stream,send,fastify,nginx,bun,memory,uring-fs]
//                        [--connections 32] [--warmup 1] [--nginx PATH]
//                        [--precompressed 64k|no]
//   node benches/http.js --slow-clients [N=1000] [--slow-secs 10] [--only ...]
//                        [--slow-read 4096] [--server-nofile N] [--sizes 4k,64m]
//                        [--cold]
//   node benches/http.js --connections-sweep [1,10,100,1000] [--sizes 64k]
//                        [--duration 5] [--rounds 3] [--only ...]
//   node benches/http.js --servers cli [--sizes 4k,64k,1m] [--duration 5]
//                        [--rounds 3] [--only nginx,sirv,http-server,serve,
//                        uring-fs-1,uring-fs-2] [--connections 32] [--warmup 1]
//
// --servers lib (the default) measures the servers below; --servers cli
// measures static-server command-line tools instead, each started as its own
// process tree exactly as a user would start it (see "Command-line tools").
//
// Servers, each its own child process listening on 127.0.0.1:
//   fs-stream  node:http + fs.createReadStream(file) piped to the response,
//              Content-Length set (alias: fs)
//   send       node:http + the `send` package
//   fastify    fastify + @fastify/static
//   nginx      nginx, one worker, sendfile on, tcp_nopush on (when installed;
//              benches/nginx.conf.template)
//   bun        Bun.serve with new Response(Bun.file(path)) (benches/http-bun.js;
//              the bun benches/lib/bun.js finds or fetches from npm)
//   memory     node:http answering from Buffers read at start, with sendFile's
//              headers and no I/O: Node's own ceiling for any file server
//   uring-fs   node:http + require('..').sendFile(req, res, pathname, { root })
//
// The precompressed case (--precompressed, default 64k; `no` to skip): a
// JavaScript file of that size and its .br, requested with
// Accept-Encoding: br, from the servers that can serve a variant (uring-fs
// with precompressed for .js, @fastify/static with preCompressed, memory).
//
// Node servers run with --no-memory-reducer (see NODE_FLAGS for why).
//
// Files of random bytes are written to a temp dir. Each server is checked
// once per size (status, Content-Length, length and SHA-256 of the body)
// before anything is measured, so a broken server cannot produce numbers.
// Load is `wrk -t1 -c32 -d<duration>s`; rounds interleave the servers (in a
// rotating order), the files are read before each round so they are in the
// page cache, and each server gets a short untimed wrk run per size right
// after its checks (JIT, allocator, connection set-up; and see
// verifyAndWarm for why right after). Server CPU is the
// utime+stime of the server's whole process tree (all threads, io_uring
// workers included; nginx master + worker) from /proc, read around each wrk
// run. Printed per size: median req/s, transfer rate and server CPU seconds
// per GiB of file served, and ratios of uring-fs against the others.
//
// Command-line tools (--servers cli), each run with this Node, listening on
// 127.0.0.1, logging off and no compression, with the same files, checks,
// client and rounds as above (no precompressed case):
//   nginx       as above (one worker, sendfile on)
//   sirv        sirv-cli <dir> --port P --host 127.0.0.1 --quiet (production
//               mode: no --dev; no --etag/--maxage; its .gz/.br lookup finds
//               no variants of the .bin files)
//   http-server http-server <dir> -p P -a 127.0.0.1 -s (no -g/-b: no gzip,
//               no brotli; its default Cache-Control: max-age=3600 does not
//               matter to wrk)
//   serve       serve <dir> -l tcp://127.0.0.1:P -L -u -n --no-port-switching
//               (no request logging, no compression, no clipboard;
//               NO_UPDATE_CHECK=1; its SHA-1 ETag is computed once per file)
//   uring-fs-1  node bin/uring-fs.js serve <dir> --port P --host 127.0.0.1
//               --workers 1 --log off
//   uring-fs-2  the same with --workers 2
// A tool is ready when GET of the first file answers 200 (polled, 20 s at
// most). Server CPU is the whole tree's (cluster primary and workers for
// uring-fs). A tool that writes to its stdout/stderr while measured (a
// request log) is named in a warning. Printed besides the tables: uring-fs-1
// against the best of sirv, http-server and serve at each size (bar: 1.5x at
// 4 KiB and 64 KiB), against nginx (bar at 1 MiB: 1.0x), uring-fs-2 against
// uring-fs-1 (bar at 1 MiB: no slower), and the server CPU per GiB at 1 MiB.
//
// --connections-sweep measures each selected server (default: send, nginx,
// bun, memory, uring-fs) under each number of keep-alive connections given
// (wrk -t1 -cN --latency), with the files, checks and rounds above: req/s
// and the 99th percentile of a request's latency as wrk reports it, per
// size. Records go to the 'sweeps' chart (params.sweep 'connections').
//
// --slow-clients opens N keep-alive connections that each request the
// largest file and then read it very slowly (--slow-read bytes per second,
// 4096 by default; 0: never), samples each selected server's RSS (default:
// uring-fs and send) for --slow-secs seconds and prints the peak: what a
// server holds per stalled download. Halfway through it counts the
// server's descriptors and times one well-behaved client's GET of the
// smallest file (with --sizes 4k,64m: 4 KiB while 64 MiB downloads stall).
// --server-nofile lowers each server's open-file limit (prlimit) once it
// listens: `--server-nofile 1024 --slow-clients 500 --slow-read 0` is
// issue 18's hostile-client bar. --cold drops the large file from the page
// cache after each server's check of it, so that the stalled downloads read
// from disk.

'use strict'
const { spawn, spawnSync, execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { once } = require('node:events')
const { setTimeout: sleep } = require('node:timers/promises')
const { record } = require('./lib/record')
const { findBun } = require('./lib/bun')

const args = process.argv.slice(2)
const has = (name) => args.includes(`--${name}`)
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && i + 1 < args.length && !args[i + 1].startsWith('--') ? args[i + 1] : def
}

const MODE = opt('servers', 'lib')
if (MODE !== 'lib' && MODE !== 'cli') {
  console.error(`--servers ${MODE}: expected lib (the default) or cli`)
  process.exit(2)
}
const LIB_SERVERS = ['fs-stream', 'send', 'fastify', 'nginx', 'bun', 'memory', 'uring-fs']
// --servers cli: the command-line tools, in this (table) order.
const CLI_SERVERS = ['nginx', 'sirv', 'http-server', 'serve', 'uring-fs-1', 'uring-fs-2']
// The Node static-server tools uring-fs-1 has to beat.
const CLI_TOOLS = ['sirv', 'http-server', 'serve']
const SERVERS = MODE === 'cli' ? CLI_SERVERS : LIB_SERVERS
const BASELINES = ['send', 'fs-stream', 'fastify', 'nginx', 'bun', 'memory']
const ALIASES =
  MODE === 'cli'
    ? { 'sirv-cli': ['sirv'], uring: ['uring-fs-1', 'uring-fs-2'], 'uring-fs': ['uring-fs-1', 'uring-fs-2'] }
    : { fs: 'fs-stream', 'fs.createReadStream': 'fs-stream', '@fastify/static': 'fastify', uring: 'uring-fs' }
// Servers that serve a precompressed variant: uring-fs (precompressed),
// @fastify/static (preCompressed) and the in-memory ceiling. send, a plain
// fs stream and Bun.file have no such option; nginx-light has no brotli.
const PRECOMPRESSED = ['fastify', 'memory', 'uring-fs']
const SERVER_SCRIPT = path.join(__dirname, 'http-servers.js')
const BUN_SCRIPT = path.join(__dirname, 'http-bun.js')
const NGINX_TEMPLATE = path.join(__dirname, 'nginx.conf.template')
const GiB = 2 ** 30
const MiB = 2 ** 20

// ---- /proc -----------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100
  } catch {
    return 100
  }
})()

// Fields of /proc/<pid>/stat after "pid (comm) ": [0] is field 3 (state).
// comm may contain spaces and parentheses, hence the last ')'.
function statFields(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return s.slice(s.lastIndexOf(')') + 2).split(' ')
}

// The process and all its descendants (nginx master -> worker). Scanning
// /proc for parent ids works on every kernel, unlike /proc/<pid>/task/*/children.
function processTree(pid) {
  const kids = new Map()
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    let ppid
    try {
      ppid = Number(statFields(d)[1])
    } catch {
      continue // exited while we looked
    }
    if (!kids.has(ppid)) kids.set(ppid, [])
    kids.get(ppid).push(Number(d))
  }
  const out = []
  const todo = [pid]
  while (todo.length) {
    const p = todo.pop()
    out.push(p)
    todo.push(...(kids.get(p) || []))
  }
  return out
}

// utime + stime of a process counts all of its threads, including io_uring's
// iou-wrk/iou-sqp kernel threads, which belong to the thread group.
function treeCpuSeconds(pid) {
  let ticks = 0
  for (const p of processTree(pid)) {
    try {
      const f = statFields(p)
      ticks += Number(f[11]) + Number(f[12])
    } catch {}
  }
  return ticks / CLK_TCK
}

function treeRssBytes(pid) {
  let kib = 0
  for (const p of processTree(pid)) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))
      if (m) kib += Number(m[1])
    } catch {}
  }
  return kib * 1024
}

// Raises RLIMIT_NOFILE of a process (root may raise the hard limit too).
function ensureNofile(pid, need) {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'))
  const soft = m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity
  const hard = m && m[2] !== 'unlimited' ? Number(m[2]) : Infinity
  if (soft >= need) return
  const r = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${need}:${Math.max(need, hard)}`], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`open-file limit ${soft} < ${need} and prlimit failed: ${r.stderr || r.error}`)
}

// ---- servers ---------------------------------------------------------------

const children = new Set()
process.on('exit', () => {
  for (const c of children) {
    // A command-line tool leads its own process group (uring-fs: the
    // cluster primary and its workers): kill all of it.
    if (c.group) {
      try {
        process.kill(-c.pid, 'SIGKILL')
      } catch {}
    } else c.kill('SIGKILL')
  }
})
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(130))
}

function findNginx() {
  const explicit = opt('nginx', null)
  if (explicit) return explicit
  const dirs = (process.env.PATH || '').split(':').concat(['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin'])
  for (const d of dirs) {
    const p = path.join(d, 'nginx')
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {}
  }
  return null
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

async function waitForPort(port, child, ms) {
  const until = Date.now() + ms
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('exited before listening')
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > until) throw new Error(`not listening on ${port} after ${ms} ms`)
    await sleep(50)
  }
}

async function stopChild(child) {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const t = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(t)
  }
  children.delete(child)
}

// Every Node server (each library's, and the command-line tools) runs with
// V8's memory reducer off. On Node 20 and 22, a process the reducer
// collects at some quiet moment can stay about 25% slower on Node's http
// path for the rest of its life (perf: object literals and map transitions
// in V8's runtime; the memory server at 58-60k req/s against 77-84k at
// 4 KiB, in the same run). Which server it hits depends on when each one
// idles, so it made whichever one it hit look slow (or its rival look
// fast): uring-fs in one run, the memory server in another. Off, every
// Node server is measured in the state it has under steady load. Node 24
// and 26 do not show it.
const NODE_FLAGS = ['--no-memory-reducer']

async function startNodeServer(kind, root) {
  const [cmd, argv] = kind === 'bun' ? [findBun().bin, [BUN_SCRIPT, root]] : [process.execPath, [...NODE_FLAGS, SERVER_SCRIPT, kind, root]]
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
  children.add(child)
  const port = await new Promise((resolve, reject) => {
    let buf = ''
    const onExit = (code, sig) => reject(new Error(`${kind} server exited (${sig || code}) before listening`))
    child.on('exit', onExit)
    child.stdout.on('data', (d) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      child.off('exit', onExit)
      child.stdout.resume() // keep draining; nothing else is expected
      resolve(JSON.parse(buf.slice(0, nl)).port)
    })
  })
  return { name: kind, pid: child.pid, port, stop: () => stopChild(child) }
}

// ---- command-line tools (--servers cli) -----------------------------------

const ROOT_DIR = path.join(__dirname, '..')

// The script behind node_modules/.bin/<name> (run with this Node, not with
// whatever `env node` finds), or null.
function toolScript(name) {
  try {
    return fs.realpathSync(path.join(ROOT_DIR, 'node_modules', '.bin', name))
  } catch {
    return null
  }
}

// [script, argv, extra env] of a command-line server, or null when missing.
function cliCommand(name, root, port) {
  const host = '127.0.0.1'
  const workers = /^uring-fs-(\d+)$/.exec(name)
  if (workers) {
    const script = path.join(ROOT_DIR, 'bin', 'uring-fs.js')
    return [script, ['serve', root, '--port', String(port), '--host', host, '--workers', workers[1], '--log', 'off'], {}]
  }
  const script = toolScript(name)
  if (!script) return null
  switch (name) {
    case 'sirv':
      // production mode (no --dev), no ETag or Cache-Control options
      return [script, [root, '--port', String(port), '--host', host, '--quiet'], {}]
    case 'http-server':
      // gzip and brotli are off unless -g / -b
      return [script, [root, '-p', String(port), '-a', host, '-s'], {}]
    case 'serve':
      return [
        script,
        [root, '-l', `tcp://${host}:${port}`, '--no-request-logging', '--no-compression', '--no-clipboard', '--no-port-switching'],
        { NO_UPDATE_CHECK: '1' },
      ]
  }
  throw new Error(`no command for ${name}`)
}

// GET urlPath until it answers 200: the tools say "listening" in many ways
// (or not at all with their logging off), an answer is the same for all.
async function waitFor200(port, urlPath, child, ms) {
  const until = Date.now() + ms
  let last = 'no answer'
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.signalCode || child.exitCode}) before answering`)
    try {
      const status = await new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode))
          res.on('error', reject)
        })
        req.setTimeout(2000, () => req.destroy(new Error('request timed out')))
        req.on('error', reject)
      })
      if (status === 200) return
      last = `status ${status}`
    } catch (e) {
      last = e.code || e.message
    }
    if (Date.now() > until) throw new Error(`GET http://127.0.0.1:${port}${urlPath} did not answer 200 within ${ms / 1000} s (last: ${last})`)
    await sleep(100)
  }
}

async function startCli(name, root, probePath) {
  const port = await freePort()
  const cmd = cliCommand(name, root, port)
  if (!cmd) throw new Error(`${name}: not installed (node_modules/.bin/${name})`)
  const [script, argv, env] = cmd
  const child = spawn(process.execPath, [...NODE_FLAGS, script, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    detached: true, // its own process group, so that the whole tree can be killed
  })
  child.group = true
  children.add(child)
  // Keep the output's tail for errors and count its bytes: a tool that
  // writes while it is measured is logging requests.
  let tail = ''
  const out = { bytes: 0 }
  for (const s of [child.stdout, child.stderr]) {
    s.on('data', (d) => {
      out.bytes += d.length
      tail = (tail + d).slice(-2000)
    })
  }
  const stop = async () => {
    await stopChild(child) // SIGTERM to the leader; uring-fs closes its workers itself
    try {
      process.kill(-child.pid, 'SIGKILL') // anything the leader left behind
    } catch {}
  }
  try {
    await waitFor200(port, probePath, child, 20000)
  } catch (e) {
    await stop()
    throw new Error(`${name} (${path.basename(script)} ${argv.join(' ')}): ${e.message}${tail.trim() ? `\n${tail.trim()}` : ''}`)
  }
  return { name, pid: child.pid, port, out, stop }
}

async function startNginx(nginx, root, tmp, connections) {
  const prefix = fs.mkdtempSync(path.join(tmp, 'nginx-'))
  const port = await freePort()
  const vars = {
    prefix,
    root,
    port,
    connections,
    // one descriptor per connection and one per open file, plus slack
    nofile: 2 * connections + 64,
  }
  const conf = fs
    .readFileSync(NGINX_TEMPLATE, 'utf8')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line)) // the template's comments mention {{name}} themselves
    .join('\n')
    .replace(/\{\{(\w+)\}\}/g, (m, k) => {
      if (!(k in vars)) throw new Error(`nginx.conf.template: unknown placeholder ${m}`)
      return String(vars[k])
    })
  const confPath = path.join(prefix, 'nginx.conf')
  fs.writeFileSync(confPath, conf)
  const errLog = path.join(prefix, 'error.log')
  const child = spawn(nginx, ['-p', prefix, '-e', errLog, '-c', confPath, '-g', 'daemon off;'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    // Its own process group: a worker outlives a master killed with
    // SIGKILL (as on this script's exit), so the whole group is killed.
    detached: true,
  })
  child.group = true
  children.add(child)
  try {
    await waitForPort(port, child, 10000)
  } catch (e) {
    let log = ''
    try {
      log = fs.readFileSync(errLog, 'utf8')
    } catch {}
    await stopChild(child)
    throw new Error(`nginx ${e.message}\n${log}`)
  }
  return { name: 'nginx', pid: child.pid, port, stop: () => stopChild(child) }
}

// ---- files, verification, load ---------------------------------------------

function parseSize(s) {
  const m = /^(\d+)([kmg]?)(i?b)?$/i.exec(s.trim())
  if (!m) throw new Error(`bad size ${s}`)
  return Number(m[1]) * { '': 1, k: 1024, m: MiB, g: GiB }[m[2].toLowerCase()]
}

function label(bytes) {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`
  return `${bytes} B`
}

// 4k.bin, 64k.bin, 1m.bin, 16m.bin
function fileName(bytes) {
  const [n, unit] = label(bytes).split(' ')
  return `${n}${{ B: 'b', KiB: 'k', MiB: 'm' }[unit]}.bin`
}

// The precompressed case: a JavaScript file of `bytes` and its .br beside
// it, requested with Accept-Encoding: br; the body measured is the .br.
function writeCompressible(tmp, bytes) {
  const lines = []
  for (let i = 0, n = 0; n < bytes; i++) {
    const line = `export function f${i}(a, b) { return a * ${i} + b.map((x) => x + ${(i * 7919) % 1000}).join(',') }\n`
    lines.push(line)
    n += line.length
  }
  const js = Buffer.from(lines.join('')).subarray(0, bytes)
  const p = path.join(tmp, 'files', 'app.js')
  fs.writeFileSync(p, js, { mode: 0o644 })
  const br = require('node:zlib').brotliCompressSync(js)
  fs.writeFileSync(`${p}.br`, br, { mode: 0o644 })
  return {
    name: 'app.js',
    size: br.length,
    path: `${p}.br`,
    sha: crypto.createHash('sha256').update(br).digest('hex'),
    encoding: 'br',
    headers: { 'Accept-Encoding': 'br' },
    title: `${label(bytes)} JS precompressed (.br of ${label(br.length)}, Accept-Encoding: br)`,
  }
}

function writeRandomFile(file, bytes) {
  const fd = fs.openSync(file, 'w', 0o644)
  const chunk = Buffer.allocUnsafe(Math.min(bytes, MiB))
  const hash = crypto.createHash('sha256')
  for (let off = 0; off < bytes; off += chunk.length) {
    const n = Math.min(chunk.length, bytes - off)
    crypto.randomFillSync(chunk, 0, n)
    fs.writeSync(fd, chunk, 0, n)
    hash.update(chunk.subarray(0, n))
  }
  fs.closeSync(fd)
  return hash.digest('hex')
}

function warmCache(file) {
  const fd = fs.openSync(file, 'r')
  const buf = Buffer.allocUnsafe(MiB)
  while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
  fs.closeSync(fd)
}

// One GET on a fresh connection; resolves to what a broken server would get wrong.
function fetchSummary(port, urlPath, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, headers }, (res) => {
      const hash = crypto.createHash('sha256')
      let length = 0
      res.on('data', (d) => {
        length += d.length
        hash.update(d)
      })
      res.on('error', reject)
      res.on('end', () => {
        // Size of the response head as sent, to split wrk's byte counts into
        // head and body.
        let head = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n\r\n`.length
        for (let i = 0; i < res.rawHeaders.length; i += 2) head += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`.length
        resolve({
          status: res.statusCode,
          contentLength: res.headers['content-length'],
          contentEncoding: res.headers['content-encoding'],
          length,
          sha: hash.digest('hex'),
          head,
        })
      })
    })
    req.setTimeout(30000, () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
}

// Resolves to { head } (the response head's size) or { why } it is wrong.
async function verify(server, f) {
  let r
  try {
    r = await fetchSummary(server.port, `/${f.name}`, f.headers)
  } catch (e) {
    return { why: `request failed: ${e.message}` }
  }
  if (r.status !== 200) return { why: `status ${r.status}` }
  if (f.encoding && r.contentEncoding !== f.encoding) return { why: `Content-Encoding ${r.contentEncoding}, expected ${f.encoding}` }
  if (r.contentLength !== String(f.size)) return { why: `Content-Length ${r.contentLength}, expected ${f.size}` }
  if (r.length !== f.size) return { why: `body ${r.length} bytes, expected ${f.size}` }
  if (r.sha !== f.sha) return { why: 'body differs from the file' }
  return { head: r.head }
}

// Verifies every server on every file, and puts each one under an untimed
// wrk load (`warmup` seconds per file) straight after its own checks, before
// the next server is checked: no server waits, cold, for the others (see
// NODE_FLAGS for what a cold process left idle became on Node 20 and 22:
// checked first and loaded only later, the servers last in the order were
// measured slowed). Returns head[server][file]: the response head's size,
// for the files that passed.
async function verifyAndWarm(servers, files, warmup, connections) {
  const head = {}
  for (const s of servers) {
    head[s.name] = {}
    for (const f of files) {
      if (f.encoding && !PRECOMPRESSED.includes(s.name)) continue
      const v = await verify(s, f)
      if (v.why) console.log(`  ${s.name} ${label(f.size)}: FAILED verification (${v.why}); not measured`)
      else head[s.name][f.name] = v.head
    }
    if (warmup > 0) for (const f of files) if (head[s.name][f.name] !== undefined) wrk(s.port, `/${f.name}`, warmup, connections, f.headers)
  }
  return head
}

function wrk(port, urlPath, secs, connections, headers = {}) {
  const url = `http://127.0.0.1:${port}${urlPath}`
  const h = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`])
  // --timeout: wrk counts responses slower than 2 s (16 MiB to 32 clients
  // of a slow server) as errors. --latency: the percentiles.
  const r = spawnSync('wrk', ['-t1', `-c${connections}`, `-d${secs}s`, '--timeout', '60s', '--latency', ...h, url], { encoding: 'utf8' })
  if (r.error) throw new Error(`wrk: ${r.error.message}`)
  if (r.status !== 0) throw new Error(`wrk exited ${r.status}: ${r.stderr}`)
  const out = r.stdout
  const num = (re) => {
    const m = re.exec(out)
    if (!m) throw new Error(`cannot parse wrk output:\n${out}`)
    return m
  }
  const unit = { B: 1, KB: 1024, MB: MiB, GB: GiB, TB: 1024 * GiB }
  const t = num(/Transfer\/sec:\s+([\d.]+)([KMGT]?B)/)
  const read = num(/ requests in [\d.]+\w+, ([\d.]+)([KMGT]?B) read/)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out)
  return {
    p99Ms: p99 ? Number(p99[1]) * { us: 1e-3, ms: 1, s: 1e3 }[p99[2]] : null,
    rps: Number(num(/Requests\/sec:\s+([\d.]+)/)[1]),
    bytesRead: Number(read[1]) * unit[read[2]],
    transferPerSec: Number(t[1]) * unit[t[2]],
    errors: (non2xx ? Number(non2xx[1]) : 0) + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  }
}

// CPU time, in seconds, of everything on the machine, of this process and
// its reaped children (wrk), and stolen by the hypervisor. Interrupt time
// counts as busy: without CONFIG_IRQ_TIME_ACCOUNTING the softirq time of
// loopback traffic is also in the stime of whichever task it interrupted,
// which is mostly the server or wrk.
function machineCpu() {
  // user nice system idle iowait irq softirq steal
  const c = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number)
  const f = statFields(process.pid)
  return {
    busy: (c[0] + c[1] + c[2] + c[5] + c[6]) / CLK_TCK,
    steal: c[7] / CLK_TCK,
    ours: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK,
  }
}

// wrk counts only completed responses: with 16 MiB files, 32 connections and
// a few seconds, a partly received response per connection is a large share
// of the run. So the request rate and the GiB served come from the bytes wrk
// read, split into body and head with the head size seen in verification.
function measure(server, f, head, secs, connections) {
  const m0 = machineCpu()
  const cpu0 = treeCpuSeconds(server.pid)
  const t0 = process.hrtime.bigint()
  const w = wrk(server.port, `/${f.name}`, secs, connections, f.headers)
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = treeCpuSeconds(server.pid) - cpu0
  const m1 = machineCpu()
  const bodyGiB = ((w.bytesRead * f.size) / (f.size + head)) / GiB
  return {
    rps: w.transferPerSec / (f.size + head),
    wrkRps: w.rps,
    p99Ms: w.p99Ms,
    bodyMiBs: (w.transferPerSec * f.size) / (f.size + head) / MiB,
    cpuPerGiB: cpu / bodyGiB,
    errors: w.errors,
    // cores used by processes that are neither the server nor wrk nor us
    otherCores: Math.max(0, m1.busy - m0.busy - (m1.ours - m0.ours) - cpu) / wall,
    stolenCores: (m1.steal - m0.steal) / wall,
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

// ---- modes -----------------------------------------------------------------

function selectedServers(def) {
  const only = opt('only', null)
  const names = only ? only.split(',').flatMap((s) => ALIASES[s.trim()] || s.trim()) : def
  for (const n of names) if (!SERVERS.includes(n)) throw new Error(`unknown server ${n} (known${MODE === 'cli' ? ' with --servers cli' : ''}: ${SERVERS.join(', ')})`)
  return SERVERS.filter((n) => names.includes(n)) // fixed order, uring-fs last
}

// Drops servers that cannot run here, saying why.
function available(names) {
  const nginx = findNginx()
  return names.filter((n) => {
    if (n === 'nginx' && !nginx) {
      console.log('  (nginx not found on PATH or in /usr/sbin: skipped)')
      return false
    }
    if (n === 'bun') {
      const bun = findBun()
      if (!bun.bin) {
        console.log(`  (bun: ${bun.why}; skipped)`)
        return false
      }
      console.log(`  (bun ${bun.version}: ${bun.bin})`)
    }
    if (CLI_TOOLS.includes(n) && !toolScript(n)) {
      console.log(`  (${n}: no node_modules/.bin/${n}, npm install; skipped)`)
      return false
    }
    if (n === 'uring-fs' || n.startsWith('uring-fs-')) {
      let u
      try {
        u = require('..')
      } catch (e) {
        console.log(`  (uring-fs does not load: ${e.message}; skipped)`)
        return false
      }
      if (typeof u.sendFile !== 'function') {
        console.log('  (uring-fs: sendFile not in the built package, run npm run build; skipped)')
        return false
      }
    }
    return true
  })
}

// probePath: a file that a command-line tool answers with 200 once it is ready.
function start(name, root, tmp, connections, probePath) {
  if (name === 'nginx') return startNginx(findNginx(), root, tmp, connections)
  if (MODE === 'cli') return startCli(name, root, probePath)
  return startNodeServer(name, root)
}

function machineNote(clients) {
  const cpus = os.cpus()
  let backend = ''
  try {
    backend = `, uring-fs backend ${require('..').backend()}`
  } catch {}
  return (
    `node ${process.version}, ${cpus.length} cores (${cpus[0] && cpus[0].model.trim()}), kernel ${os.release()}${backend}\n` +
    `note: ${clients} and the servers share these cores (one machine, loopback); ` +
    `server CPU and RSS are the server's own process tree only\n` +
    `load average at start ${os.loadavg()[0].toFixed(2)}`
  )
}

async function throughput(tmp, files) {
  const duration = Number(opt('duration', 5))
  const rounds = Number(opt('rounds', 3))
  const warmup = Number(opt('warmup', 1))
  const connections = Number(opt('connections', 32))
  const selected = selectedServers(SERVERS)
  console.log(`http: static files over keep-alive, wrk -t1 -c${connections} -d${duration}s, median of ${rounds} round${rounds === 1 ? '' : 's'}`)
  console.log(machineNote('wrk'))
  const names = available(selected)
  const servers = []
  for (const n of names) {
    if (MODE !== 'cli') {
      servers.push(await start(n, tmp + '/files', tmp, Math.max(1024, connections * 4)))
      continue
    }
    try {
      servers.push(await start(n, tmp + '/files', tmp, Math.max(1024, connections * 4), `/${files[0].name}`))
    } catch (e) {
      console.log(`  ${n}: FAILED to start; not measured\n    ${e.message.replace(/\n/g, '\n    ')}`)
    }
  }
  const width = Math.max(10, ...servers.map((s) => s.name.length))

  const head = await verifyAndWarm(servers, files, warmup, connections)

  // what each command-line tool has written so far (its startup banner)
  const outBefore = new Map(servers.filter((s) => s.out).map((s) => [s, s.out.bytes]))
  const res = {} // res[file][server] = [measurement per round]
  for (const f of files) res[f.name] = Object.fromEntries(servers.map((s) => [s.name, []]))
  for (let r = 0; r < rounds; r++) {
    for (const f of files) warmCache(f.path)
    for (const f of files) {
      // rotate the order each round so no server always runs right after another one's load
      const order = servers.slice(r % servers.length).concat(servers.slice(0, r % servers.length))
      for (const s of order) {
        if (head[s.name][f.name] === undefined) continue
        res[f.name][s.name].push(measure(s, f, head[s.name][f.name], duration, connections))
      }
    }
  }
  const chatty = [...outBefore].filter(([s, n]) => s.out.bytes > n).map(([s, n]) => `${s.name} (${s.out.bytes - n} bytes)`)
  for (const s of servers) await s.stop()

  let otherCores = 0
  const meds = {} // meds[file][server] = { rps, cpu }
  let stolenCores = 0
  for (const f of files) {
    console.log(`\n${f.title ?? label(f.size)}`)
    console.log(
      `  ${'server'.padEnd(width)} ${'req/s'.padStart(9)} ${'(wrk)'.padStart(9)} ${'body MiB/s'.padStart(11)} ${'CPU s/GiB'.padStart(10)}`,
    )
    const med = (meds[f.name] = {})
    for (const s of servers) {
      const ms = res[f.name][s.name]
      if (!ms.length) {
        if (f.encoding && !PRECOMPRESSED.includes(s.name)) continue
        console.log(`  ${s.name.padEnd(width)} ${'-'.padStart(9)}   (failed verification)`)
        continue
      }
      const m = (key) => median(ms.map((x) => x[key]))
      med[s.name] = { rps: m('rps'), cpu: m('cpuPerGiB') }
      record({
        bench: 'http',
        case: `${MODE === 'cli' ? 'serve (command-line tools)' : 'GET'} ${f.title ?? label(f.size)}, ${connections} connections`,
        variant: s.name,
        role: s.name === 'memory' ? 'limit' : s.name.startsWith('uring-fs') ? 'subject' : 'baseline',
        unit: 'req/s',
        samples: ms.map((x) => x.rps),
        params: { size: f.size, connections, servers: MODE, ...(f.encoding ? { encoding: f.encoding } : {}) },
        extra: { cpuPerGiB: m('cpuPerGiB') },
      })
      otherCores = Math.max(otherCores, ...ms.map((x) => x.otherCores))
      stolenCores = Math.max(stolenCores, ...ms.map((x) => x.stolenCores))
      const errors = ms.reduce((a, x) => a + x.errors, 0)
      console.log(
        `  ${s.name.padEnd(width)} ${m('rps').toFixed(0).padStart(9)} ${m('wrkRps').toFixed(0).padStart(9)} ` +
          `${m('bodyMiBs').toFixed(0).padStart(11)} ${m('cpuPerGiB').toFixed(3).padStart(10)}` +
          `${errors ? `   (${errors} wrk errors / non-2xx)` : ''}`,
      )
    }
    if (MODE === 'cli') {
      cliRatios(med, width)
      continue
    }
    const u = med['uring-fs']
    if (!u) continue
    for (const base of BASELINES) {
      const b = med[base]
      if (!b) continue
      console.log(`  uring-fs / ${base.padEnd(9)}  req/s ${(u.rps / b.rps).toFixed(2)}x   CPU per GiB ${(u.cpu / b.cpu).toFixed(2)}x`)
    }
  }
  console.log(
    `\nreq/s: from the bytes wrk read, a partly received response counted by its fraction; (wrk): completed responses only.` +
      `\nCPU s/GiB: server process tree utime+stime per GiB of file bodies served.`,
  )
  if (MODE === 'cli') cliBars(files, meds)
  if (chatty.length) console.log(`warning: wrote to stdout/stderr while measured (request logging?): ${chatty.join(', ')}`)
  if (otherCores > 0.15 || stolenCores > 0.15) {
    console.log(
      `warning: during a measured run other processes used up to ${otherCores.toFixed(2)} cores ` +
        `and the hypervisor stole up to ${stolenCores.toFixed(2)}; the figures are disturbed`,
    )
  }
}

// Each server under 1 to 1,000 keep-alive connections: req/s and p99.
async function connectionsSweep(tmp, files) {
  const duration = Number(opt('duration', 5))
  const rounds = Number(opt('rounds', 3))
  const warmup = Number(opt('warmup', 1))
  const counts = opt('connections-sweep', '1,10,100,1000').split(',').map(Number)
  if (!counts.every((c) => Number.isInteger(c) && c > 0)) throw new Error(`--connections-sweep: positive integers, not ${opt('connections-sweep')}`)
  const selected = opt('only', null) ? selectedServers(SERVERS) : selectedServers(['send', 'nginx', 'bun', 'memory', 'uring-fs'])
  console.log(`http connections sweep: wrk -t1 -cN -d${duration}s --latency, N = ${counts.join(', ')}, median of ${rounds} round${rounds === 1 ? '' : 's'}`)
  console.log(machineNote('wrk'))
  const names = available(selected)
  const servers = []
  for (const n of names) servers.push(await start(n, tmp + '/files', tmp, Math.max(1024, Math.max(...counts) * 4)))
  const head = await verifyAndWarm(servers, files, warmup, Math.min(...counts))
  const res = {} // res[file][c][server] = [measurement per round]
  for (const f of files) res[f.name] = Object.fromEntries(counts.map((c) => [c, Object.fromEntries(servers.map((s) => [s.name, []]))]))
  for (let r = 0; r < rounds; r++) {
    for (const f of files) {
      warmCache(f.path)
      for (const c of counts) {
        const order = servers.slice(r % servers.length).concat(servers.slice(0, r % servers.length))
        for (const s of order) {
          if (head[s.name][f.name] === undefined) continue
          if (r === 0 && warmup > 0) wrk(s.port, `/${f.name}`, warmup, c, f.headers)
          res[f.name][c][s.name].push(measure(s, f, head[s.name][f.name], duration, c))
        }
      }
    }
  }
  for (const s of servers) await s.stop()
  for (const f of files) {
    console.log(`\n${label(f.size)}: req/s (p99 latency ms) by connections`)
    console.log(`  ${'server'.padEnd(10)}${counts.map((c) => String(c).padStart(18)).join('')}`)
    for (const s of servers) {
      const cells = []
      for (const c of counts) {
        const ms = res[f.name][c][s.name]
        if (!ms.length) {
          cells.push('-'.padStart(18))
          continue
        }
        const m = (key) => median(ms.map((x) => x[key]))
        cells.push(`${m('rps').toFixed(0)} (${m('p99Ms') === null ? '?' : m('p99Ms').toFixed(2)})`.padStart(18))
        record({
          bench: 'sweeps',
          case: `GET ${label(f.size)}, ${c} connections`,
          variant: s.name,
          role: s.name === 'memory' ? 'limit' : s.name === 'uring-fs' ? 'subject' : 'baseline',
          unit: 'req/s',
          samples: ms.map((x) => x.rps),
          params: { sweep: 'connections', api: `HTTP GET of ${label(f.size)}`, x: c, size: f.size, connections: c },
          extra: { p99Ms: m('p99Ms'), cpuPerGiB: m('cpuPerGiB') },
        })
      }
      console.log(`  ${s.name.padEnd(10)}${cells.join('')}`)
    }
    for (const c of counts) {
      const u = res[f.name][c]['uring-fs']
      if (!u?.length) continue
      const ur = median(u.map((x) => x.rps))
      const parts = servers.filter((s) => s.name !== 'uring-fs' && res[f.name][c][s.name].length).map((s) => `${(ur / median(res[f.name][c][s.name].map((x) => x.rps))).toFixed(2)}x ${s.name}`)
      console.log(`  ${String(c).padStart(5)} connections: uring-fs ${parts.join(', ')}`)
    }
  }
}

// The best (highest median req/s) of the Node static-server tools measured.
function bestTool(med) {
  let best = null
  for (const t of CLI_TOOLS) if (med[t] && (!best || med[t].rps > med[best].rps)) best = t
  return best
}

// Per size, under its table: uring-fs-1 against the best tool, nginx and
// uring-fs-2.
function cliRatios(med, width) {
  const u = med['uring-fs-1']
  const ratio = (a, b, what) =>
    `  ${what.padEnd(width + 24)} req/s ${(a.rps / b.rps).toFixed(2)}x   CPU per GiB ${(a.cpu / b.cpu).toFixed(2)}x`
  const best = bestTool(med)
  if (u && best) console.log(ratio(u, med[best], `uring-fs-1 / best tool (${best})`))
  if (u) for (const t of CLI_TOOLS) if (med[t] && t !== best) console.log(ratio(u, med[t], `uring-fs-1 / ${t}`))
  if (u && med.nginx) console.log(ratio(u, med.nginx, 'uring-fs-1 / nginx'))
  if (u && med['uring-fs-2']) console.log(ratio(med['uring-fs-2'], u, 'uring-fs-2 / uring-fs-1'))
}

// The bars, together at the end: uring-fs-1 >= 1.5x the best tool at 4 KiB
// and 64 KiB, >= nginx at 1 MiB, and uring-fs-2 no slower than uring-fs-1 at
// 1 MiB; then the server CPU per GiB at 1 MiB.
function cliBars(files, meds) {
  const lines = []
  const bar = (what, r, min) => {
    const shown = r === null ? 'n/a (not measured)' : `${r.toFixed(2)}x`
    const verdict = r === null ? '' : r >= min ? '  met' : '  MISSED'
    lines.push(`  ${what.padEnd(68)} ${shown.padStart(6)}   bar >= ${min.toFixed(1)}x${verdict}`)
  }
  const rpsRatio = (med, a, b) => (med && med[a] && med[b] ? med[a].rps / med[b].rps : null)
  for (const f of files) {
    const med = meds[f.name]
    const best = med && bestTool(med)
    const what = `${label(f.size)}: uring-fs-1 / best of ${CLI_TOOLS.join(', ')}${best ? ` (${best})` : ''}`
    if (f.size <= 64 * 1024) bar(what, best ? rpsRatio(med, 'uring-fs-1', best) : null, 1.5)
    else if (best && med['uring-fs-1']) lines.push(`  ${what.padEnd(68)} ${`${rpsRatio(med, 'uring-fs-1', best).toFixed(2)}x`.padStart(6)}   (no bar)`)
  }
  const mib = files.find((f) => f.size === MiB)
  if (mib) {
    bar('1 MiB: uring-fs-1 / nginx', rpsRatio(meds[mib.name], 'uring-fs-1', 'nginx'), 1.0)
    bar('1 MiB: uring-fs-2 / uring-fs-1', rpsRatio(meds[mib.name], 'uring-fs-2', 'uring-fs-1'), 1.0)
    const med = meds[mib.name] || {}
    const cpu = CLI_SERVERS.filter((n) => med[n]).map((n) => `${n} ${med[n].cpu.toFixed(3)}`)
    lines.push(`  1 MiB server CPU s/GiB (whole process tree): ${cpu.join(', ')}`)
  }
  console.log(`\nbars (ratios of median req/s, same run):\n${lines.join('\n')}`)
}

// N connections that each ask for `f` and then take a few KiB now and then:
// the server has to hold every response half-sent. Returns the server tree's
// RSS before and at its peak.
async function slowClientsAgainst(server, f, n, secs, readPerTick, probe) {
  const rssIdle = treeRssBytes(server.pid)
  let peak = rssIdle
  const sample = setInterval(() => {
    peak = Math.max(peak, treeRssBytes(server.pid))
  }, 100)
  const sockets = []
  const state = new Map()
  const request = `GET /${f.name} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`
  // Batches, so the listen backlog never overflows into SYN retries.
  for (let i = 0; i < n; i += 100) {
    const batch = []
    for (let j = i; j < Math.min(n, i + 100); j++) {
      const s = net.connect(server.port, '127.0.0.1')
      s.on('error', () => {})
      // Never 'data' nor resume(): the socket fills its own buffer up to its
      // highWaterMark and stops reading, so the kernel buffers fill and the
      // server sees a client that has stalled.
      s.pause()
      state.set(s, { head: null, bytes: 0 })
      sockets.push(s)
      batch.push(
        once(s, 'connect').then(() => {
          s.write(request)
          s.read(0) // a paused socket does not start reading by itself
        }),
      )
    }
    await Promise.allSettled(batch)
  }
  // Halfway: the server's descriptors, and a well-behaved client's wait.
  const midway = sleep((secs * 1000) / 2).then(async () => ({
    fds: fdCount(server.pid),
    probe: probe ? await timedGet(server.port, probe) : null,
  }))
  const tick = setInterval(() => {
    for (const s of sockets) {
      // At most readPerTick of what is buffered; with nothing buffered,
      // read(1) returns null and asks the socket for more. Clients that
      // never read take only the status line, once.
      const st0 = state.get(s)
      if (readPerTick === 0 && st0.head !== null) continue
      const want = readPerTick === 0 ? 12 : readPerTick
      const c = s.read(Math.min(want, Math.max(s.readableLength, 1)))
      if (!c) continue
      const st = state.get(s)
      if (st.head === null) st.head = c.subarray(0, 12).toString('latin1')
      st.bytes += c.length
    }
  }, 1000)
  await sleep(secs * 1000)
  const mid = await midway
  clearInterval(tick)
  clearInterval(sample)
  let started = 0
  let bytes = 0
  for (const [s, st] of state) {
    if (st.head === 'HTTP/1.1 200') started++
    bytes += st.bytes
    s.destroy()
  }
  return { rssIdle, peak, started, bytesPerConn: bytes / n, ...mid }
}

/** How many descriptors process `pid` has open. */
function fdCount(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return NaN
  }
}

/** One GET of `f` on a fresh connection: its status and milliseconds (5 s at most). */
function timedGet(port, f) {
  const t0 = process.hrtime.bigint()
  const ms = () => Number(process.hrtime.bigint() - t0) / 1e6
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/${f.name}`, agent: false, timeout: 5000 }, (res) => {
      let bytes = 0
      res.on('data', (c) => (bytes += c.length))
      res.on('end', () => resolve({ status: res.statusCode === 200 && bytes === f.size ? 'ok' : `${res.statusCode}, ${bytes} bytes`, ms: ms() }))
      res.on('error', (e) => resolve({ status: e.code || e.message, ms: ms() }))
    })
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')))
    req.on('error', (e) => resolve({ status: e.code || e.message, ms: ms() }))
  })
}

async function slowClients(tmp, files) {
  const n = Number(opt('slow-clients', 1000))
  const secs = Number(opt('slow-secs', 10))
  const readPerTick = Number(opt('slow-read', 4096))
  const serverNofile = has('server-nofile') ? Number(opt('server-nofile', 1024)) : null
  const cold = has('cold')
  const f = files.reduce((a, b) => (b.size > a.size ? b : a))
  const small = files.reduce((a, b) => (b.size < a.size ? b : a))
  const probe = small === f ? null : small
  const selected = selectedServers(['send', 'uring-fs'])
  console.log(
    `http slow clients: ${n} connections each GET ${label(f.size)} and read ${readPerTick ? `${readPerTick / 1024} KiB/s` : 'nothing'}, ` +
      (serverNofile ? `server open-file limit ${serverNofile}, ` : '') +
      (cold ? 'the file out of the page cache first, ' : '') +
      `server RSS (whole process tree) sampled every 100 ms for ${secs} s`,
  )
  console.log(machineNote('the slow clients (this process)'))
  // The sockets of this process, and (inherited) each Node server's.
  ensureNofile(process.pid, 2 * n + 256)
  const names = available(selected)
  const results = {}
  for (const name of names) {
    if (!cold) warmCache(f.path)
    const server = await start(name, tmp + '/files', tmp, n + 128)
    try {
      if (serverNofile) {
        for (const pid of processTree(server.pid)) {
          const r = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${serverNofile}:${serverNofile}`], { encoding: 'utf8' })
          if (r.status !== 0) throw new Error(`prlimit failed: ${r.stderr || r.error}`)
        }
      }
      const { why } = await verify(server, f)
      if (why) {
        console.log(`  ${name}: FAILED verification (${why}); not measured`)
        continue
      }
      if (probe) {
        const { why: probeWhy } = await verify(server, probe)
        if (probeWhy) throw new Error(`${name}: the probe file fails verification (${probeWhy})`)
      }
      // --cold: the large file leaves the page cache (GNU dd's nocache
      // drops a file's pages), so that every stalled download reads disk.
      if (cold) execFileSync('dd', [`if=${f.path}`, 'iflag=nocache', 'count=0', 'status=none'])
      results[name] = await slowClientsAgainst(server, f, n, secs, readPerTick, probe)
    } finally {
      await server.stop()
    }
  }
  console.log(
    `  ${'server'.padEnd(10)} ${'RSS idle'.padStart(10)} ${'RSS peak'.padStart(10)} ${'per conn'.padStart(10)} ${'fds'.padStart(6)}  responses started` +
      (probe ? `; a GET of ${label(probe.size)} meanwhile` : ''),
  )
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `  ${name.padEnd(10)} ${(r.rssIdle / MiB).toFixed(1).padStart(6)} MiB ${(r.peak / MiB).toFixed(1).padStart(6)} MiB ` +
        `${((r.peak - r.rssIdle) / n / 1024).toFixed(1).padStart(6)} KiB ${String(r.fds).padStart(6)}  ${r.started}/${n} (read ${(r.bytesPerConn / 1024).toFixed(0)} KiB each)` +
        (r.probe ? `; ${r.probe.status} in ${r.probe.ms.toFixed(0)} ms` : ''),
    )
  }
  const u = results['uring-fs']
  for (const base of ['send', 'fs-stream', 'fastify', 'nginx']) {
    if (u && results[base]) console.log(`  peak RSS uring-fs / ${base}: ${(u.peak / results[base].peak).toFixed(2)}x`)
  }
}

async function main() {
  // wrk is the client of every mode but --slow-clients.
  if (!has('slow-clients') && spawnSync('wrk', ['--version']).error) {
    console.log('http: wrk not found (Debian: apt-get install wrk); skipped')
    return
  }
  if (has('slow-clients') && MODE === 'cli') throw new Error('--slow-clients measures the lib servers only (not with --servers cli)')
  // the slow-client test only uses the largest file
  const sweep = has('connections-sweep')
  if (sweep && (MODE === 'cli' || has('slow-clients'))) throw new Error('--connections-sweep measures the lib servers, alone')
  const sizes = opt('sizes', has('slow-clients') ? '16m' : sweep ? '64k' : MODE === 'cli' ? '4k,64k,1m' : '4k,64k,1m,16m').split(',').map(parseSize)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-http-'))
  try {
    // nginx's worker drops to `nobody` when started as root: it must be able
    // to walk into the directory and read the files.
    fs.chmodSync(tmp, 0o755)
    fs.mkdirSync(path.join(tmp, 'files'), { mode: 0o755 })
    const files = sizes.map((size) => {
      const name = fileName(size)
      const p = path.join(tmp, 'files', name)
      return { name, size, path: p, sha: writeRandomFile(p, size) }
    })
    // (not with --servers cli: the tools' own compression is off)
    if (MODE !== 'cli' && !has('slow-clients') && !sweep && opt('precompressed', '64k') !== 'no') files.push(writeCompressible(tmp, parseSize(opt('precompressed', '64k'))))
    if (has('slow-clients')) await slowClients(tmp, files)
    else if (sweep) await connectionsSweep(tmp, files)
    else await throughput(tmp, files)
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
