#!/usr/bin/env node
// Many small files: uring-fs readFiles and readFilesEach against
// fs.promises.readFile with Promise.all (concurrency 64 and 1,000, the best
// reported) and against fs.readFileSync in a loop, all variants of a set in
// the same process and run, median of rounds. In the cached mode, also Bun's
// Bun.file(p).arrayBuffer() with Promise.all (concurrency 64 and 1,000),
// each round in a bun process of its own after the Node variants
// (benches/bun-reads.js, when a bun runs: benches/lib/bun.js). Two sets: 10,000 files of 4 KiB
// and 1,000 of 64 KiB, each set and mode in a process of its own.
//
//   node [--expose-gc] benches/small-files.js [--rounds 5] [--mode both|cached|cold]
//                                             [--files N --size BYTES]   (one set instead)
//
// Two modes for each set:
//   cached  the files are written once and read once more before each round,
//           so every variant finds them in the page cache;
//   cold    every variant reads files written just before it (the old ones
//           removed, new ones written, then timed at once): new inodes and
//           dentries, pages still dirty. Not a dropped page cache, which would
//           need root and disturb the whole machine, but the case of reading
//           what was just produced (a build's output, an extracted archive).
// Printed: files per second, ratios, and operations per io_uring_enter for
// the uring-fs variants.

'use strict'
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const u = require('..')
const { record, roleOf } = require('./lib/record')
const { findBun } = require('./lib/bun')

const BUN_CONCURRENCIES = [64, 1000]

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : def
}
const rounds = Number(opt('rounds', 5))
const mode = opt('mode', 'both')
const sets =
  opt('files') !== undefined || opt('size') !== undefined
    ? [{ count: Number(opt('files', 10000)), size: Number(opt('size', 4096)) }]
    : [
        { count: 10000, size: 4096 },
        { count: 1000, size: 65536 },
      ]
const modes = mode === 'both' ? ['cached', 'cold'] : [mode]
if (!modes.every((m) => m === 'cached' || m === 'cold')) throw new Error(`--mode: both, cached or cold, not ${mode}`)

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** The variants, each reading every file of `paths` once. */
function variants(paths) {
  const promisesAll = (c) => async () => {
    for (let i = 0; i < paths.length; i += c) await Promise.all(paths.slice(i, i + c).map((p) => fs.promises.readFile(p)))
  }
  // In this order, also from one round to the next, the two uring-fs
  // variants never run back to back: the second would find the buffer
  // pool's memory still held by the first's uncollected Buffers (see the
  // note on gc in runSet).
  return {
    'uring-fs readFiles': () => u.readFiles(paths),
    'fs.promises c=64': promisesAll(64),
    'uring-fs readFilesEach': async () => {
      for await (const _ of u.readFilesEach(paths)) {
        // Results are dropped as they come, as a streaming consumer would.
      }
    },
    'fs.promises c=1000': promisesAll(1000),
    'fs.readFileSync loop': async () => {
      for (const p of paths) fs.readFileSync(p)
    },
  }
}

