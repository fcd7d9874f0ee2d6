// sendFile's open-file cache: never a stale byte, never a byte from outside
// the root, bounded, and off with `cache: false`.
//
// The load tests change files from another process (as a deploy or an
// editor would) while this thread serves and requests them, and record when
// each version of each file existed (CLOCK_MONOTONIC, which both processes
// share): every complete response must be one whole version that existed
// at some time between the request's start and its end, with the
// Content-Length and ETag of that version.

import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import { createRequire } from 'node:module'
import * as net from 'node:net'
import * as path from 'node:path'
import { type SendFileOptions, clearSendFileCache, sendFile, sendFileCacheStats } from 'uring-fs'
import { ON_ENGINE, REPO, makeTmpDir, removeTmpDir, sleep } from './helpers'
import { type RequestSpec, listen, request } from './http-helpers'

interface Server {
  port: number
  agent: http.Agent
  close(): Promise<void>
}

async function serve(t: ExecutionContext, root: string, opts: SendFileOptions = {}): Promise<Server> {
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://x').pathname
    sendFile(req, res, pathname, { root, ...opts }).catch(() => res.destroy())
  })
  const l = await listen(server)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 })
  const s = { port: l.port, agent, close: async () => { agent.destroy(); await l.close() } }
  t.teardown(() => s.close())
  return s
}

interface Got {
  status: number
  body: Buffer
  length: string | undefined
  etag: string | undefined
  start: bigint
  end: bigint
  /** The connection failed or the body was cut. */
  cut: boolean
}

function get(s: Server, p: string): Promise<Got> {
  const start = process.hrtime.bigint()
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: s.port, path: p, agent: s.agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      const done = (cut: boolean) => {
        const body = Buffer.concat(chunks)
        const length = res.headers['content-length']
        resolve({
          status: res.statusCode ?? 0,
          body,
          length,
          etag: res.headers.etag,
          start,
          end: process.hrtime.bigint(),
          cut: cut || (length !== undefined && Number(length) !== body.length),
        })
      }
      res.on('end', () => done(!res.complete))
      res.on('error', () => done(true))
      res.on('aborted', () => done(true))
    })
    req.on('error', () => resolve({ status: 0, body: Buffer.alloc(0), length: undefined, etag: undefined, start, end: process.hrtime.bigint(), cut: true }))
  })
}

/** A version of a file, as the changing process recorded it. */
interface Version {
  file: string
  /** The content's first bytes name the version; null: the file did not exist. */
  tag: string | null
  size: number
  etag: string | null
  /** Before the change that made it began, and after it returned. */
  t0: bigint
  t1: bigint
}

// The process that changes files: each change is logged as a JSON line
// { file, tag, size, etag, t0, t1 } once done. Its content starts with
// "<tag>|" and is filled to `size` with the tag's bytes.
const CHANGER = String.raw`
const fs = require('node:fs'), path = require('node:path')
const [root, msArg, filesArg] = process.argv.slice(1)
const files = JSON.parse(filesArg)
const until = Date.now() + Number(msArg)
const now = () => process.hrtime.bigint().toString()
const etagOf = (p) => { const st = fs.statSync(p); const m = Math.round(st.mtimeMs); return 'W/"' + st.size.toString(16) + '-' + m.toString(16) + '"' }
const content = (tag, size) => { const b = Buffer.alloc(size, tag + ';'); b.write(tag + '|'); return b }
const log = (o) => process.stdout.write(JSON.stringify(o) + '\n')
let n = 0
function version(f, p, tag, t0) { const st = fs.statSync(p); log({ file: f.name, tag, size: st.size, etag: etagOf(p), t0, t1: now() }) }
function step() {
  if (Date.now() > until) return process.exit(0)
  for (const f of files) {
    const p = path.join(root, f.name)
    const op = (n + f.shift) % 4
    const tag = f.name + '#' + (++n)
    const size = f.min + ((n * 7919) % (f.max - f.min))
    const t0 = now()
    if (op === 0) {
      // replaced: a new file renamed over it
      const tmp = p + '.tmp'
      fs.writeFileSync(tmp, content(tag, size))
      fs.renameSync(tmp, p)
      version(f, p, tag, t0)
    } else if (op === 1) {
      // truncated in place: the same inode, shorter
      const cur = fs.readFileSync(p)
      const keep = Math.max(8, cur.length >> 1)
      fs.truncateSync(p, keep)
      log({ file: f.name, tag: 'prefix', size: keep, etag: etagOf(p), t0, t1: now(), prefixOf: true })
    } else if (op === 2) {
      // renamed away (gone for a moment), then another file renamed in
      fs.renameSync(p, p + '.away')
      log({ file: f.name, tag: null, size: 0, etag: null, t0, t1: now() })
      const t2 = now()
      const tmp = p + '.tmp'
      fs.writeFileSync(tmp, content(tag, size))
      fs.renameSync(tmp, p)
      fs.unlinkSync(p + '.away')
      version(f, p, tag, t2)
    } else {
      // chmod'ed: the same bytes, its metadata changed
      const st = fs.statSync(p)
      fs.chmodSync(p, (st.mode & 0o777) === 0o644 ? 0o640 : 0o644)
    }
  }
  setTimeout(step, 3)
}
step()
`

