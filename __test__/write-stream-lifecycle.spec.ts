// Write streams around the edges of a thread's life: on io_uring their
// batches go to a ring of the JavaScript thread's own, completed from its
// event loop. Worker threads (each with its own ring), a process or worker
// that ends with writes out, a callback that throws, and more streams at
// once than that ring has room for must all behave as fs does: the right
// bytes, no crash, errors where Node puts them.

import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { once } from 'node:events'

import { backend, createWriteStream, stats } from 'uring-fs'
import { REPO, spawnAsync } from './helpers'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-wsl-'))
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }))

function pattern(seed: number, size: number): Buffer {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i++) b[i] = (i * 131 + seed * 7 + (i >> 9)) & 0xff
  return b
}

test('300 streams at once, each in many chunks: every file is its bytes', async (t) => {
  const before = stats()
  const files = Array.from({ length: 300 }, (_, i) => ({ p: path.join(dir, `many-${i}`), data: pattern(i, 40_000 + i * 17) }))
  await Promise.all(
    files.map(async ({ p, data }) => {
      const ws = createWriteStream(p)
      for (let at = 0; at < data.length; at += 3000) {
        if (!ws.write(data.subarray(at, at + 3000))) await once(ws, 'drain')
      }
      ws.end()
      await once(ws, 'close')
    }),
  )
  for (const { p, data } of files) t.true(fs.readFileSync(p).equals(data), p)
  const after = stats()
  // On the JavaScript fallback fs writes: the engine counts nothing.
  if (backend() !== 'node') t.true(after.bytesWritten - before.bytesWritten >= files.reduce((n, f) => n + f.data.length, 0))
})

const WORKER_BODY = `
const { workerData, parentPort } = require('worker_threads')
const path = require('path')
const { repo, dir, mode, i } = workerData
const { createWriteStream } = require(repo)
const chunk = Buffer.alloc(65536, 97 + i)
const ws = createWriteStream(path.join(dir, 'worker-' + mode + '-' + i))
let n = 0
const more = () => {
  while (n < 256) {
    n++
    if (n === 8) parentPort.postMessage('writing')
    if (!ws.write(chunk)) return ws.once('drain', more)
  }
  ws.end()
}
ws.on('close', () => process.exit(0))
more()
`

const WORKER_SCRIPT = `
const { Worker } = require('worker_threads')
const [repo, dir, mode, body] = process.argv.slice(1)
const done = []
for (let i = 0; i < 4; i++) {
  const w = new Worker(body, { eval: true, workerData: { repo, dir, mode, i } })
  done.push(new Promise((resolve) => {
    w.on('message', (m) => { if (m === 'writing' && mode === 'terminate') w.terminate() })
    w.on('exit', (code) => resolve(code))
    w.on('error', (e) => { console.error('worker error', e); resolve(99) })
  }))
}
Promise.all(done).then((codes) => console.log(JSON.stringify({ codes })))
`

test('worker threads: each writes its own file; terminated mid-stream, no crash', async (t) => {
  for (const mode of ['finish', 'terminate']) {
    const res = await spawnAsync(process.execPath, ['-e', WORKER_SCRIPT, REPO, dir, mode, WORKER_BODY], { timeoutMs: 60_000 })
    t.is(res.status, 0, `${mode}: ${res.error ?? ''} ${res.stderr}`)
    const { codes } = JSON.parse(res.stdout) as { codes: number[] }
    t.is(codes.length, 4)
    if (mode === 'finish') {
      t.deepEqual(codes, [0, 0, 0, 0])
      for (let i = 0; i < 4; i++) {
        t.true(fs.readFileSync(path.join(dir, `worker-finish-${i}`)).equals(Buffer.alloc(256 * 65536, 97 + i)), `worker ${i}`)
      }
    } else {
      t.false(codes.includes(99), 'no worker error')
    }
  }
})

test('the process exits with writes out: exit code as asked, no crash', async (t) => {
  const script = `
const { createWriteStream } = require(process.argv[1])
const ws = createWriteStream(process.argv[2])
const chunk = Buffer.alloc(1 << 20, 120)
for (let i = 0; i < 16; i++) ws.write(chunk)
setImmediate(() => process.exit(7))
`
  const res = await spawnAsync(process.execPath, ['-e', script, REPO, path.join(dir, 'exit-mid')], { timeoutMs: 30_000 })
  t.is(res.status, 7, res.stderr)
  t.is(res.stderr, '')
})

test('a write callback that throws is an uncaught exception, as with fs', async (t) => {
  const script = `
const [repo, file, impl] = process.argv.slice(1)
const { createWriteStream } = impl === 'fs' ? require('fs') : require(repo)
process.on('uncaughtException', (e) => { console.log(JSON.stringify({ caught: e.message })); process.exit(0) })
const ws = createWriteStream(file)
ws.write('x', () => { throw new Error('boom from the callback') })
`
  const outs: unknown[] = []
  for (const impl of ['fs', 'uring-fs']) {
    const res = await spawnAsync(process.execPath, ['-e', script, REPO, path.join(dir, `throw-${impl}`), impl], {
      timeoutMs: 30_000,
    })
    t.is(res.status, 0, `${impl}: ${res.stderr}`)
    outs.push(JSON.parse(res.stdout))
  }
  t.deepEqual(outs[0], { caught: 'boom from the callback' }, 'fs (harness check)')
  t.deepEqual(outs[1], outs[0])
})

test('a stream given an fd writes at its current position, moved by others in between, as fs', async (t) => {
  const results: Buffer[] = []
  for (const impl of ['fs', 'uring-fs'] as const) {
    const p = path.join(dir, `shared-fd-${impl}`)
    fs.writeFileSync(p, '0123456789')
    const fd = fs.openSync(p, 'r+')
    const make = impl === 'fs' ? fs.createWriteStream : createWriteStream
    const ws = make(p, { fd, autoClose: false } as never) as fs.WriteStream
    await new Promise<void>((resolve) => ws.write('ab', () => resolve()))
    // Someone else moves the position: fs's next write lands there.
    fs.writeSync(fd, 'XY')
    await new Promise<void>((resolve) => ws.write('cd', () => resolve()))
    fs.closeSync(fd)
    results.push(fs.readFileSync(p))
  }
  t.is(results[0]!.toString(), 'abXYcd6789', 'fs (harness check)')
  t.is(results[1]!.toString(), results[0]!.toString())
  t.log({ backend: backend() })
})
