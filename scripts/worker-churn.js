#!/usr/bin/env node
// Worker threads that end with uring-fs I/O in flight, over and over: each
// round starts 4 workers with read streams of 1 MiB chunks, a write stream,
// readFile, writeFile and readFiles running, then ends each at a random
// moment, by worker.terminate() or by process.exit() inside it. Passes when
// every worker ended (no hang), the process's descriptors are back to their
// count before the first round (on the native backends), and no error
// reached the main thread.
//
// What it is for: running that teardown under a memory checker
// (scripts/memcheck.sh runs it under valgrind), where a Buffer freed while
// the kernel still reads into it, or a use after free in the addon's
// per-thread cleanup, would show. The ava suite (lifecycle.spec.ts) checks
// the same teardown's outcome at full speed.
//
//   node scripts/worker-churn.js                 # 25 rounds (100 workers)
//   node scripts/worker-churn.js --rounds 5
//   node scripts/worker-churn.js --fs     # the same with Node's fs (the baseline)
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { Worker } = require('node:worker_threads')

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '25' }, fs: { type: 'boolean', default: false } } })
const rounds = Number(values.rounds)
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error(`--rounds must be a positive integer, not ${values.rounds}`)
  process.exit(2)
}

const REPO = path.join(__dirname, '..')
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-churn-'))
const big = path.join(dir, 'big.bin')
const small = path.join(dir, 'small.bin')
fs.writeFileSync(big, Buffer.alloc(8 << 20, 3))
fs.writeFileSync(small, Buffer.alloc(3000, 4))

const IMPL = values.fs
  ? `(() => { const fs = require('node:fs'); return { createReadStream: fs.createReadStream, createWriteStream: fs.createWriteStream,
      readFile: fs.promises.readFile, writeFile: fs.promises.writeFile, readFiles: (ps) => Promise.all(ps.map((p) => fs.promises.readFile(p))) } })()`
  : `require(${JSON.stringify(REPO)})`
const BODY = `
const u = ${IMPL}
const { parentPort, threadId, workerData } = require('node:worker_threads')
const { dir, big, small, exitAfter } = workerData
const ignore = () => {}
for (let i = 0; i < 4; i++) {
  u.createReadStream(big, { highWaterMark: 1 << 20, start: i << 21 }).on('data', ignore).on('error', ignore)
}
const chunk = Buffer.alloc(1 << 20, 7)
const ws = u.createWriteStream(dir + '/w-' + threadId + '.bin').on('error', ignore)
;(function more() { while (ws.write(chunk)) {} ws.once('drain', more) })()
const again = (f) => { const go = () => f().then(go, ignore); go() }
again(() => u.readFile(big))
again(() => u.writeFile(dir + '/wf-' + threadId + '.bin', chunk))
again(() => u.readFiles([small, big, small]))
parentPort.postMessage('running')
if (exitAfter !== null) setTimeout(() => process.exit(7), exitAfter)
`

const fdCount = () => fs.readdirSync('/proc/self/fd').length
/** What each open descriptor is (for the report of a leak). */
const fdTargets = () =>
  Object.fromEntries(
    fs.readdirSync('/proc/self/fd').map((fd) => {
      try {
        return [fd, fs.readlinkSync(`/proc/self/fd/${fd}`)]
      } catch {
        return [fd, '?']
      }
    }),
  )
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

let terminated = 0
let exited = 0

/** `count` workers with I/O in flight, each ended at a random moment. */
async function round(r, count) {
  const ends = []
  for (let i = 0; i < count; i++) {
    const byExit = Math.random() < 0.5
    const wait = Math.floor(Math.random() * 40)
    const w = new Worker(BODY, { eval: true, workerData: { dir, big, small, exitAfter: byExit ? wait : null } })
    ends.push(
      new Promise((resolve, reject) => {
        w.once('error', reject)
        w.once('exit', resolve)
        w.once('message', () => {
          if (!byExit) sleep(wait).then(() => w.terminate())
        })
      }),
    )
    if (r < 0) continue // the warm-up
    if (byExit) exited++
    else terminated++
  }
  // A worker that does not end within 60 s (valgrind makes everything
  // some 30 times slower) is a hang.
  let timer
  const hang = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`round ${r}: a worker did not end within 60 s`)), 60_000)
  })
  await Promise.race([Promise.all(ends), hang])
  clearTimeout(timer)
}

async function main() {
  // The engine (its ring, eventfd, threads) starts before the baseline, and
  // so does what Node itself keeps once a first worker ended (/dev/null).
  await require(REPO).readFile(small)
  await round(-1, 1)
  const before = fdCount()
  const openBefore = fdTargets()
  for (let r = 0; r < rounds; r++) await round(r, 4)
  // The last reads of a terminated worker come back a moment after it ended.
  const deadline = Date.now() + 5000
  while (fdCount() > before && Date.now() < deadline) await sleep(20)
  const after = fdCount()
  const left = Object.entries(fdTargets())
    .filter(([fd, what]) => openBefore[fd] !== what)
    .map(([fd, what]) => `${fd} -> ${what}`)
  fs.rmSync(dir, { recursive: true, force: true })
  // The JavaScript fallback is fs, and fs.promises leaves the handles of a
  // worker ended in the middle of readFile or writeFile open (Node's own
  // behaviour: --fs shows it): there, only the report counts.
  const backend = values.fs ? 'fs' : require(REPO).backend()
  const ok = after <= before || backend === 'node' || backend === 'fs'
  console.log(JSON.stringify({ ok, backend, workers: terminated + exited, terminated, exited, fds: { before, after, left } }))
  process.exit(ok ? 0 : 1)
}

main().catch((e) => {
  console.error(e)
  fs.rmSync(dir, { recursive: true, force: true })
  process.exit(1)
})