interface Logged extends Version {
  /** The content is the previous version's first `size` bytes. */
  prefixOf?: boolean
}

function runChanger(root: string, ms: number, files: Array<{ name: string; min: number; max: number; shift: number }>): Promise<Logged[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CHANGER, root, String(ms), JSON.stringify(files)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`changer exited ${code}`))
      resolve(out.trim().split('\n').filter(Boolean).map((l) => {
        const o = JSON.parse(l)
        return { ...o, t0: BigInt(o.t0), t1: BigInt(o.t1) }
      }))
    })
  })
}

function contentOf(tag: string, size: number): Buffer {
  const b = Buffer.alloc(size, tag + ';')
  b.write(tag + '|')
  return b
}

test.serial('no stale byte: files replaced, truncated, renamed and chmod\'ed under load', async (t) => {
  const root = makeTmpDir('ofc-stale')
  t.teardown(() => removeTmpDir(root))
  // Small files (kept in memory) and large ones (kept as a descriptor).
  const files = [
    { name: 'a.txt', min: 100, max: 4000, shift: 0 },
    { name: 'b.css', min: 2000, max: 60000, shift: 1 },
    { name: 'c.js', min: 10, max: 3000, shift: 2 },
    { name: 'd.bin', min: 70000, max: 300000, shift: 3 },
  ]
  // Versions as bodies: the initial ones, then the changer's.
  const versions = new Map<string, Array<{ v: Logged; body: Buffer | null }>>()
  for (const f of files) {
    const tag = `${f.name}#0`
    const body = contentOf(tag, f.min)
    fs.writeFileSync(path.join(root, f.name), body, { mode: 0o644 })
    const st = fs.statSync(path.join(root, f.name))
    const etag = `W/"${st.size.toString(16)}-${Math.round(st.mtimeMs).toString(16)}"`
    versions.set(f.name, [{ v: { file: f.name, tag, size: f.min, etag, t0: 0n, t1: 0n }, body }])
  }
  const s = await serve(t, root)
  // Warm: each file cached before the changes start.
  for (const f of files) t.is((await get(s, `/${f.name}`)).status, 200)

  const MS = 4000
  const changing = runChanger(root, MS, files)
  const responses: Array<{ file: string; got: Got }> = []
  let running = true
  void changing.finally(() => { running = false })
  const worker = async (i: number) => {
    for (let k = i; running; k++) {
      const f = files[k % files.length]
      responses.push({ file: f.name, got: await get(s, `/${f.name}`) })
    }
  }
  await Promise.all(Array.from({ length: 16 }, (_, i) => worker(i)))
  const log = await changing

  for (const v of log) {
    const list = versions.get(v.file)
    if (list === undefined) throw new Error(`unknown file ${v.file}`)
    const prev = list[list.length - 1]
    let body: Buffer | null = null
    if (v.prefixOf) body = prev.body === null ? null : prev.body.subarray(0, v.size)
    else if (v.tag !== null) body = contentOf(v.tag, v.size)
    list.push({ v, body })
  }

  const problems: string[] = []
  let complete = 0
  let notFound = 0
  let cut = 0
  for (const { file, got } of responses) {
    const list = versions.get(file) ?? []
    // A version lives from the start of the change that made it to the end
    // of the one that replaced it (either end as late or early as it may be).
    const alive = list.filter((x, i) => x.v.t0 <= got.end && (i + 1 === list.length || list[i + 1].v.t1 >= got.start))
    if (got.cut) {
      cut++
      // A cut body is still no garbage: a prefix of a version alive then.
      if (got.status === 200 && !alive.some((x) => x.body !== null && x.body.subarray(0, got.body.length).equals(got.body))) {
        problems.push(`${file}: a cut body (${got.body.length} bytes) is no version's prefix`)
      }
      continue
    }
    if (got.status === 404) {
      notFound++
      if (!alive.some((x) => x.body === null)) problems.push(`${file}: 404 while it existed`)
      continue
    }
    if (got.status !== 200) {
      problems.push(`${file}: status ${got.status}`)
      continue
    }
    complete++
    const match = alive.find((x) => x.body !== null && x.body.equals(got.body))
    if (match === undefined) {
      const any = list.find((x) => x.body !== null && x.body.equals(got.body))
      problems.push(`${file}: body ${got.body.subarray(0, 24).toString('latin1')}... (${got.body.length} bytes) ${any ? `is a version that did not exist during the request (${any.v.tag})` : 'is no version'}`)
      continue
    }
    if (got.length !== String(got.body.length)) problems.push(`${file}: Content-Length ${got.length} for ${got.body.length} bytes`)
    if (got.etag !== match.v.etag) problems.push(`${file}: ETag ${got.etag}, the version's is ${match.v.etag}`)
  }
  const changes = log.length
  t.log(`${responses.length} responses (${complete} complete 200, ${notFound} 404, ${cut} cut) during ${changes} changes of ${files.length} files`)
  t.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`)
  t.true(changes > 200, `${changes} changes`)
  t.true(complete > 1000, `${complete} complete responses`)
  // The cache was in use: the files were kept while unchanged.
  if (ON_ENGINE) t.true(sendFileCacheStats().entries > 0)
})

test.serial('a change is seen by the very next request: in-place writes of the same size, chmod, unlink', async (t) => {
  const root = makeTmpDir('ofc-next')
  t.teardown(() => removeTmpDir(root))
  clearSendFileCache()
  const s = await serve(t, root)
  const p = path.join(root, 'same.txt')
  for (let i = 0; i < 200; i++) {
    // The same size, within the same timestamp tick most of the time: no
    // stat-based check can tell these apart; the cache must.
    const content = Buffer.alloc(3000, String(i % 10))
    if (i === 0) fs.writeFileSync(p, content)
    else {
      const fd = fs.openSync(p, 'r+')
      fs.writeSync(fd, content, 0, content.length, 0)
      fs.closeSync(fd)
    }
    const a = await get(s, '/same.txt')
    const b = await get(s, '/same.txt')
    t.true(a.body.equals(content) && b.body.equals(content), `version ${i}`)
  }
  fs.unlinkSync(p)
  t.is((await get(s, '/same.txt')).status, 404)
  // (A 404 may be kept, as a missing path: no bytes.)
  if (ON_ENGINE) t.is(sendFileCacheStats().bytes, 0, 'the unlinked file left the cache')
})

test.serial('no byte from outside the root: symlinks flipped out of it after caching, under load', async (t) => {
  const base = makeTmpDir('ofc-flip')
  t.teardown(() => removeTmpDir(base))
  const root = path.join(base, 'root')
  const outside = path.join(base, 'outside')
  fs.mkdirSync(path.join(root, 'dir'), { recursive: true })
  fs.mkdirSync(outside)
  const SECRET = 'SECRET-OUTSIDE-THE-ROOT'
  fs.writeFileSync(path.join(outside, 'file.txt'), SECRET)
  fs.writeFileSync(path.join(outside, 'f.txt'), SECRET)
  fs.writeFileSync(path.join(root, 'dir', 'file.txt'), 'inside dir')
  fs.writeFileSync(path.join(root, 'f.txt'), 'inside file')
  clearSendFileCache()
  const s = await serve(t, root)
  t.is((await get(s, '/dir/file.txt')).body.toString(), 'inside dir')
  t.is((await get(s, '/f.txt')).body.toString(), 'inside file')
  if (ON_ENGINE) t.is(sendFileCacheStats().entries, 2, 'both cached')

  // Each flip, one at a time: the next request is a 404.
  fs.renameSync(path.join(root, 'dir'), path.join(root, 'dir.away'))
  fs.symlinkSync(outside, path.join(root, 'dir'))
  const flippedDir = await get(s, '/dir/file.txt')
  t.is(flippedDir.status, 404)
  t.false(flippedDir.body.includes(SECRET))
  fs.renameSync(path.join(root, 'f.txt'), path.join(root, 'f.away'))
  fs.symlinkSync(path.join(outside, 'f.txt'), path.join(root, 'f.txt'))
  const flippedFile = await get(s, '/f.txt')
  t.is(flippedFile.status, 404)
  t.false(flippedFile.body.includes(SECRET))

  // Then flipping back and forth from another process while requests run.
  const flipper = spawn(process.execPath, ['-e', String.raw`
    const fs = require('node:fs'), path = require('node:path')
    const [root, outside] = process.argv.slice(1)
    const until = Date.now() + 3000
    let inside = false
    const flip = () => {
      if (Date.now() > until) process.exit(0)
      for (const [name, target, away] of [['dir', outside, 'dir.away'], ['f.txt', path.join(outside, 'f.txt'), 'f.away']]) {
        const p = path.join(root, name)
        if (inside) { fs.renameSync(p, path.join(root, away)); fs.symlinkSync(target, p) }
        else { fs.unlinkSync(p); fs.renameSync(path.join(root, away), p) }
      }
      inside = !inside
      setTimeout(flip, 2)
    }
    flip()
  `, root, outside], { stdio: 'inherit' })
  const ended = new Promise<number | null>((resolve) => flipper.on('exit', resolve))
  let running = true
  void ended.then(() => { running = false })
  let served = 0
  let refused = 0
  const leaks: string[] = []
  const worker = async (i: number) => {
    for (let k = i; running; k++) {
      const p = k % 2 ? '/dir/file.txt' : '/f.txt'
      const got = await get(s, p)
      if (got.body.includes(SECRET)) leaks.push(`${p}: ${got.status}`)
      if (got.status === 200) served++
      else if (got.status === 404) refused++
      else if (!got.cut) leaks.push(`${p}: status ${got.status}`)
    }
  }
  await Promise.all(Array.from({ length: 8 }, (_, i) => worker(i)))
  t.is(await ended, 0)
  t.log(`${served} served from inside, ${refused} refused (404)`)
  t.deepEqual(leaks, [])
  t.true(served > 50 && refused > 50, `${served} served, ${refused} refused`)
})

test.serial('cache: false keeps nothing; bounds hold; clearSendFileCache empties it', async (t) => {
  const root = makeTmpDir('ofc-bounds')
  t.teardown(() => removeTmpDir(root))
  clearSendFileCache()
  for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(root, `s${i}.txt`), Buffer.alloc(1000 + i, 'x'))
  for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(root, `big${i}.bin`), Buffer.alloc(100_000 + i, 'y'))

  const off = await serve(t, root, { cache: false })
  for (let i = 0; i < 10; i++) t.is((await request(off.port, { path: `/s${i}.txt` })).status, 200)
  t.deepEqual(sendFileCacheStats(), { entries: 0, bytes: 0, descriptors: 0 }, 'cache: false')

  const bounded = await serve(t, root, { cache: { entries: 3, bytes: 2500, descriptors: 1 } })
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 10; i++) {
      const r = await request(bounded.port, { path: `/s${i}.txt` })
      t.is(r.body.length, 1000 + i)
    }
    for (let i = 0; i < 4; i++) t.is((await request(bounded.port, { path: `/big${i}.bin` })).body.length, 100_000 + i)
  }
  const st = sendFileCacheStats()
  t.true(st.entries <= 3 && st.bytes <= 2500 && st.descriptors <= 1, JSON.stringify(st))
  if (ON_ENGINE) t.true(st.entries > 0, 'something is kept')

  t.throws(() => sendFile({} as http.IncomingMessage, {} as http.ServerResponse, '/x', { cache: 'yes' as never }), { instanceOf: TypeError })
  t.throws(() => sendFile({} as http.IncomingMessage, {} as http.ServerResponse, '/x', { cache: { entries: -1 } }), { instanceOf: TypeError })

  clearSendFileCache()
  t.deepEqual(sendFileCacheStats(), { entries: 0, bytes: 0, descriptors: 0 })
  await sleep(0)
})

test.serial('a cached answer is the same as an uncached one: headers, HEAD, conditional, range', async (t) => {
  const root = makeTmpDir('ofc-same')
  t.teardown(() => removeTmpDir(root))
  fs.writeFileSync(path.join(root, 'page.html'), '<p>hello</p>')
  fs.writeFileSync(path.join(root, 'big.bin'), Buffer.alloc(200_000, 'z'))
  const on = await serve(t, root)
  const off = await serve(t, root, { cache: false })
  const strip = (h: Record<string, string>) => {
    const { date: _date, ...rest } = h
    return rest
  }
  for (const p of ['/page.html', '/big.bin']) {
    const etag = (await request(off.port, { path: p })).headers.etag
    const specs: RequestSpec[] = [
      { path: p },
      { path: p, method: 'HEAD' },
      { path: p, headers: { 'If-None-Match': etag } },
      { path: p, headers: { Range: 'bytes=2-6' } },
      { path: p, headers: { 'if-modified-since': new Date(Date.now() + 60_000).toUTCString() } },
    ]
    for (const spec of specs) {
      for (let i = 0; i < 3; i++) {
        const a = await request(on.port, spec)
        const b = await request(off.port, spec)
        t.is(a.status, b.status, `${JSON.stringify(spec)} #${i}`)
        t.deepEqual(strip(a.headers), strip(b.headers), `${JSON.stringify(spec)} #${i}`)
        t.true(a.body.equals(b.body), `${JSON.stringify(spec)} #${i}`)
      }
    }
  }
  // A header the application set first is kept, as without the cache.
  const server = http.createServer((req, res) => {
    res.setHeader('Cache-Control', 'no-store')
    void sendFile(req, res, '/page.html', { root }).then(() => {
      t.is(res.getHeader('content-length'), 12)
    })
  })
  const l = await listen(server)
  t.teardown(() => l.close())
  for (let i = 0; i < 3; i++) t.is((await request(l.port, { path: '/' })).headers['cache-control'], 'no-store')
  // The headers a cached answer leaves on `res` read as setHeader() would
  // leave them, through every accessor, with nothing inherited.
  const seen: Array<Record<string, unknown>> = []
  const inspect = http.createServer((req, res) => {
    void sendFile(req, res, '/page.html', { root }).then(() => {
      seen.push({
        names: res.getHeaderNames(),
        headers: { ...res.getHeaders() },
        length: res.getHeader('Content-Length'),
        inherited: ['constructor', 'toString', '__proto__', 'hasOwnProperty'].map((n) => [res.hasHeader(n), res.getHeader(n)]),
      })
    })
  })
  const li = await listen(inspect)
  t.teardown(() => li.close())
  for (let i = 0; i < 3; i++) await request(li.port, { path: '/page.html' })
  const st = fs.statSync(path.join(root, 'page.html'))
  for (const [i, s] of seen.entries()) {
    t.deepEqual(s.names, ['accept-ranges', 'cache-control', 'last-modified', 'etag', 'content-type', 'content-length'], `#${i}`)
    t.deepEqual(s.headers, {
      'accept-ranges': 'bytes',
      'cache-control': 'public, max-age=0',
      'last-modified': st.mtime.toUTCString(),
      etag: `W/"c-${Math.round(st.mtimeMs).toString(16)}"`,
      'content-type': 'text/html; charset=utf-8',
      'content-length': 12,
    }, `#${i}`)
    t.is(s.length, 12)
    t.deepEqual(s.inherited, [[false, undefined], [false, undefined], [false, undefined], [false, undefined]], `#${i}`)
  }
  t.is(seen.length, 3)
})

