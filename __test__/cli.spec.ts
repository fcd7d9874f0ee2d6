// The `uring-fs serve` CLI (bin/uring-fs.js) and `npm start`
// (scripts/start.js), run as child processes the way a user runs them: the
// listening line, responses over HTTP (page, range, 405, 404, traversal), one
// log line per response, directory listings with escaped names, shutdown on
// SIGINT (idle, with a download in flight read quickly, with one read too
// slowly to finish in the grace period), and a port already in use. The
// children inherit process.env, so URING_FS_BACKEND=fallback reaches them.

import test from 'ava'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as path from 'node:path'
import * as zlib from 'node:zlib'

import { backend } from 'uring-fs'
import { REPO, makeTmpDir, removeTmpDir, sleep } from './helpers'
import { rawExchange, rawRequest, request } from './http-helpers'
import { BIN, LISTENING, listening, logLines, serveDir, signalAndWait, spawnNode, waitFor } from './serve-helpers'

const START = path.join(REPO, 'scripts', 'start.js')
const EXAMPLE = path.join(REPO, 'example')
const MiB = 1024 * 1024
const BIG = 64 * MiB
let tmp: string
let bigHash: string

test.before(() => {
  tmp = makeTmpDir('cli')
  // 64 MiB that is not all one byte: a pattern with the offset in it.
  const chunk = Buffer.alloc(MiB)
  const hash = createHash('sha256')
  const fd = fs.openSync(path.join(tmp, 'big.bin'), 'w')
  for (let i = 0; i < BIG / MiB; i++) {
    for (let j = 0; j < MiB; j += 4) chunk.writeUInt32LE((i * MiB + j) >>> 0, j)
    fs.writeSync(fd, chunk)
    hash.update(chunk)
  }
  fs.closeSync(fd)
  bigHash = hash.digest('hex')
})

test.after.always(() => {
  if (tmp) removeTmpDir(tmp)
})

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

const PACKAGE_JSON = fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')

// ---------------------------------------------------------------------------

