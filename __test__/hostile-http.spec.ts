// sendFile against clients that do not play along (issue 18's hostile
// HTTP): what each costs the server while it lasts, and that the others are
// still served meanwhile. Serial: the tests count the process's descriptors
// and nothing else may open any alongside.

import test from 'ava'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as net from 'node:net'
import * as path from 'node:path'

import { sendFile } from 'uring-fs'
import { BACKEND, fdCount, makeTmpDir, removeTmpDir, settleFdCount, sleep } from './helpers'

const MiB = 1024 * 1024
let root = ''

test.before(() => {
  root = makeTmpDir('hostile-http')
  // Random bytes: nothing between the file and the socket can shrink them.
  const big = Buffer.alloc(64 * MiB)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i)
  fs.writeFileSync(path.join(root, 'big.bin'), big)
  fs.writeFileSync(path.join(root, 'small.txt'), 'small\n')
})
test.after.always(() => removeTmpDir(root))

async function startServer(): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    sendFile(req, res, req.url ?? '/', { root }).catch(() => res.destroy())
  })
  server.on('clientError', (_e, socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as AddressInfo).port }
}

function getSmall(port: number): Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now()
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/small.txt', agent: false, timeout: 5000 }, (res) => {
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: Date.now() - t0 }))
    })
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')))
    req.on('error', reject)
  })
}

// A response whose client stopped reading holds the socket, the engine's
// duplicate of it and the file; before, it also held a splice pipe (two
// more descriptors) for as long as it waited, so that at `ulimit -n 1024`
// about 200 such clients used up every descriptor.
test.serial('clients that never read a 64 MiB body: at most 2 descriptors each besides the socket, all back once they go, others served', async (t) => {
  const { server, port } = await startServer()
  t.teardown(() => server.close())
  // A connection made and answered once, so that Node's lazily made
  // descriptors (and the engine's) exist before the count.
  t.is((await getSmall(port)).status, 200)
  // And the big file served once whole: its entry in sendFile's cache
  // (which keeps a descriptor of it) exists before the count too.
  await new Promise<void>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/big.bin', agent: false }, (res) => res.resume().on('end', resolve)).on('error', reject)
  })
  await sleep(100)
  const base = fdCount()
  const N = 150
  const clients: net.Socket[] = []
  for (let i = 0; i < N; i++) {
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => {})
    s.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n')
    s.pause() // never read: the server fills the socket's buffers and waits
    clients.push(s)
  }
  t.teardown(() => clients.forEach((s) => s.destroy()))
  // Until every response is waiting for room (the count stops moving).
  let held = fdCount()
  for (let i = 0; i < 50; i++) {
    await sleep(100)
    const now = fdCount()
    if (now === held && now - base >= 2 * N) break
    held = now
  }
  // Each client: its own socket here, the server's socket, and what the
  // response holds besides.
  const besides = (held - base) / N - 2
  t.log(`${BACKEND}: ${held - base} descriptors for ${N} stalled clients (${besides.toFixed(2)} each besides both sockets)`)
  t.true(besides <= 2.05, `${besides.toFixed(2)} descriptors per stalled response besides the socket`)
  const small = await getSmall(port)
  t.is(small.status, 200)
  t.is(small.body, 'small\n')
  t.true(small.ms < 1000, `a well-behaved client waited ${small.ms} ms`)
  for (const s of clients) s.destroy()
  const after = await settleFdCount(base, 10_000)
  if (after !== base) t.log(fs.readdirSync('/proc/self/fd').map((fd) => { try { return fs.readlinkSync(`/proc/self/fd/${fd}`) } catch { return '?' } }).reduce<Record<string, number>>((m, k) => ((m[k.replace(/\[\d+\]/, '[]')] = (m[k.replace(/\[\d+\]/, '[]')] ?? 0) + 1), m), {}))
  t.is(after, base, `every descriptor back once the clients are gone (${after - base} more)`)
})
