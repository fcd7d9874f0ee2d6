// `uring-fs serve`'s settings, as a user gives them: every flag's effect on
// the responses (compared with what the flag promises in --help), the
// same settings from --config, bad values refused with exit 2 before
// anything listens, the directory listing page, HTTPS and HTTP/2, and the
// workers (a worker killed under load is replaced; clients lose at most
// what it was serving).

import test, { type ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as http2 from 'node:http2'
import * as https from 'node:https'
import * as path from 'node:path'

import { REPO, makeTmpDir, removeTmpDir, sleep } from './helpers'
import { type Response, request } from './http-helpers'
import { BIN, LOG_LINE, type Server, logLines, serveDir, signalAndWait, spawnNode, waitFor } from './serve-helpers'

let dir: string
const INDEX = '<!doctype html><title>app shell</title>\n'

test.before(() => {
  dir = makeTmpDir('serve-flags')
  const put = (rel: string, content: string | Buffer) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
    fs.writeFileSync(path.join(dir, rel), content)
  }
  put('index.html', INDEX)
  put('about.html', 'about page\n')
  put('page.htm', 'htm page\n')
  put('app.js', 'console.log(1)\n')
  put('assets/app.3f9a1c2e.js', 'fingerprinted\n')
  put('assets/index-BQ3x_mZa.css', 'body{}\n')
  put('assets/app.component.js', 'not fingerprinted\n')
  put('assets/lib.v12.js', 'versioned\n')
  put('.well-known/thing.txt', 'dot dir\n')
  put('.env', 'SECRET=1\n')
  put('list/file10.txt', 'ten\n')
  put('list/file2.txt', 'two\n')
  put('list/B-upper.txt', 'B\n')
  put('list/a-lower.txt', Buffer.alloc(3000, 97))
  put('list/sub/inner.txt', 'inner\n')
  put('list/<img src=x onerror=alert(1)>.txt', 'xss\n')
  put('list/.hidden', 'hidden\n')
  spawnSync('mkfifo', [path.join(dir, 'list', 'a-fifo')])
  fs.symlinkSync('/etc', path.join(dir, 'list', 'out-link'))
  fs.symlinkSync('sub', path.join(dir, 'list', 'in-link'))
})

test.after.always(() => {
  if (dir) removeTmpDir(dir)
})