test('serve example/: listening line, page, range, 405, 404, traversal, one log line per response', async (t) => {
  t.timeout(30_000)
  const srv = await serveDir(t, 'example')
  t.is(srv.shown, 'example')
  t.regex(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
  t.true(srv.port > 0)
  t.is(srv.backend, backend(), 'the child runs the backend the env selects')
  if (process.env.URING_FS_BACKEND === 'fallback') t.is(srv.backend, 'fallback')

  const sent: Array<{ method: string; url: string; status: number }> = []

  // The page.
  const page = await fetch(srv.url)
  t.is(page.status, 200)
  t.regex(page.headers.get('content-type') ?? '', /^text\/html\b/)
  const html = await page.text()
  t.true(html.includes('<video'), 'the example page has the video')
  t.is(html, fs.readFileSync(path.join(EXAMPLE, 'index.html'), 'utf8'))
  sent.push({ method: 'GET', url: '/', status: 200 })

  // A range of the video.
  const video = fs.readFileSync(path.join(EXAMPLE, 'video.mp4'))
  const ranged = await fetch(new URL('/video.mp4', srv.url), { headers: { Range: 'bytes=1000-1999' } })
  t.is(ranged.status, 206)
  t.is(ranged.headers.get('content-range'), `bytes 1000-1999/${video.length}`)
  t.is(ranged.headers.get('content-length'), '1000')
  const part = Buffer.from(await ranged.arrayBuffer())
  t.is(part.length, 1000)
  t.true(part.equals(video.subarray(1000, 2000)), 'the body is bytes 1000..1999 of the file')
  sent.push({ method: 'GET', url: '/video.mp4', status: 206 })

  // Not GET or HEAD.
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const res = await fetch(new URL('/index.html', srv.url), { method, body: method === 'DELETE' ? undefined : 'x' })
    t.is(res.status, 405, method)
    t.is(res.headers.get('allow'), 'GET, HEAD', method)
    await res.arrayBuffer()
    sent.push({ method, url: '/index.html', status: 405 })
  }

  // HEAD: the headers of the GET, no body.
  const head = await request(srv.port, { method: 'HEAD', path: '/video.mp4' })
  t.is(head.status, 200)
  t.is(head.headers['content-length'], String(video.length))
  t.is(head.body.length, 0)
  sent.push({ method: 'HEAD', url: '/video.mp4', status: 200 })

  // Missing.
  const missing = await fetch(new URL('/no-such-file.txt', srv.url))
  t.is(missing.status, 404)
  await missing.arrayBuffer()
  sent.push({ method: 'GET', url: '/no-such-file.txt', status: 404 })

  // Out of the root: package.json sits right above example/. Sent as is
  // through node:http (fetch would resolve the dot segments itself).
  const escapes = ['/%2e%2e/package.json', '/%2E%2E/package.json', '/..%2fpackage.json', '/%2e%2e%2fpackage.json', '/example/%2e%2e/%2e%2e/package.json']
  for (const p of escapes) {
    const res = await request(srv.port, { path: p })
    t.true(res.status === 403 || res.status === 404, `${p}: ${res.status}`)
    t.false(res.body.toString('latin1').includes('"name": "uring-fs"'), `${p} must not give package.json`)
    t.false(res.body.toString('latin1') === PACKAGE_JSON, p)
    sent.push({ method: 'GET', url: p, status: res.status })
  }
  const [raw] = await rawExchange(srv.port, rawRequest('/../package.json'))
  t.true(raw.status === 403 || raw.status === 404 || raw.status === 400, `/../package.json: ${raw.status}`)
  t.false(raw.body.toString('latin1').includes('"name": "uring-fs"'), '/../package.json must not give package.json')
  sent.push({ method: 'GET', url: '/../package.json', status: raw.status })

  // One log line per response, each naming its method, url and status.
  await waitFor(
    () => logLines(srv.stdout()).length >= sent.length,
    () => `${sent.length} log lines; stdout: ${srv.stdout()}`,
    5000,
  )
  await sleep(200) // no more than one each
  const lines = logLines(srv.stdout())
  t.is(lines.length, sent.length, srv.stdout())
  for (const { method, url, status } of sent) {
    const re = new RegExp(` ${escapeRegExp(method)} ${escapeRegExp(url)} ${status} `)
    t.is(lines.filter((l) => re.test(l)).length, 1, `one log line for ${method} ${url} ${status}`)
  }
  t.regex(lines.find((l) => / GET \/video\.mp4 206 /.test(l)) ?? '', / 206 1000 /, 'the range line logs 1000 bytes')
  t.is(srv.stderr(), '')
})

test('a directory without index.html: a listing with escaped names whose links fetch the files', async (t) => {
  t.timeout(20_000)
  const dir = makeTmpDir('cli-list')
  t.teardown(() => removeTmpDir(dir))
  const files: Record<string, string> = {
    'a<b>&c.txt': 'angle brackets and an ampersand\n',
    ['q"u\'ote.txt']: 'quotes\n',
    'plain.txt': 'plain\n',
  }
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content)
  fs.writeFileSync(path.join(dir, '.hidden'), 'dotfile\n')

  const srv = await serveDir(t, dir)
  const res = await fetch(srv.url)
  t.is(res.status, 200)
  t.regex(res.headers.get('content-type') ?? '', /^text\/html\b/)
  const html = await res.text()

  t.true(html.includes('a&#60;b&#62;&#38;c.txt'), 'the name is escaped')
  t.false(html.includes('a<b>'), 'the raw name never appears')
  t.false(html.includes('<b>'), 'no markup from a file name')
  t.false(html.includes('.hidden'), 'dotfiles are not listed')

  const decode = (s: string) => s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
  const links = [...html.matchAll(/<a href="([^"]*)">([^<]*)<\/a>/g)].map((m) => ({ href: decode(m[1]), text: decode(m[2]) }))
  t.deepEqual(links.map((l) => l.text).sort(), Object.keys(files).sort(), `links: ${JSON.stringify(links)}`)
  for (const [name, content] of Object.entries(files)) {
    const link = links.find((l) => l.text === name)
    if (!link) {
      t.fail(`no link for ${name}`)
      continue
    }
    const target = new URL(link.href, srv.url)
    const got = await fetch(target)
    t.is(got.status, 200, `${name} via ${link.href}`)
    t.is(await got.text(), content, `${name} via ${link.href}`)
  }
})

