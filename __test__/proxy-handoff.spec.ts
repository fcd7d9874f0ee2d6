// sendFile's hand-off of a body to a front proxy (xSendfile): against a
// real nginx (Debian's nginx-light) started here with an `internal`
// location, as a deployment would have it, and directly (the header, the
// empty body, the mapping rules, the options).

import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as net from 'node:net'
import * as path from 'node:path'

import { type SendFileOptions, type SendFileResult, sendFile } from 'uring-fs'
import { makeTmpDir, randomContent, mulberry32, removeTmpDir, sleep } from './helpers'
import { listen, request } from './http-helpers'

let base = ''
let root = ''
const files = new Map<string, Buffer>()

test.before(() => {
  base = makeTmpDir('handoff')
  root = path.join(base, 'root')
  fs.mkdirSync(path.join(root, 'sub'), { recursive: true })
  const put = (rel: string, data: Buffer) => {
    fs.writeFileSync(path.join(root, rel), data)
    files.set(rel, data)
  }
  put('notes.txt', Buffer.from('some notes\n'.repeat(300)))
  put('big.bin', randomContent(mulberry32(7), 3 << 20))
  put('sub/ünï cødé.txt', Buffer.from('unicode name\n'))
  put('what?.txt', Buffer.from('a question mark\n'))
  fs.writeFileSync(path.join(base, 'secret.txt'), 'outside the root\n')
})

test.after.always(() => removeTmpDir(base))

/** A node:http server answering with sendFile over `root`; keeps the results. */
async function nodeServer(t: import('ava').ExecutionContext, opts: SendFileOptions) {
  const results: Array<Promise<SendFileResult>> = []
  const server = http.createServer((req, res) => {
    results.push(sendFile(req, res, new URL(String(req.url), 'http://x').pathname, { root, ...opts }))
  })
  const l = await listen(server)
  t.teardown(() => l.close())
  return Object.assign(l, { results })
}

function findNginx(): string | null {
  for (const p of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) {
    if (fs.existsSync(p)) return p
  }
  const r = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : null
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
}

