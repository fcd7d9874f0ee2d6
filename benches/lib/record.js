// What every benchmark records besides what it prints: one JSON object per
// measured variant of a case, appended as a line to the file named by
// URING_FS_BENCH_RECORD (set by benches/run.js; without it, nothing is
// written and the benchmark only prints). benches/run.js gathers the lines
// into benches/results/<date>-<machine>.json and benches/charts.js draws
// from them, so the field names below are the contract between the three.
//
// A record:
//   bench     the script: 'read-stream', 'write-stream', 'small-files',
//             'http', 'sweeps'
//   case      what is measured, the same for every variant compared with
//             each other in one chart or table row: e.g. 'read 1 GiB,
//             64 KiB chunks', 'GET 4 KiB, 32 connections'
//   variant   who: 'uring-fs', 'fs', 'fs.promises', 'send', 'fastify',
//             'memory', 'nginx', 'bun', 'fio psync', 'fio io_uring', ...
//   role      'subject' (uring-fs in any form), 'baseline' (what it is
//             compared with) or 'limit' (what nothing can beat: fio, the
//             in-memory server)
//   unit      of `samples`: 'GiB/s', 'req/s', 'files/s', 'ops/s', 'ms'
//   higher    true when a higher value is better (false for latencies)
//   samples   every round's value, in the order measured
//   median, min, max   of samples
//   params    numbers that place the case on a chart axis: { size, chunk,
//             files, connections, streams } (bytes and counts), and
//             anything else that tells cases apart
//   extra     optional figures of the variant: { cpuPerGiB, p99Ms, ... }
//   node      process.version of the Node that ran the variant
//   backend   uring-fs's backend ('io_uring', 'fallback', 'node'), or null
//   run       which pass of benches/run.js measured it: the Node version,
//             and the backend when run.js was asked for several
//             (URING_FS_BENCH_RUN); what the charts group ratios by
'use strict'

const fs = require('node:fs')

/** The median of `xs` (the mean of the two middle values for an even count). */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** The backend uring-fs runs on in this process, or null when it cannot load. */
function backendName() {
  try {
    return require('../..').backend()
  } catch {
    return null
  }
}

/**
 * Appends one record (see the top of this file) when URING_FS_BENCH_RECORD
 * names a file. `node` and `backend` default to this process's; pass them
 * when a child process measured the variant under another Node.
 */
function record({ bench, case: caseName, variant, role, unit, higher = true, samples, params = {}, extra = {}, node = process.version, backend }) {
  const file = process.env.URING_FS_BENCH_RECORD
  if (!file) return
  const xs = samples.filter((x) => Number.isFinite(x))
  if (xs.length === 0) return
  const line = {
    bench,
    case: caseName,
    variant,
    role,
    unit,
    higher,
    samples: xs,
    median: median(xs),
    min: Math.min(...xs),
    max: Math.max(...xs),
    params,
    extra,
    node,
    backend: backend === undefined ? backendName() : backend,
    run: process.env.URING_FS_BENCH_RUN || node,
  }
  fs.appendFileSync(file, JSON.stringify(line) + '\n')
}

/** The role of a variant by its name: uring-fs's variants are the subject, fio and the in-memory server the limits. */
function roleOf(variant) {
  if (/uring-fs|^readFiles|^sendFile/.test(variant)) return 'subject'
  if (/^fio|^memory/.test(variant)) return 'limit'
  return 'baseline'
}

module.exports = { record, roleOf, median }