test('--compress serves a precompressed variant to clients that accept it; without it, never', async (t) => {
  t.timeout(20_000)
  const dir = makeTmpDir('cli-compress')
  t.teardown(() => removeTmpDir(dir))
  const js = Buffer.from('console.log("compressed");\n'.repeat(400))
  fs.writeFileSync(path.join(dir, 'app.js'), js)
  fs.writeFileSync(path.join(dir, 'app.js.br'), zlib.brotliCompressSync(js))
  fs.writeFileSync(path.join(dir, 'app.js.gz'), zlib.gzipSync(js))
  const get = (port: number, ae: string) => request(port, { path: '/app.js', headers: { 'Accept-Encoding': ae } })
  for (const flag of ['--compress', '-c']) {
    const srv = await serveDir(t, dir, '0', [flag])
    const br = await get(srv.port, 'gzip, br')
    t.is(br.status, 200)
    t.is(br.headers['content-encoding'], 'br', flag)
    t.is(br.headers.vary, 'Accept-Encoding')
    t.true(zlib.brotliDecompressSync(br.body).equals(js))
    const gz = await get(srv.port, 'gzip')
    t.is(gz.headers['content-encoding'], 'gzip')
    t.true(zlib.gunzipSync(gz.body).equals(js))
    const plain = await get(srv.port, 'identity')
    t.true(plain.body.equals(js))
  }
  const off = await serveDir(t, dir)
  const r = await get(off.port, 'br')
  t.is(r.headers['content-encoding'] as string | undefined, undefined)
  t.true(r.body.equals(js))
})

test('SIGINT on an idle server (a keep-alive connection open): exit 0 within 3 s', async (t) => {
  t.timeout(20_000)
  const srv = await serveDir(t, 'example')
  // A keep-alive connection left idle in the pool.
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  const res = await request(srv.port, { path: '/style.css' }, { agent })
  t.is(res.status, 200)
  const exit = await signalAndWait(srv, 'SIGINT', 8000)
  t.not(exit, null, 'the server exited')
  t.is(exit?.code, 0)
  t.is(exit?.signal, null)
  t.true((exit?.ms ?? Infinity) < 3000, `exited after ${exit?.ms} ms`)
  t.regex(srv.stdout(), /uring-fs: worker \d+: SIGINT, closing \(0 responses in flight\)/)
})

test('SIGTERM exits 0 as well', async (t) => {
  t.timeout(20_000)
  const srv = await serveDir(t, 'example')
  const exit = await signalAndWait(srv, 'SIGTERM', 8000)
  t.not(exit, null, 'the server exited')
  t.is(exit?.code, 0)
  t.true((exit?.ms ?? Infinity) < 3000, `exited after ${exit?.ms} ms`)
})

test('SIGINT while a 64 MiB download is in flight: the download finishes whole, then exit 0', async (t) => {
  t.timeout(30_000)
  const srv = await serveDir(t, tmp)
  const received = createHash('sha256')
  let bytes = 0
  let sigintAt = 0
  const done = new Promise<{ complete: boolean; error: Error | null }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: srv.port, path: '/big.bin', agent: false }, (res) => {
      t.is(res.statusCode, 200)
      t.is(res.headers['content-length'], String(BIG))
      // Nothing read until the server knows it is shutting down with this response in flight.
      void (async () => {
        sigintAt = Date.now()
        srv.proc.kill('SIGINT')
        // Each worker logs its own closing line, in no set order: wait for the one serving the download.
        const inFlight = /uring-fs: worker \d+: SIGINT, closing \(1 response in flight\)/
        await waitFor(() => inFlight.test(srv.stdout()), () => `the closing line of the worker serving the download in:\n${srv.stdout()}`, 5000)
        let error: Error | null = null
        res.on('data', (c: Buffer) => {
          bytes += c.length
          received.update(c)
        })
        res.on('error', (e) => (error = e))
        res.on('close', () => resolve({ complete: res.complete, error }))
      })().catch(reject)
    })
    req.on('error', reject)
  })
  const result = await done
  t.is(result.error, null)
  t.true(result.complete, 'the response completed')
  t.is(bytes, BIG)
  t.is(received.digest('hex'), bigHash, 'the bytes of the file')
  const exit = await Promise.race([srv.exited, sleep(8000).then(() => null)])
  t.not(exit, null, 'the server exited')
  t.is(exit?.code, 0)
  const ms = Date.now() - sigintAt
  t.true(ms < 6000, `exited ${ms} ms after SIGINT`)
  t.regex(srv.stdout(), new RegExp(` GET /big\\.bin 200 ${BIG} `), 'the download is logged whole')
})