test.serial('a SIGURG listener added later: changes are still seen, within a second, then at the next request', async (t) => {
  const root = makeTmpDir('ofc-sigurg')
  t.teardown(() => removeTmpDir(root))
  const p = path.join(root, 'x.txt')
  fs.writeFileSync(p, 'one')
  const s = await serve(t, root)
  t.is((await get(s, '/x.txt')).body.toString(), 'one')
  // Node's own handler replaces the package's (which only counted).
  const listener = () => {}
  process.on('SIGURG', listener)
  t.teardown(() => { process.removeListener('SIGURG', listener) })
  fs.writeFileSync(p, 'two')
  await sleep(1100)
  t.is((await get(s, '/x.txt')).body.toString(), 'two', 'within a second')
  for (let i = 0; i < 20; i++) {
    fs.writeFileSync(p, `v${i}`)
    t.is((await get(s, '/x.txt')).body.toString(), `v${i}`, 'then at the next request')
  }
})

test.serial('cached bytes written straight to the socket: a full socket, pipelined requests, every body whole and in order', async (t) => {
  const root = makeTmpDir('ofc-pipe')
  t.teardown(() => removeTmpDir(root))
  const files = [0, 1, 2].map((i) => {
    const body = Buffer.alloc(60_000 + i * 1000, String.fromCharCode(97 + i))
    body.write(`file ${i}|`)
    fs.writeFileSync(path.join(root, `p${i}.bin`), body)
    return body
  })
  const s = await serve(t, root)
  // Cached first, so that the pipelined answers take the in-memory path.
  for (let i = 0; i < files.length; i++) await get(s, `/p${i}.bin`)
  const N = 60
  const sock = net.connect(s.port, '127.0.0.1')
  await new Promise((resolve) => sock.once('connect', resolve))
  let raw = ''
  for (let k = 0; k < N; k++) raw += `GET /p${k % 3}.bin HTTP/1.1\r\nHost: x\r\n\r\n`
  sock.write(raw)
  // Not read for a while: the server's writes find the socket full.
  sock.pause()
  await sleep(300)
  const chunks: Buffer[] = []
  sock.on('data', (c: Buffer) => chunks.push(c))
  sock.resume()
  const expected = Array.from({ length: N }, (_, k) => files[k % 3])
  // How many whole responses (head and Content-Length bytes of body) `buf` holds.
  const whole = (buf: Buffer): number => {
    let n = 0
    while (n < N) {
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) break
      const length = Number(/content-length: (\d+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1] ?? NaN)
      if (!(buf.length >= end + 4 + length)) break
      buf = buf.subarray(end + 4 + length)
      n++
    }
    return n
  }
  // Until all N responses are in (the checks below say what is missing
  // if they never are): stopping at a byte count guessed for the heads
  // cut the last response short under load once.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 20_000)
    const check = () => {
      if (whole(Buffer.concat(chunks)) === N) {
        clearTimeout(timer)
        resolve()
      }
    }
    sock.on('data', check)
    check()
  })
  sock.destroy()
  // Split the stream into responses by Content-Length.
  let all = Buffer.concat(chunks)
  for (let k = 0; k < N; k++) {
    const end = all.indexOf('\r\n\r\n')
    t.true(end > 0, `response ${k}: a head`)
    const head = all.subarray(0, end).toString('latin1')
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1])
    t.true(head.startsWith('HTTP/1.1 200'), `response ${k}: ${head.split('\r\n')[0]}`)
    const body = all.subarray(end + 4, end + 4 + length)
    t.true(body.equals(expected[k]), `response ${k}: the body of p${k % 3}.bin`)
    all = all.subarray(end + 4 + length)
  }
  t.is(all.length, 0, 'nothing more')
})

