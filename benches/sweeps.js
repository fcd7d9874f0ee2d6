#!/usr/bin/env node
// How cost grows: uring-fs against fs as one dimension grows, in the same
// run, for the charts of benches/charts.mjs.
//
//   node benches/sweeps.js [--quick] [--rounds 3] [--only size,files,streams]
//
//   size     one cached file read whole, 4 KiB to 1 GiB (quick: to 16 MiB):
//            uring-fs readFile and createReadStream against
//            fs.promises.readFile and fs.createReadStream; GiB/s.
//   files    N cached files of 4 KiB read at once, 10 to 1,000,000 (quick:
//            to 10,000): readFiles against fs.promises.readFile with
//            Promise.all over batches of 1,000 (the best of the small-files
//            benchmark's concurrencies); files per second.
//   streams  N read streams at once (1 to 10,000; quick: to 1,000), each
//            reading one of 1,000 cached files of 256 KiB to its end:
//            throughput of all of them, and the 99th percentile of one
//            stream's time from creation to its 'end'.
//
// Every point runs each variant in turn, round after round (the files read
// once before each round so that they are in the page cache), in one
// process per sweep: a variant's leftovers are collected (node
// --expose-gc, which this script passes to its children) before the next
// one runs. Records go through benches/lib/record.js with params.sweep and
// params.x, which place the point on the chart's axis.
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const u = require('..')
const { record, median } = require('./lib/record')

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    only: { type: 'string', default: 'size,files,streams' },
    child: { type: 'string' },
  },
})
const quick = values.quick
const rounds = Number(values.rounds ?? (quick ? 1 : 3))