test('SIGINT while a 64 MiB download is read too slowly to finish: cut after the grace period, exit 0 by ~6 s', async (t) => {
  t.timeout(30_000)
  const srv = await serveDir(t, tmp)
  const RATE = 4 * MiB // bytes per second: 16 s for the whole file
  let bytes = 0
  let sigintAt = 0
  let bytesAtSigint = 0
  const done = new Promise<{ complete: boolean; ms: number }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: srv.port, path: '/big.bin', agent: false }, (res) => {
      t.is(res.statusCode, 200)
      res.on('data', (c: Buffer) => {
        bytes += c.length
        if (sigintAt === 0) {
          sigintAt = Date.now()
          bytesAtSigint = bytes
          srv.proc.kill('SIGINT')
        }
        // Read on, slowly.
        res.pause()
        setTimeout(() => res.resume(), (c.length / RATE) * 1000)
      })
      res.on('error', () => {})
      res.on('close', () => resolve({ complete: res.complete, ms: Date.now() - sigintAt }))
    })
    req.on('error', () => {}) // the cut, after the response began
    req.on('close', () => {
      if (sigintAt === 0) reject(new Error('the request closed before any data'))
    })
  })
  const exit = await Promise.race([srv.exited, sleep(10_000).then(() => null)])
  const exitMs = Date.now() - sigintAt
  t.not(exit, null, 'the server exited')
  t.is(exit?.code, 0)
  t.is(exit?.signal, null)
  t.true(exitMs < 6500, `exited ${exitMs} ms after SIGINT`)
  const result = await Promise.race([done, sleep(5000).then(() => null)])
  t.not(result, null, 'the download ended')
  if (result === null) return
  t.log(`exit ${exitMs} ms after SIGINT; ${bytesAtSigint} bytes at SIGINT, ${bytes} at the end (${result.complete ? 'complete' : 'cut'}) after ${result.ms} ms`)
  t.true(bytes > bytesAtSigint, 'the download went on after SIGINT')
  if (result.complete) {
    t.is(bytes, BIG)
  } else {
    t.true(bytes < BIG)
    t.true(exitMs >= 4500, `exited ${exitMs} ms after SIGINT: the response was not given its grace period`)
    t.regex(srv.stderr(), /still running after 5 s, cutting them/)
    t.regex(srv.stdout(), / GET \/big\.bin 200 \d+ [\d.]+ms aborted/, 'the cut response is logged')
  }
})

test('a second server on a port in use exits 1 with one line on stderr', async (t) => {
  t.timeout(20_000)
  const first = await serveDir(t, 'example')
  const second = spawnNode(t, [BIN, 'serve', 'example', '--port', String(first.port), '--host', '127.0.0.1'])
  const exit = await Promise.race([second.exited, sleep(10_000).then(() => null)])
  t.not(exit, null, 'the second server exited')
  t.is(exit?.code, 1)
  const err = second.stderr()
  t.regex(err, /address already in use/i)
  t.true(err.includes(`127.0.0.1:${first.port}`), err)
  t.is(err.trimEnd().split('\n').length, 1, `one line: ${JSON.stringify(err)}`)
  t.false(LISTENING.test(second.stdout()), second.stdout())
  // The first one is unharmed.
  const res = await fetch(first.url)
  t.is(res.status, 200)
  await res.arrayBuffer()
})

test('npm start (scripts/start.js) with PORT=0: listening line, serves example/, SIGINT exits 0', async (t) => {
  t.timeout(20_000)
  const srv = await listening(spawnNode(t, [START], { PORT: '0' }))
  t.is(srv.shown, 'example')
  t.regex(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
  t.true(srv.port > 0 && srv.port !== 8080)
  t.is(srv.backend, backend())
  const res = await fetch(srv.url)
  t.is(res.status, 200)
  t.true((await res.text()).includes('<video'))
  await waitFor(() => logLines(srv.stdout()).length >= 1, () => 'the log line', 5000)
  t.regex(logLines(srv.stdout())[0], / GET \/ 200 /)
  const exit = await signalAndWait(srv, 'SIGINT', 8000)
  t.is(exit?.code, 0)
})