test.serial('bytes sent straight to a socket that takes none, or part, of them: the rest follows, in order', async (t) => {
  const { endWithBytes } = createRequire(path.join(REPO, 'package.json'))('./lib/memory-body.js') as {
    endWithBytes: (res: http.ServerResponse, body: Buffer) => boolean
  }
  // Larger than all the socket buffers hold: some of it always waits.
  const body = Buffer.alloc(8 * 1024 * 1024)
  for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff
  for (const room of [0, 64 * 1024]) {
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve))
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
    client.pause()
    const peer = await accepted
    // The kernel's buffers filled behind Node's back: Node has nothing queued.
    const fd = (peer as unknown as { _handle: { fd: number } })._handle.fd
    const filler = Buffer.alloc(256 * 1024, 'F')
    let filled = 0
    for (;;) {
      try {
        filled += fs.writeSync(fd, filler)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break
        throw e
      }
    }
    const chunks: Buffer[] = []
    let got = 0
    const take = (c: Buffer) => { chunks.push(c); got += c.length }
    if (room > 0) {
      // Some room again: part of what follows fits.
      client.on('data', take)
      client.resume()
      for (const deadline = Date.now() + 10_000; got < room && Date.now() < deadline;) await sleep(5)
      client.pause()
      client.removeListener('data', take)
      await sleep(20)
    }
    const req = new http.IncomingMessage(peer)
    req.method = 'GET'
    req.httpVersionMajor = 1
    req.httpVersionMinor = 1
    const res = new http.ServerResponse(req)
    res.assignSocket(peer)
    res.setHeader('Content-Length', body.length)
    t.true(endWithBytes(res, body), `room ${room}`)
    client.on('data', take)
    client.resume()
    const head = 'HTTP/1.1 200 OK\r\n'
    const deadline = Date.now() + 10_000
    while (got < filled + head.length + body.length && Date.now() < deadline) await sleep(5)
    await sleep(20)
    const all = Buffer.concat(chunks)
    t.true(all.subarray(0, filled).every((b) => b === 0x46), `room ${room}: the filler first`)
    const rest = all.subarray(filled)
    const end = rest.indexOf('\r\n\r\n')
    t.true(rest.subarray(0, end).toString('latin1').startsWith('HTTP/1.1 200 OK'), `room ${room}: then the head`)
    t.true(rest.subarray(end + 4).equals(body), `room ${room}: then the whole body, and nothing else`)
    client.destroy()
    peer.destroy()
    server.close()
  }
})

