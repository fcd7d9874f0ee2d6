// The Bun the benchmarks compare with. Bun is not a dependency of the
// project (its binary is about 100 MB): a bun in node_modules/.bin or on
// PATH is used when it runs; otherwise, on Linux x64, the newest
// `@oven/bun-linux-x64` (the package `npm install bun` picks for this
// platform, which carries the binary) is fetched from npm once into
// .cache/bun/, as scripts/node-versions.js fetches Node. Elsewhere, or
// without the registry, the Bun cases are skipped with the reason printed.
//
//   URING_FS_BENCH_BUN=/path/to/bun   use that one
//   URING_FS_BENCH_BUN=no             skip Bun
'use strict'

const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { packageBinary } = require('../../scripts/node-versions')

const CACHE = path.join(__dirname, '..', '..', '.cache', 'bun')

let found = null

/** `bin --version`, or null with why not. */
function probe(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  if (r.status === 0) return { bin, version: r.stdout.trim() }
  return { bin: null, why: r.error ? `${bin}: ${r.error.code}` : `${bin} --version failed: ${(r.stderr || '').trim().split('\n')[0]}` }
}

/** Fetches @oven/bun-linux-x64 into .cache/bun (once) and returns its binary. */
function fetchBun() {
  return packageBinary('@oven/bun-linux-x64', CACHE, 'bin/bun')
}

/** { bin, version } of a bun that runs, or { bin: null, why }. */
function findBun() {
  if (found) return found
  const env = process.env.URING_FS_BENCH_BUN
  if (env === 'no') return (found = { bin: null, why: 'URING_FS_BENCH_BUN=no' })
  if (env) return (found = probe(env))
  let why = 'no bun'
  for (const c of [path.join(__dirname, '..', '..', 'node_modules', '.bin', 'bun'), 'bun']) {
    const p = probe(c)
    if (p.bin) return (found = p)
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return (found = { bin: null, why: `no bun in node_modules/.bin or on PATH, and none is fetched on ${process.platform}-${process.arch}` })
  }
  try {
    const p = probe(fetchBun())
    if (p.bin) return (found = p)
    why = p.why
  } catch (e) {
    why = `fetching @oven/bun-linux-x64 from npm failed: ${e.message.split('\n')[0]}`
  }
  return (found = { bin: null, why })
}

module.exports = { findBun }
