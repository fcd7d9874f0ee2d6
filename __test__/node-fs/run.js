#!/usr/bin/env node
// Runs Node's own fs stream tests, as reworded in this folder, against the
// package: each file in a process of its own, on each backend, under each
// Node given. A test passes when its process exits 0 (every mustCall met,
// no assertion failed) within its time limit.
//
//   node __test__/node-fs/run.js                    this Node; io_uring, fallback and node (JS)
//   node __test__/node-fs/run.js --node 22,24,26    also these Node majors (fetched once)
//   node __test__/node-fs/run.js --backend fallback --only read-stream-pos
//
// Which of Node's tests are here, which were adapted and why: README.md,
// "Node's own fs stream tests".
'use strict'
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { makeFixtures } = require('./common-fixtures')
const { nodeBinaries } = require('../../scripts/node-versions')

const { values } = parseArgs({
  options: {
    node: { type: 'string' },
    backend: { type: 'string', default: 'auto,fallback,node' },
    only: { type: 'string' },
    jobs: { type: 'string', default: String(Math.max(2, os.availableParallelism())) },
  },
})

const here = __dirname
const tests = fs
  .readdirSync(here)
  .filter((f) => /\.(m?js)$/.test(f) && !['common.js', 'common-fixtures.js', 'run.js'].includes(f))
  .filter((f) => !values.only || values.only.split(',').some((o) => f.startsWith(o)))
  .sort()

/** Tests that wait on the clock get longer. */
const LIMIT_MS = { 'read-stream-pos.js': 100_000 }
const DEFAULT_LIMIT_MS = 60_000

const nodes = [{ major: Number(process.versions.node.split('.')[0]), bin: process.execPath }]
if (values.node) {
  for (const n of nodeBinaries(values.node)) if (!nodes.some((m) => m.major === n.major)) nodes.push(n)
}
const backends = values.backend.split(',')

const fixtures = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-node-fixtures.'))
makeFixtures(fixtures)

function runOne(node, backend, file) {
  return new Promise((resolve) => {
    const env = { ...process.env, URING_FS_NODE_FIXTURES: fixtures }
    if (backend === 'auto') delete env.URING_FS_BACKEND
    else env.URING_FS_BACKEND = backend
    const started = Date.now()
    const child = spawn(node.bin, [path.join(here, file)], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const limit = LIMIT_MS[file] ?? DEFAULT_LIMIT_MS
    const timer = setTimeout(() => {
      out += `\n(killed after ${limit} ms)`
      child.kill('SIGKILL')
    }, limit)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const skipped = /^1\.\.0 # Skipped/m.test(out)
      resolve({ node, backend, file, ok: code === 0, skipped, code, signal, out, ms: Date.now() - started })
    })
  })
}

async function main() {
  const jobs = []
  for (const node of nodes) for (const backend of backends) for (const file of tests) jobs.push([node, backend, file])
  const results = []
  let next = 0
  const workers = Array.from({ length: Number(values.jobs) }, async () => {
    while (next < jobs.length) {
      const r = await runOne(...jobs[next++])
      results.push(r)
      const tag = r.ok ? (r.skipped ? 'skip' : 'ok  ') : 'FAIL'
      console.log(`${tag} node ${r.node.major} ${r.backend.padEnd(8)} ${r.file} (${r.ms} ms)`)
      if (!r.ok) console.log(r.out.replace(/^/gm, '     | '))
    }
  })
  await Promise.all(workers)
  fs.rmSync(fixtures, { recursive: true, force: true })
  const failed = results.filter((r) => !r.ok)
  console.log(`\n${results.length - failed.length}/${results.length} passed (${tests.length} tests x ${backends.length} backends x Node ${nodes.map((n) => n.major).join(', ')})`)
  process.exitCode = failed.length ? 1 : 0
}

main()