async function runSet(dir, count, size, mode) {
  const data = Buffer.alloc(size, 0x61)
  let generation = 0
  let paths = []
  // A fresh set of files under new names, the previous set removed first.
  const writeAll = () => {
    for (const p of paths) fs.unlinkSync(p)
    generation++
    paths = []
    for (let i = 0; i < count; i++) {
      const p = path.join(dir, `g${generation}-f${i}`)
      fs.writeFileSync(p, data)
      paths.push(p)
    }
  }
  writeAll()
  const bun = mode === 'cached' ? findBun() : { bin: null, why: 'not in the cold mode' }
  const bunNames = bun.bin ? BUN_CONCURRENCIES.map((c) => `bun c=${c}`) : []
  const names = Object.keys(variants(paths))
  const res = Object.fromEntries([...names, ...bunNames].map((k) => [k, []]))
  const uring = Object.fromEntries(names.filter((k) => k.startsWith('uring-fs')).map((k) => [k, { ops: 0, enters: 0 }]))
  // One untimed pass of each variant first, as benches/read-stream.js does,
  // so that each is measured with its allocator (for uring-fs, the buffer
  // pool's arenas) warm rather than faulting in fresh memory.
  for (const name of names) await variants(paths)[name]()
  for (let r = 0; r < rounds; r++) {
    if (mode === 'cached') for (const p of paths) fs.readFileSync(p)
    for (const name of names) {
      if (mode === 'cold') writeAll()
      const run = variants(paths)[name]
      // Under node --expose-gc, the previous variant's Buffers are collected
      // first, and their finalizers (which Node runs on a later turn of the
      // loop) given a turn: uring-fs Buffers go back to its buffer pool only
      // then, and a variant that runs while 64 MB of them are still out pays
      // fresh-page faults that belong to the one before it.
      if (global.gc) {
        global.gc()
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      const s0 = u.stats()
      const t0 = process.hrtime.bigint()
      await run()
      res[name].push(count / (Number(process.hrtime.bigint() - t0) / 1e9))
      if (uring[name]) {
        const s1 = u.stats()
        uring[name].ops += s1.ops - s0.ops
        uring[name].enters += s1.enters - s0.enters
      }
    }
    if (bun.bin) {
      const list = path.join(dir, 'paths.txt')
      fs.writeFileSync(list, paths.join('\n'))
      for (const c of BUN_CONCURRENCIES) {
        const out = spawnSync(bun.bin, [path.join(__dirname, 'bun-reads.js'), 'files', list, String(c)], { encoding: 'utf8' })
        if (out.status !== 0) throw new Error(`bun c=${c} failed: ${out.stderr}`)
        res[`bun c=${c}`].push(JSON.parse(out.stdout).filesPerSec)
      }
      fs.rmSync(list)
    }
  }
  for (const p of paths) fs.unlinkSync(p)
  // The cold mode leaves hundreds of MB written and removed behind it; let
  // the kernel finish that writeback now, untimed, rather than on the CPUs
  // of the next set's measurements.
  execFileSync('sync')

  const label = mode === 'cached' ? 'cached' : 'cold-ish (just written)'
  console.log(`small files: ${count} x ${size} B ${label}, median of ${rounds}${global.gc ? ', gc between variants' : ''}, backend ${u.backend()}, node ${process.version}`)
  if (mode === 'cached') console.log(bun.bin ? `  bun ${bun.version}: Bun.file(p).arrayBuffer(), a process of its own each round` : `  (bun: ${bun.why}; skipped)`)
  for (const name of [...names, ...bunNames]) console.log(`  ${name.padEnd(24)} ${String(Math.round(median(res[name]))).padStart(8)} files/s`)
  const sizeLabel = size >= 1024 ? `${size >> 10} KiB` : `${size} B`
  for (const name of [...names, ...bunNames]) {
    const other = name.startsWith('bun') ? { backend: null, extra: { bun: bun.version } } : {}
    record({ bench: 'small-files', case: `${count} files of ${sizeLabel}, ${mode}`, variant: name, role: roleOf(name), unit: 'files/s', samples: res[name], params: { files: count, size, mode }, ...other })
  }
  const ours = median(res['uring-fs readFiles'])
  const each = median(res['uring-fs readFilesEach'])
  const bestPromises = Math.max(median(res['fs.promises c=64']), median(res['fs.promises c=1000']))
  const sync = median(res['fs.readFileSync loop'])
  console.log(`  readFiles vs best fs.promises       ${(ours / bestPromises).toFixed(2)}x`)
  console.log(`  readFiles vs fs.readFileSync        ${(ours / sync).toFixed(2)}x`)
  console.log(`  readFilesEach vs best fs.promises   ${(each / bestPromises).toFixed(2)}x`)
  console.log(`  readFilesEach vs readFiles          ${(each / ours).toFixed(2)}x`)
  if (bunNames.length) console.log(`  readFiles vs best bun               ${(ours / Math.max(...bunNames.map((n) => median(res[n])))).toFixed(2)}x`)
  for (const [name, { ops, enters }] of Object.entries(uring)) {
    if (enters > 0) console.log(`  ${name.slice('uring-fs '.length)}: ${(ops / enters).toFixed(1)} operations per io_uring_enter`)
  }
}

// Each set and mode runs in a process of its own: the buffer pool keeps free
// buffers per size class within one budget, so the 4 KiB set's leftovers
// would make the 64 KiB set that follows it fault in fresh memory.
async function child(count, size, mode) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-small-'))
  try {
    await runSet(dir, count, size, mode)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function main() {
  for (const { count, size } of sets) {
    for (const m of modes) {
      const argv = [...process.execArgv, __filename, '--child', String(count), String(size), m, '--rounds', String(rounds)]
      const r = spawnSync(process.execPath, argv, { stdio: 'inherit' })
      if (r.status !== 0) process.exit(r.status ?? 1)
    }
  }
}

if (args[0] === '--child') {
  child(Number(args[1]), Number(args[2]), args[3]).catch((e) => {
    console.error(e)
    process.exit(1)
  })
} else {
  main()
}