test('behind a real nginx: X-Accel-Redirect hands the body over, nginx sends the file, ranges included', async (t) => {
  const nginx = findNginx()
  if (nginx === null) {
    t.log('nginx is not installed (Debian: apt-get install nginx-light): the hand-off is tested directly only')
    t.pass()
    return
  }
  const upstream = await nodeServer(t, { xSendfile: true })
  const prefix = fs.mkdtempSync(path.join(base, 'nginx-'))
  for (const d of ['tmp', 'logs']) fs.mkdirSync(path.join(prefix, d))
  const port = await freePort()
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${prefix}/tmp/${k};`).join('\n  ')
  fs.writeFileSync(
    path.join(prefix, 'nginx.conf'),
    `user root;
worker_processes 1;
pid ${prefix}/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  ${temp}
  types { text/plain txt; application/octet-stream bin; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${upstream.port};
      proxy_set_header X-Sendfile-Type X-Accel-Redirect;
      proxy_set_header X-Accel-Mapping ${root}/=/__files/;
    }
    location /__files/ {
      internal;
      alias ${root}/;
    }
  }
}
`,
  )
  // Its own process group: nginx's worker outlives a master killed with
  // SIGKILL, so the teardown asks the master to stop (SIGTERM: it stops its
  // worker too) and kills what is left of the group after that.
  const child = spawn(nginx, ['-p', prefix, '-e', path.join(prefix, 'logs', 'error.log'), '-c', path.join(prefix, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: 'ignore',
    detached: true,
  })
  t.teardown(async () => {
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGTERM')
    await Promise.race([exited, sleep(5000)])
    try {
      process.kill(-(child.pid as number), 'SIGKILL')
    } catch {
      // the group is gone
    }
  })
  let up = false
  for (let i = 0; i < 100 && !up; i++) {
    up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (!up) await sleep(50)
  }
  if (!up) {
    const log = fs.existsSync(path.join(prefix, 'logs', 'error.log')) ? fs.readFileSync(path.join(prefix, 'logs', 'error.log'), 'utf8') : ''
    t.fail(`nginx did not start: ${log}`)
    return
  }
  for (const rel of ['notes.txt', 'big.bin', 'sub/ünï cødé.txt']) {
    const url = '/' + rel.split('/').map(encodeURIComponent).join('/')
    const r = await request(port, { path: url })
    t.is(r.status, 200, rel)
    t.true(r.body.equals(files.get(rel) as Buffer), `${rel}: nginx sent the file`)
    t.is(r.headers['x-accel-redirect'] as string | undefined, undefined, 'nginx does not pass the header on')
  }
  const part = await request(port, { path: '/big.bin', headers: { Range: 'bytes=1000-1999' } })
  t.is(part.status, 206)
  t.true(part.body.equals((files.get('big.bin') as Buffer).subarray(1000, 2000)))
  // sendFile itself sent no body: the hand-off, not the bytes.
  const results = await Promise.all(upstream.results)
  t.true(results.length >= 4)
  for (const r of results) {
    t.is(r.statusCode, 200)
    t.is(r.bytes, 0)
  }
  // The internal location is not reachable from outside, nor anything beyond the root.
  t.is((await request(port, { path: '/__files/notes.txt' })).status, 404)
  const out = await request(port, { path: '/../secret.txt' })
  t.true(out.status === 400 || out.status === 404, `status ${out.status}`)
  t.false(out.body.includes('outside the root'))
  // A name the header cannot carry is served by sendFile as usual, through nginx.
  const q = await request(port, { path: '/what%3F.txt' })
  t.is(q.status, 200)
  t.true(q.body.equals(files.get('what?.txt') as Buffer))
})

test('the hand-off directly: the header, no body, only for what a mapping covers', async (t) => {
  const fromRequest = await nodeServer(t, { xSendfile: true })
  const asked = { 'X-Sendfile-Type': 'X-Accel-Redirect', 'X-Accel-Mapping': `${root}/=/internal/` }
  const a = await request(fromRequest.port, { path: '/notes.txt', headers: asked })
  t.is(a.status, 200)
  t.is(a.headers['x-accel-redirect'], '/internal/notes.txt')
  t.is(a.headers['content-length'], '0')
  t.is(a.body.length, 0)
  t.is(a.headers['content-type'], 'text/plain; charset=utf-8')
  t.truthy(a.headers.etag)
  // Without the proxy's request headers: the file, as usual.
  const plain = await request(fromRequest.port, { path: '/notes.txt' })
  t.true(plain.body.equals(files.get('notes.txt') as Buffer))
  t.is(plain.headers['x-accel-redirect'] as string | undefined, undefined)
  // A mapping that does not cover the file (not at a '/' boundary, or elsewhere): the file itself.
  for (const mapping of [`${root}x/=/internal/`, '/elsewhere/=/internal/', `${root.slice(0, -1)}=/internal/`, 'garbage']) {
    const r = await request(fromRequest.port, { path: '/notes.txt', headers: { ...asked, 'X-Accel-Mapping': mapping } })
    t.is(r.headers['x-accel-redirect'] as string | undefined, undefined, mapping)
    t.true(r.body.equals(files.get('notes.txt') as Buffer), mapping)
  }
  // An unknown type: the file itself.
  const unknown = await request(fromRequest.port, { path: '/notes.txt', headers: { ...asked, 'X-Sendfile-Type': 'X-Whatever' } })
  t.true(unknown.body.equals(files.get('notes.txt') as Buffer))
  // X-Sendfile with an identity mapping: the absolute path, only because it is mapped.
  const xs = await request(fromRequest.port, { path: '/sub/%C3%BCn%C3%AF%20c%C3%B8d%C3%A9.txt', headers: { 'X-Sendfile-Type': 'X-Sendfile', 'X-Accel-Mapping': `${root}/=${root}/` } })
  t.is(Buffer.from(xs.headers['x-sendfile'] ?? '', 'latin1').toString('utf8'), path.join(root, 'sub', 'ünï cødé.txt'))
  t.is(xs.body.length, 0)
  // Fixed by the options: the request's headers are not needed, nor used.
  const fixed = await nodeServer(t, { xSendfile: { type: 'X-Accel-Redirect', mapping: `${root}=/files` } })
  const f = await request(fixed.port, { path: '/sub/', headers: { 'X-Accel-Mapping': `${root}/=/evil/` } })
  t.is(f.status, 404, 'no index.html in sub/')
  const g = await request(fixed.port, { path: '/notes.txt', headers: { 'X-Accel-Mapping': `${root}/=/evil/` } })
  t.is(g.headers['x-accel-redirect'], '/files/notes.txt')
  // 404s and redirects are sendFile's own, never handed off.
  t.is((await request(fixed.port, { path: '/nothere.txt' })).status, 404)
  t.is((await request(fixed.port, { path: '/sub' })).status, 301)
})

test('xSendfile: bad values are a TypeError', async (t) => {
  const req = {} as http.IncomingMessage
  const res = {} as http.ServerResponse
  for (const bad of ['yes', 1, { type: 'X-Nope' }, { mapping: 3 }, { mapping: 'no pairs here' }]) {
    t.throws(() => sendFile(req, res, '/notes.txt', { root, xSendfile: bad as SendFileOptions['xSendfile'] }), {
      instanceOf: TypeError,
      message: /^xSendfile option must be true, false or/,
    })
  }
})