test.serial('a missing path is served again as soon as it appears: the file, its directory, a precompressed variant, an extension', async (t) => {
  const root = makeTmpDir('ofc-missing')
  t.teardown(() => removeTmpDir(root))
  clearSendFileCache()
  const s = await serve(t, root)
  const variants = await serve(t, root, { precompressed: true, extensions: ['html'] })
  for (let i = 0; i < 20; i++) {
    // A file created where a request had just found nothing.
    t.is((await get(s, `/new${i}.txt`)).status, 404)
    t.is((await get(s, `/new${i}.txt`)).status, 404)
    fs.writeFileSync(path.join(root, `new${i}.txt`), `v${i}`)
    t.is((await get(s, `/new${i}.txt`)).body.toString(), `v${i}`, `new${i}.txt`)
    // A directory that did not exist, then a file renamed into it.
    t.is((await get(s, `/d${i}/f.txt`)).status, 404)
    fs.mkdirSync(path.join(root, `d${i}`))
    t.is((await get(s, `/d${i}/f.txt`)).status, 404)
    fs.writeFileSync(path.join(root, `tmp${i}`), `f${i}`)
    fs.renameSync(path.join(root, `tmp${i}`), path.join(root, `d${i}`, 'f.txt'))
    t.is((await get(s, `/d${i}/f.txt`)).body.toString(), `f${i}`, `d${i}/f.txt`)
  }
  // Variants looked for and missing, then added.
  fs.writeFileSync(path.join(root, 'app.js'), 'plain')
  const br = () => new Promise<{ enc: string | undefined; body: string }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: variants.port, path: '/app.js', headers: { 'Accept-Encoding': 'br' }, agent: false }, (res) => {
      const c: Buffer[] = []
      res.on('data', (d: Buffer) => c.push(d))
      res.on('end', () => resolve({ enc: res.headers['content-encoding'], body: Buffer.concat(c).toString() }))
    }).on('error', reject)
  })
  t.deepEqual(await br(), { enc: undefined, body: 'plain' })
  t.deepEqual(await br(), { enc: undefined, body: 'plain' })
  fs.writeFileSync(path.join(root, 'app.js.br'), 'compressed')
  t.deepEqual(await br(), { enc: 'br', body: 'compressed' })
  fs.unlinkSync(path.join(root, 'app.js.br'))
  t.deepEqual(await br(), { enc: undefined, body: 'plain' })
  // An extension tried and missing, then added.
  t.is((await get(variants, '/about')).status, 404)
  fs.writeFileSync(path.join(root, 'about.html'), 'about')
  t.is((await get(variants, '/about')).body.toString(), 'about')
  if (ON_ENGINE) {
    // Missing paths are kept, but at most a quarter of the entries.
    const bounded = await serve(t, root, { cache: { entries: 8 } })
    for (let i = 0; i < 50; i++) t.is((await get(bounded, `/nothing${i}`)).status, 404)
    t.true(sendFileCacheStats().entries > 0)
  }
})