const get = (srv: Server, p: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Response> =>
  request(srv.port, { method, path: p, headers })

/** Runs the CLI to its exit (for the refusals): code, stdout, stderr. */
function runCli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: REPO, encoding: 'utf8', timeout: 15_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('bad flags and values: exit 2, one line on stderr naming what is wrong, nothing served', (t) => {
  const cfg = (name: string, json: string) => {
    const f = path.join(dir, `..${path.basename(dir)}-${name}.json`)
    fs.writeFileSync(f, json)
    t.teardown(() => fs.rmSync(f, { force: true }))
    return f
  }
  const cases: Array<[string[], RegExp]> = [
    [['serve', dir, '--bogus'], /'--bogus'/],
    [['serve', dir, '--port', '70000'], /--port must be an integer from 0 to 65535/],
    [['serve', dir, '--port', '80x'], /--port/],
    [['serve', dir, '--workers', '0'], /--workers must be an integer from 1/],
    [['serve', dir, '--workers', 'many'], /--workers/],
    [['serve', dir, '--max-age', '1x'], /--max-age must be seconds or a duration/],
    [['serve', dir, '--max-age', '-5'], /--max-age/],
    [['serve', dir, '--dotfiles', 'maybe'], /--dotfiles must be ignore, deny, allow/],
    [['serve', dir, '--log', 'xml'], /--log must be text, json, off/],
    [['serve', dir, '--extensions', 'html,.h/tm'], /--extensions: '.h\/tm' is not an extension/],
    [['serve', dir, '--immutable-pattern', '(['], /--immutable-pattern is not a regular expression/],
    [['serve', dir, '--http2'], /--http2 needs --cert and --key/],
    [['serve', dir, '--cert', path.join(dir, 'app.js')], /--cert and --key go together/],
    [['serve', dir, '--cert', '/nonexistent.pem', '--key', '/nonexistent.pem'], /--cert \/nonexistent\.pem: no such file/],
    [['serve', dir, '--listing', '--no-listing'], /cannot both be given/],
    [['serve', dir, '--config', '/nonexistent.json'], /--config \/nonexistent\.json: no such file/],
    [['serve', dir, '--config', cfg('unknown', '{"prot": 8080}')], /unknown setting 'prot'/],
    [['serve', dir, '--config', cfg('badvalue', '{"single": "yes"}')], /single in .* must be true or false/],
    [['serve', dir, '--config', cfg('notjson', '{port: 1}')], /--config .*: /],
    [['serve', dir, '--port', '0', 'extra'], /unexpected argument 'extra'/],
    [['serve', path.join(dir, 'no-such-dir'), '--port', '0'], /no such directory/],
    [['serve', path.join(dir, 'app.js'), '--port', '0'], /not a directory/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ]
  for (const [args, why] of cases) {
    const r = runCli(args)
    const what = args.slice(2).join(' ') || args.join(' ')
    t.is(r.code, 2, `${what}: exit code (stderr: ${r.stderr})`)
    t.regex(r.stderr, why, what)
    t.is(r.stderr.trim().split('\n').length, 1, `${what}: one line`)
    t.regex(r.stderr, /^uring-fs: /, what)
    t.false(/serving/.test(r.stdout), `${what}: nothing listens`)
  }
})

test('--help names every flag; --version prints the package version', (t) => {
  const help = runCli(['--help'])
  t.is(help.code, 0)
  const flags = ['--port', '--host', '--workers', '--compress', '--single', '--cors', '--max-age', '--immutable', '--immutable-pattern', '--extensions', '--dotfiles', '--no-listing', '--cert', '--key', '--http2', '--log', '--config', '--help', '--version']
  for (const f of flags) t.true(help.stdout.includes(`${f} `) || help.stdout.includes(`${f}\n`), `--help mentions ${f}`)
  const version = runCli(['--version'])
  t.is(version.code, 0)
  t.is(version.stdout.trim(), JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version)
})

test('--single: a path without extension asked for as HTML gets index.html; files, scripts and JSON clients do not', async (t) => {
  const srv = await serveDir(t, dir, '0', ['--single', '--workers', '1'])
  const html = { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' }
  for (const p of ['/dashboard', '/users/42/edit', '/list/sub/nothing']) {
    const r = await get(srv, p, html)
    t.is(r.status, 200, p)
    t.is(r.body.toString(), INDEX, p)
    t.regex(r.headers['content-type'], /^text\/html/, p)
  }
  t.is((await get(srv, '/dashboard', html, 'HEAD')).status, 200)
  t.is((await get(srv, '/missing.js', html)).status, 404, 'a missing file with an extension stays 404')
  t.is((await get(srv, '/dashboard', { Accept: 'application/json' })).status, 404, 'a client that does not take HTML gets 404')
  t.is((await get(srv, '/about.html', html)).body.toString(), 'about page\n', 'files are served as themselves')
  t.is((await get(srv, '/.env', html)).status, 404, 'a dotfile is not turned into the app shell')
  const off = await serveDir(t, dir, '0', ['--workers', '1'])
  t.is((await get(off, '/dashboard', html)).status, 404, 'without --single: 404')
})

test('--cors: Access-Control-Allow-Origin on responses and an answer to preflight; without it, neither', async (t) => {
  const srv = await serveDir(t, dir, '0', ['--cors', '--workers', '1'])
  const r = await get(srv, '/app.js', { Origin: 'https://example.com' })
  t.is(r.status, 200)
  t.is(r.headers['access-control-allow-origin'], '*')
  const pre = await get(srv, '/app.js', { Origin: 'https://example.com', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'x-custom, range' }, 'OPTIONS')
  t.is(pre.status, 204)
  t.is(pre.headers['access-control-allow-origin'], '*')
  t.regex(pre.headers['access-control-allow-methods'], /GET/)
  t.is(pre.headers['access-control-allow-headers'], 'x-custom, range')
  t.is((await get(srv, '/app.js', {}, 'POST')).headers['access-control-allow-origin'], '*', 'a 405 says it too')
  const off = await serveDir(t, dir, '0', ['--workers', '1'])
  const plain = await get(off, '/app.js', { Origin: 'https://example.com' })
  t.false('access-control-allow-origin' in plain.headers)
  t.is((await get(off, '/app.js', {}, 'OPTIONS')).status, 405)
})

test('--max-age and --immutable: Cache-Control per file, fingerprinted names for a year', async (t) => {
  const srv = await serveDir(t, dir, '0', ['--max-age', '1h', '--immutable', '--workers', '1'])
  const cc = async (p: string) => (await get(srv, p)).headers['cache-control']
  t.is(await cc('/app.js'), 'public, max-age=3600')
  t.is(await cc('/assets/app.3f9a1c2e.js'), 'public, max-age=31536000, immutable')
  t.is(await cc('/assets/index-BQ3x_mZa.css'), 'public, max-age=31536000, immutable')
  t.is(await cc('/assets/app.component.js'), 'public, max-age=3600', 'a plain word is no fingerprint')
  const secs = await serveDir(t, dir, '0', ['-m', '600', '--workers', '1'])
  t.is((await get(secs, '/assets/app.3f9a1c2e.js')).headers['cache-control'], 'public, max-age=600', 'no --immutable: max-age only')
  const own = await serveDir(t, dir, '0', ['--immutable-pattern', '\\.v\\d+\\.js$', '--workers', '1'])
  t.is((await get(own, '/assets/lib.v12.js')).headers['cache-control'], 'public, max-age=31536000, immutable')
  t.is((await get(own, '/assets/app.3f9a1c2e.js')).headers['cache-control'], 'public, max-age=0')
})

test('--extensions and --dotfiles', async (t) => {
  const ext = await serveDir(t, dir, '0', ['--extensions', 'html,htm', '--workers', '1'])
  t.is((await get(ext, '/about')).body.toString(), 'about page\n')
  t.is((await get(ext, '/page')).body.toString(), 'htm page\n')
  t.is((await get(ext, '/nothing')).status, 404)
  const none = await serveDir(t, dir, '0', ['--workers', '1'])
  t.is((await get(none, '/about')).status, 404, 'no extensions by default')
  t.is((await get(none, '/.env')).status, 404, 'dotfiles ignored by default')
  t.is((await get(none, '/.well-known/thing.txt')).status, 404)
  const deny = await serveDir(t, dir, '0', ['--dotfiles', 'deny', '--workers', '1'])
  t.is((await get(deny, '/.env')).status, 403)
  const allow = await serveDir(t, dir, '0', ['--dotfiles', 'allow', '--workers', '1'])
  t.is((await get(allow, '/.well-known/thing.txt')).body.toString(), 'dot dir\n')
  t.regex((await get(allow, '/list/')).body.toString(), /\.hidden/, 'listed when served')
})

test('the listing: escaped, sorted (directories first, numbers in order), sizes, dates, parent link, only what is served, no script', async (t) => {
  const srv = await serveDir(t, dir, '0', ['--workers', '1'])
  const r = await get(srv, '/list/')
  t.is(r.status, 200)
  t.regex(r.headers['content-security-policy'], /default-src 'none'/, 'no script could run even if a name got through')
  const html = r.body.toString()
  t.false(/<script/i.test(html))
  t.false(html.includes('<img'), 'a name is text, never markup')
  t.true(html.includes('&#60;img src=x onerror=alert(1)&#62;.txt'))
  t.regex(html, /<meta name="viewport" content="width=device-width/)
  const names = [...html.matchAll(/<a href="[^"]*">([^<]*)<\/a>/g)].map((m) => m[1])
  t.deepEqual(names, ['../', 'in-link/', 'sub/', '&#60;img src=x onerror=alert(1)&#62;.txt', 'a-lower.txt', 'B-upper.txt', 'file2.txt', 'file10.txt'])
  t.false(html.includes('a-fifo'), 'a FIFO is never served: not listed')
  t.false(html.includes('out-link'), 'a link out of the root is never served: not listed')
  t.false(html.includes('.hidden'), 'dotfiles are not listed unless served')
  t.regex(html, /title="3000 bytes">2\.9 KiB</, 'sizes')
  t.regex(html, /<time datetime="\d{4}-\d\d-\d\dT[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d<\/time>/, 'dates')
  const root = (await get(srv, '/')).body.toString()
  t.is(root, INDEX, 'a directory with index.html is served its index')
  t.is((await get(srv, '/list/sub/')).status, 200)
  t.regex((await get(srv, '/list/sub/')).body.toString(), /<a href="\.\.\/">\.\.\/<\/a>/)
  const off = await serveDir(t, dir, '0', ['--no-listing', '--workers', '1'])
  t.is((await get(off, '/list/')).status, 404, '--no-listing')
})

test('--log json and --log off; --config applies the same settings and flags win', async (t) => {
  const json = await serveDir(t, dir, '0', ['--log', 'json', '--workers', '1'])
  await get(json, '/app.js')
  await get(json, '/nope')
  await waitFor(() => json.stdout().split('\n').filter((l) => l.startsWith('{')).length >= 2, () => `two JSON lines in ${json.stdout()}`, 5000)
  const lines = json.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  t.like(lines[0], { method: 'GET', url: '/app.js', status: 200, bytes: 15, remote: '127.0.0.1' })
  t.like(lines[1], { url: '/nope', status: 404, bytes: 0 })
  t.regex(lines[0].time, /^\d{4}-\d\d-\d\dT/)
  t.is(typeof lines[0].ms, 'number')

  const off = await serveDir(t, dir, '0', ['--log', 'off', '--workers', '1'])
  await get(off, '/app.js')
  await sleep(200)
  t.deepEqual(logLines(off.stdout()), [], '--log off: no lines')

  const cfg = path.join(dir, '..', `${path.basename(dir)}-config.json`)
  fs.writeFileSync(cfg, JSON.stringify({ single: true, cors: true, maxAge: 60, extensions: ['html'], log: 'off', workers: 1 }))
  t.teardown(() => fs.rmSync(cfg, { force: true }))
  const c = await serveDir(t, dir, '0', ['--config', cfg, '--log', 'text'])
  const r = await get(c, '/about')
  t.is(r.body.toString(), 'about page\n', 'extensions from the file')
  t.is(r.headers['cache-control'], 'public, max-age=60', 'maxAge in seconds from the file')
  t.is(r.headers['access-control-allow-origin'], '*')
  t.is((await get(c, '/app/route', { Accept: 'text/html' })).body.toString(), INDEX, 'single from the file')
  await waitFor(() => logLines(c.stdout()).length >= 2, () => 'text lines: --log on the command line wins', 5000)
  t.true(logLines(c.stdout()).every((l) => LOG_LINE.test(l)))
})

/** A self-signed certificate for localhost, or null without openssl. */
function certificate(t: ExecutionContext): { cert: string; key: string } | null {
  const key = path.join(dir, '..', `${path.basename(dir)}-key.pem`)
  const cert = path.join(dir, '..', `${path.basename(dir)}-cert.pem`)
  if (!fs.existsSync(cert)) {
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert], { encoding: 'utf8' })
    if (r.error !== undefined || r.status !== 0) return null
    t.teardown(() => {
      fs.rmSync(key, { force: true })
      fs.rmSync(cert, { force: true })
    })
  }
  return { cert, key }
}

test.serial('--cert/--key serve HTTPS; --http2 serves HTTP/2 (ranges too) and HTTP/1.1', async (t) => {
  const pem = certificate(t)
  if (pem === null) {
    t.log('openssl unavailable: HTTPS checks skipped')
    t.pass()
    return
  }
  const big = Buffer.alloc(300_000)
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff
  fs.writeFileSync(path.join(dir, 'big.bin'), big)
  const tls = await serveDir(t, dir, '0', ['--cert', pem.cert, '--key', pem.key, '--workers', '1'])
  t.regex(tls.url, /^https:\/\//)
  const viaHttps = (port: number, p: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; body: Buffer; alpn: string | false }>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: p, headers, rejectUnauthorized: false, agent: false }, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), alpn: (res.socket as import('node:tls').TLSSocket).alpnProtocol ?? false }))
        })
        .on('error', reject)
    })
  const a = await viaHttps(tls.port, '/big.bin')
  t.is(a.status, 200)
  t.true(a.body.equals(big), 'HTTPS bytes')

  const h2 = await serveDir(t, dir, '0', ['--http2', '--cert', pem.cert, '--key', pem.key, '--workers', '1'])
  const session = http2.connect(h2.url, { rejectUnauthorized: false })
  t.teardown(() => session.destroy())
  const viaH2 = (p: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const s = session.request({ ':path': p, ...headers })
      let head: http2.IncomingHttpHeaders = {}
      const chunks: Buffer[] = []
      s.on('response', (h) => (head = h))
      s.on('data', (c: Buffer) => chunks.push(c))
      s.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }))
      s.on('error', reject)
    })
  const whole = await viaH2('/big.bin')
  t.is(whole.status, 200)
  t.true(whole.body.equals(big), 'HTTP/2 bytes')
  const part = await viaH2('/big.bin', { range: 'bytes=1000-1999' })
  t.is(part.status, 206)
  t.true(part.body.equals(big.subarray(1000, 2000)))
  t.is((await viaH2('/nope')).status, 404)
  t.regex((await viaH2('/list/')).body.toString(), /file10\.txt/, 'the listing over HTTP/2')
  const old = await viaHttps(h2.port, '/app.js')
  t.is(old.body.toString(), 'console.log(1)\n', 'HTTP/1.1 clients still served')
  session.close()
  const exit = await signalAndWait(h2, 'SIGINT', 8000)
  t.is(exit?.code, 0, 'a graceful stop with an HTTP/2 session open')
})