const label = (n) => (n >= GiB ? `${n / GiB} GiB` : n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`)
const count = (n) => n.toLocaleString('en-US')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Collects what the last variant left, and lets finalizers run (uring-fs's Buffers go back to its pool then). */
async function settle() {
  if (global.gc) {
    global.gc()
    await sleep(10)
  }
}

/** Reads `paths` once, so that they are in the page cache. */
function warm(paths) {
  for (const p of paths) fs.readFileSync(p)
}

function readStream(create, file) {
  return new Promise((resolve, reject) => {
    let bytes = 0
    create(file)
      .on('data', (c) => (bytes += c.length))
      .on('error', reject)
      .on('end', () => resolve(bytes))
  })
}

/**
 * Times `variants` (name -> async function doing the work once) over
 * `rounds` rounds after one untimed pass each; `prepare(name, round)` runs
 * before each variant (round -1: the untimed pass). Returns name -> seconds
 * per round.
 */
async function timeVariants(variants, prepare) {
  const secs = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
  for (const [name, run] of Object.entries(variants)) {
    prepare(name, -1)
    await run()
    await settle()
  }
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(variants)) {
      prepare(name, r)
      await settle()
      const t0 = process.hrtime.bigint()
      await run()
      secs[name].push(Number(process.hrtime.bigint() - t0) / 1e9)
    }
  }
  return secs
}

async function sweepSize(dir) {
  const sizes = [4 * KiB, 64 * KiB, MiB, 16 * MiB, ...(quick ? [] : [256 * MiB, GiB])]
  console.log(`size: one cached file read whole, ${sizes.map(label).join(' to ')}; GiB/s, median of ${rounds}`)
  for (const size of sizes) {
    const file = path.join(dir, `size-${size}`)
    fs.writeFileSync(file, Buffer.alloc(size, 0x62))
    // Enough repetitions for 64 MiB (at least 2) per timed run.
    const reps = Math.max(2, Math.round((64 * MiB) / size))
    const times = (f) => async () => {
      for (let i = 0; i < reps; i++) await f()
    }
    const variants = {
      'uring-fs readFile': times(() => u.readFile(file)),
      'fs.promises.readFile': times(() => fs.promises.readFile(file)),
      'uring-fs createReadStream': times(() => readStream(u.createReadStream, file)),
      'fs.createReadStream': times(() => readStream(fs.createReadStream, file)),
    }
    const secs = await timeVariants(variants, () => warm([file]))
    const line = []
    for (const [name, xs] of Object.entries(secs)) {
      const gibs = xs.map((s) => (reps * size) / s / GiB)
      const api = name.includes('Stream') ? 'createReadStream' : 'readFile'
      record({
        bench: 'sweeps',
        case: `${api}, one file of ${label(size)}`,
        variant: name.startsWith('uring-fs') ? 'uring-fs' : name,
        role: name.startsWith('uring-fs') ? 'subject' : 'baseline',
        unit: 'GiB/s',
        samples: gibs,
        params: { sweep: 'size', api, x: size, size },
      })
      line.push(`${name} ${median(gibs).toFixed(2)}`)
    }
    console.log(`  ${label(size).padStart(8)}: ${line.join(', ')} GiB/s`)
    fs.unlinkSync(file)
  }
}

async function sweepFiles(dir) {
  const counts = [10, 100, 1000, 10000, ...(quick ? [] : [100000, 1000000])]
  const size = 4 * KiB
  console.log(`files: N cached files of 4 KiB read at once, ${counts.map(count).join(' to ')}; files/s, median of ${rounds}`)
  const data = Buffer.alloc(size, 0x63)
  const all = []
  for (const n of counts) {
    // The set grows: files written once, in directories of 10,000.
    while (all.length < n) {
      const sub = path.join(dir, `d${Math.floor(all.length / 10000)}`)
      if (all.length % 10000 === 0) fs.mkdirSync(sub, { recursive: true })
      const p = path.join(sub, `f${all.length}`)
      fs.writeFileSync(p, data)
      all.push(p)
    }
    const paths = all.slice(0, n)
    const variants = {
      'uring-fs readFiles': () => u.readFiles(paths),
      'fs.promises.readFile': async () => {
        for (let i = 0; i < paths.length; i += 1000) await Promise.all(paths.slice(i, i + 1000).map((p) => fs.promises.readFile(p)))
      },
    }
    const secs = await timeVariants(variants, () => warm(paths))
    const line = []
    for (const [name, xs] of Object.entries(secs)) {
      const rate = xs.map((s) => n / s)
      record({
        bench: 'sweeps',
        case: `${count(n)} files of 4 KiB`,
        variant: name.startsWith('uring-fs') ? 'uring-fs' : name,
        role: name.startsWith('uring-fs') ? 'subject' : 'baseline',
        unit: 'files/s',
        samples: rate,
        params: { sweep: 'files', api: 'readFiles', x: n, files: n, size },
      })
      line.push(`${name} ${Math.round(median(rate)).toLocaleString('en-US')}`)
    }
    console.log(`  ${count(n).padStart(9)}: ${line.join(', ')} files/s`)
  }
}

async function sweepStreams(dir) {
  const ns = [1, 10, 100, 1000, ...(quick ? [] : [10000])]
  const size = 256 * KiB
  const nfiles = 1000
  console.log(`streams: N read streams at once over ${nfiles} cached files of ${label(size)}, ${ns.map(count).join(' to ')}; median of ${rounds}`)
  const files = []
  for (let i = 0; i < nfiles; i++) {
    const p = path.join(dir, `s${i}`)
    fs.writeFileSync(p, Buffer.alloc(size, 0x64))
    files.push(p)
  }
  for (const n of ns) {
    const lat = { 'uring-fs': [], 'fs.createReadStream': [] }
    const one = (create, i, into) => {
      const t0 = process.hrtime.bigint()
      return readStream(create, files[i % nfiles]).then(() => into.push(Number(process.hrtime.bigint() - t0) / 1e6))
    }
    const variants = {
      'uring-fs': () => Promise.all(Array.from({ length: n }, (_, i) => one(u.createReadStream, i, lat['uring-fs']))),
      'fs.createReadStream': () => Promise.all(Array.from({ length: n }, (_, i) => one(fs.createReadStream, i, lat['fs.createReadStream']))),
    }
    const secs = await timeVariants(variants, (name, round) => {
      warm(files.slice(0, Math.min(n, nfiles)))
      // The timed rounds' streams only.
      if (round <= 0) lat[name] = []
    })
    const line = []
    for (const [name, xs] of Object.entries(secs)) {
      const gibs = xs.map((s) => (n * size) / s / GiB)
      const sorted = [...lat[name]].sort((a, b) => a - b)
      const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]
      record({
        bench: 'sweeps',
        case: `${count(n)} read streams at once`,
        variant: name,
        role: name === 'uring-fs' ? 'subject' : 'baseline',
        unit: 'GiB/s',
        samples: gibs,
        params: { sweep: 'streams', api: 'createReadStream', x: n, streams: n, size },
        extra: { p99Ms: p99 },
      })
      line.push(`${name} ${median(gibs).toFixed(2)} GiB/s p99 ${p99.toFixed(1)} ms`)
    }
    console.log(`  ${count(n).padStart(7)}: ${line.join(', ')}`)
  }
}

const SWEEPS = { size: sweepSize, files: sweepFiles, streams: sweepStreams }

async function child(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `uring-fs-sweep-${name}-`))
  try {
    await SWEEPS[name](dir)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function main() {
  console.log(`sweeps: ${quick ? 'quick' : 'full'} mode, node ${process.version}, backend ${u.backend()}`)
  for (const name of values.only.split(',')) {
    if (!SWEEPS[name]) throw new Error(`--only: size, files or streams, not ${name}`)
    const args = ['--expose-gc', __filename, '--child', name, '--rounds', String(rounds), ...(quick ? ['--quick'] : [])]
    const r = spawnSync(process.execPath, args, { stdio: 'inherit' })
    if (r.status !== 0) process.exit(r.status ?? 1)
  }
}

if (values.child) {
  child(values.child).catch((e) => {
    console.error(e)
    process.exit(1)
  })
} else {
  main()
}