test.serial('response heads of any size and any latin1 byte reach the socket as Node would send them: cached, large and zero-copy bodies', async (t) => {
  const root = makeTmpDir('ofc-heads')
  t.teardown(() => removeTmpDir(root))
  const small = Buffer.alloc(3000, 's')
  const large = Buffer.alloc(1024 * 1024, 'L')
  fs.writeFileSync(path.join(root, 'small.txt'), small)
  fs.writeFileSync(path.join(root, 'large.txt'), large)
  // Heads below, at and well above the native side's 16 KiB scratch
  // buffer, each with every byte a header value may hold (\t, 0x20-0x7e,
  // 0x80-0xff), so that a truncated or mis-encoded head shows.
  const everyByte = '\t' + Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join('') +
    Array.from({ length: 0x80 }, (_, i) => String.fromCharCode(0x80 + i)).join('')
  const pads = [0, 16 * 1024 - 400, 16 * 1024, 40 * 1024]
  // One server answers with sendFile, the other with Node's own res.end()
  // of the same bytes and headers: the two byte streams must be equal but
  // for the Date header.
  const viaSendFile = http.createServer({ maxHeaderSize: 80 * 1024 }, (req, res) => {
    const [file, pad] = (req.url ?? '').slice(1).split('/')
    sendFile(req, res, `/${file}`, { root, headers: { 'X-Pad': 'p'.repeat(Number(pad)), 'X-Bytes': everyByte } }).catch(() => res.destroy())
  })
  const viaNode = http.createServer({ maxHeaderSize: 80 * 1024 }, (req, res) => {
    const [file, pad] = (req.url ?? '').slice(1).split('/')
    const p = path.join(root, file)
    const st = fs.statSync(p)
    res.setHeader('X-Pad', 'p'.repeat(Number(pad)))
    res.setHeader('X-Bytes', everyByte)
    res.setHeader('Accept-Ranges', 'bytes')
    res.setHeader('Cache-Control', 'public, max-age=0')
    res.setHeader('Last-Modified', st.mtime.toUTCString())
    res.setHeader('ETag', `W/"${st.size.toString(16)}-${Math.round(st.mtimeMs).toString(16)}"`)
    res.setHeader('Content-Type', 'text/plain; charset=utf-8')
    res.setHeader('Content-Length', st.size)
    res.end(fs.readFileSync(p))
  })
  const a = await listen(viaSendFile)
  const b = await listen(viaNode)
  t.teardown(async () => { await a.close(); await b.close() })
  const raw = async (port: number, target: string, length: number): Promise<string> => {
    const sock = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    sock.on('data', (c: Buffer) => chunks.push(c))
    sock.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`)
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(5)) {
      const all = Buffer.concat(chunks)
      const end = all.indexOf('\r\n\r\n')
      if (end >= 0 && all.length >= end + 4 + length) break
    }
    sock.destroy()
    return Buffer.concat(chunks).toString('latin1').replace(/\r\nDate: [^\r]*/, '')
  }
  for (const [file, body] of [['small.txt', small], ['large.txt', large]] as const) {
    for (const pad of pads) {
      // Twice: the first answer of a file opens it, the next comes from the cache.
      for (const round of [1, 2]) {
        const got = await raw(a.port, `/${file}/${pad}`, body.length)
        const want = await raw(b.port, `/${file}/${pad}`, body.length)
        t.true(got.length > pad + body.length, `${file}, pad ${pad}, round ${round}: a whole response`)
        t.true(got === want, `${file}, pad ${pad}, round ${round}: the same bytes as Node's own res.end()`)
      }
    }
  }
})