/** The pids whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

test.serial('--workers 2: two workers; one killed with SIGKILL under load is replaced, and clients lose at most what it was serving', async (t) => {
  t.timeout(60_000)
  const body = Buffer.alloc(256 * 1024, 0x5a)
  fs.writeFileSync(path.join(dir, 'load.bin'), body)
  const srv = await serveDir(t, dir, '0', ['--workers', '2', '--log', 'off'])
  const primary = srv.proc.pid as number
  await waitFor(() => childrenOf(primary).length === 2, () => `two workers (have ${childrenOf(primary)})`, 10_000)
  const [victim] = childrenOf(primary)

  const CLIENTS = 8
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS })
  t.teardown(() => agent.destroy())
  let ok = 0
  let okAfter = 0
  let bad = 0
  let failed = 0
  let killed = false
  let killedAt = 0
  const failures: string[] = []
  let running = true
  const client = async () => {
    while (running) {
      try {
        const r = await request(srv.port, { path: '/load.bin' }, { agent, timeoutMs: 10_000 })
        if (r.status === 200 && r.body.equals(body)) {
          ok++
          if (killed) okAfter++
        } else bad++
      } catch (err) {
        failures.push(`${Date.now() - killedAt}ms ${(err as Error).message}`)
        failed++
        await sleep(50) // as a client would before trying again
      }
    }
  }
  const clients = Array.from({ length: CLIENTS }, client)
  // The clients stop whatever happens, so that a failure cannot leave them running.
  t.teardown(() => {
    running = false
  })
  await waitFor(() => ok >= 30, () => `30 responses before the kill (have ${ok})`, 20_000)
  killedAt = Date.now()
  process.kill(victim, 'SIGKILL')
  killed = true
  await waitFor(() => /was killed by SIGKILL; starting another/.test(srv.stderr()), () => `the restart line; stderr: ${srv.stderr()}`, 10_000)
  await waitFor(() => childrenOf(primary).filter((p) => p !== victim).length === 2, () => 'a new second worker', 10_000)
  await sleep(500)
  running = false
  await Promise.all(clients)
  // Served after the restart: fresh connections, a few on each worker.
  for (let i = 0; i < 8; i++) {
    const r = await request(srv.port, { path: '/load.bin' }, { timeoutMs: 10_000 })
    t.is(r.status, 200)
    t.true(r.body.equals(body), 'bytes after the restart')
  }
  t.true(okAfter > 0, 'the load went on after the kill')
  t.is(bad, 0, 'no wrong bytes, no error status')
  t.true(failed <= CLIENTS, `${failed} requests failed; at most the ${CLIENTS} connections could have been on the killed worker`)
  t.log(`${ok} served, ${failed} failed when the worker was killed: ${failures.join('; ')}`)
  t.false(childrenOf(primary).includes(victim))
  const exit = await signalAndWait(srv, 'SIGTERM', 10_000)
  t.is(exit?.code, 0)
})

test('a worker that cannot listen stops the whole server with one line, exit 1', async (t) => {
  const first = await serveDir(t, dir, '0', ['--workers', '1'])
  const second = spawnNode(t, [BIN, 'serve', dir, '--port', String(first.port), '--host', '127.0.0.1', '--workers', '2'])
  const exit = await second.exited
  t.is(exit.code, 1)
  t.is(second.stderr().trim().split('\n').length, 1, second.stderr())
  t.regex(second.stderr(), /address already in use/)
})
