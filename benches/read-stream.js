#!/usr/bin/env node
// Read-stream throughput: uring-fs createReadStream against fs.createReadStream
// (libuv thread pool, and libuv's own io_uring with UV_USE_IO_URING=1, which
// only Node 20 has: libuv 1.49 stopped using io_uring for files) and against
// Bun's Bun.file().stream() (benches/bun-reads.js, when a bun runs: see
// benches/lib/bun.js), on a cached 1 GiB file consumed through 'data' events,
// in the same run.
//
//   node benches/read-stream.js [--rounds 5] [--file PATH] [--size-mib 1024] [--no-trim]
//
// Every variant runs in its own child process (UV_USE_IO_URING is read by
// libuv at start-up), rounds interleave the variants, the file is read once
// before each round so it is in the page cache, and each child does one
// untimed warm-up pass so that every engine is measured with its allocator
// warm. Printed: the median GiB/s of each variant, ratios against fs, minor
// page faults, V8 collections (scavenges / mark-compacts) and io_uring_enter
// calls per GiB, and fio's figure for the same file when fio is installed.
//
// --no-trim is an ablation, not the comparison: every variant (fs too) runs
// with glibc told not to give freed heap memory back to the kernel
// (MALLOC_TRIM_THRESHOLD_ and MALLOC_MMAP_THRESHOLD_). Each chunk is a new
// Buffer that V8 frees in a scavenge, and glibc trims the top of its heap
// when that leaves more than about twice the chunk size free there, so the
// next chunks are fresh pages that fault while the kernel copies into them.
// The ablation shows what those faults cost each engine.

'use strict'
const { spawnSync, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const os = require('node:os')
const { record, roleOf } = require('./lib/record')
const { findBun } = require('./lib/bun')

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : def
}

if (args[0] === '--child') {
  child(args[1], args[2], Number(args[3]))
} else {
  main()
}

function child(engine, file, hwm) {
  const mod = engine === 'uring-fs' ? require('..') : fs
  const { PerformanceObserver, constants } = require('node:perf_hooks')
  const gcs = { major: 0, minor: 0 }
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) gcs.major++
      else if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) gcs.minor++
    }
  }).observe({ entryTypes: ['gc'] })
  const pass = () =>
    new Promise((resolve, reject) => {
      let n = 0
      const s = mod.createReadStream(file, { highWaterMark: hwm })
      s.on('data', (d) => {
        n += d.length
      })
      s.on('error', reject)
      s.on('close', () => resolve(n))
    })
  ;(async () => {
    await pass() // warm-up: allocator, JIT, buffer pool
    await new Promise((r) => setImmediate(r)) // the warm-up's GC entries
    const gc0 = { ...gcs }
    const st0 = engine === 'uring-fs' ? mod.stats() : null
    const ru0 = process.resourceUsage()
    const t0 = process.hrtime.bigint()
    const n = await pass()
    const secs = Number(process.hrtime.bigint() - t0) / 1e9
    const ru = process.resourceUsage()
    const st = engine === 'uring-fs' ? mod.stats() : null
    await new Promise((r) => setImmediate(r)) // GC entries come in a task
    const gib = n / 2 ** 30
    process.stdout.write(
      JSON.stringify({
        gibs: gib / secs,
        faultsPerGiB: (ru.minorPageFault - ru0.minorPageFault) / gib,
        cpuPerGiB: (ru.userCPUTime + ru.systemCPUTime - ru0.userCPUTime - ru0.systemCPUTime) / 1e3 / gib,
        entersPerGiB: st ? (st.enters - st0.enters) / gib : null,
        opsPerEnter: st ? (st.ops - st0.ops) / Math.max(1, st.enters - st0.enters) : null,
        scavengesPerGiB: (gcs.minor - gc0.minor) / gib,
        markCompactsPerGiB: (gcs.major - gc0.major) / gib,
      }),
    )
  })().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

function ensureFile(file, bytes) {
  try {
    if (fs.statSync(file).size === bytes) return
  } catch {}
  const fd = fs.openSync(file, 'w')
  const chunk = Buffer.alloc(1 << 20)
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 131 + 7) & 0xff
  for (let off = 0; off < bytes; off += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - off))
  fs.closeSync(fd)
}

function warmCache(file) {
  // Read the whole file so it is in the page cache (the host drops idle pages).
  const fd = fs.openSync(file, 'r')
  const buf = Buffer.allocUnsafe(1 << 20)
  while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
  fs.closeSync(fd)
}

// fio on the same file: `psync` is one thread reading into one hot buffer;
// `extra` can ask for io_uring with reads on io-wq workers (several cores
// copying) and an iodepth whose buffers add up to what a stream's chunks
// cycle through before V8 frees them (each chunk is a new Buffer, and V8
// frees them in scavenges, about every 32 MiB of Buffers), so that the
// destination of the copy is as cold as a stream's.
function fio(file, bs, extra = ['--ioengine=psync']) {
  try {
    const out = execFileSync(
      'fio',
      ['--name=r', `--filename=${file}`, '--rw=read', `--bs=${bs}`, ...extra, '--direct=0', '--output-format=json', '--invalidate=0'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    )
    const j = JSON.parse(out)
    return j.jobs[0].read.bw_bytes / 2 ** 30
  } catch {
    return null
  }
}

function main() {
  const rounds = Number(opt('rounds', 5))
  const sizeMiB = Number(opt('size-mib', 1024))
  const file = opt('file', path.join(os.tmpdir(), `uring-fs-bench-${sizeMiB}m.bin`))
  ensureFile(file, sizeMiB << 20)
  const noTrim = args.includes('--no-trim')
  const common = noTrim ? { MALLOC_TRIM_THRESHOLD_: String(64 << 20), MALLOC_MMAP_THRESHOLD_: String(32 << 20) } : {}
  const variants = [
    { name: 'fs', engine: 'fs', env: { ...common, UV_USE_IO_URING: '0' } },
    { name: 'uring-fs', engine: 'uring-fs', env: { ...common } },
  ]
  // libuv's io_uring for files: Node 20 (libuv < 1.49) only; later Nodes
  // ignore the variable, and the variant would be fs again.
  if (Number(process.versions.uv.split('.')[1]) < 49) variants.splice(1, 0, { name: 'fs+uv_io_uring', engine: 'fs', env: { ...common, UV_USE_IO_URING: '1' } })
  const bun = findBun()
  if (bun.bin) variants.push({ name: 'bun', engine: 'bun', env: { ...common } })
  console.log(`read-stream: ${sizeMiB} MiB cached file ${file}, ${rounds} rounds, node ${process.version}`)
  console.log(bun.bin ? `  bun ${bun.version}: Bun.file().stream() (Bun picks its chunk size)` : `  (bun: ${bun.why}; skipped)`)
  if (noTrim) console.log('ABLATION --no-trim: every variant runs with glibc heap trimming off (not the comparison)')
  for (const hwm of [64 << 10, 1 << 20]) {
    const res = Object.fromEntries(variants.map((v) => [v.name, []]))
    for (let r = 0; r < rounds; r++) {
      for (const v of variants) {
        warmCache(file)
        const [cmd, argv] = v.engine === 'bun' ? [bun.bin, [path.join(__dirname, 'bun-reads.js'), 'stream', file]] : [process.execPath, [__filename, '--child', v.engine, file, String(hwm)]]
        const out = spawnSync(cmd, argv, {
          env: { ...process.env, ...v.env },
          encoding: 'utf8',
        })
        if (out.status !== 0) throw new Error(`${v.name} failed: ${out.stderr}`)
        res[v.name].push(JSON.parse(out.stdout))
      }
    }
    const fioBw = fio(file, hwm)
    const depth = Math.max(1, Math.round((64 << 20) / hwm))
    const fioPar = fio(file, hwm, ['--ioengine=io_uring', `--iodepth=${depth}`, '--force_async=1'])
    const med = (name, key) => median(res[name].map((x) => x[key]))
    console.log(`\nhighWaterMark ${hwm >> 10} KiB (median of ${rounds})`)
    for (const v of variants) {
      const g = med(v.name, 'gibs')
      let line = `  ${v.name.padEnd(16)} ${g.toFixed(2)} GiB/s  cpu ${med(v.name, 'cpuPerGiB').toFixed(0)} ms/GiB`
      if (v.engine === 'bun') line += `  (chunks of ${med(v.name, 'chunk') >> 10} KiB)`
      else line += `  faults ${med(v.name, 'faultsPerGiB').toFixed(0)}/GiB  gc ${med(v.name, 'scavengesPerGiB').toFixed(0)}+${med(v.name, 'markCompactsPerGiB').toFixed(0)}/GiB`
      if (v.engine === 'uring-fs') {
        line += `  io_uring_enter ${med(v.name, 'entersPerGiB').toFixed(0)}/GiB (${med(v.name, 'opsPerEnter').toFixed(1)} ops each)`
      }
      console.log(line)
    }
    const caseName = `read stream, ${sizeMiB} MiB cached, ${hwm >> 10} KiB chunks`
    const params = { size: sizeMiB << 20, chunk: hwm }
    for (const v of variants) {
      const extra = { cpuMsPerGiB: med(v.name, 'cpuPerGiB') }
      // Bun's figure is filed with the Node run it was measured in (the
      // same run's ratios), its own version in extra.
      const other = v.engine === 'bun' ? { backend: null, extra: { ...extra, bun: bun.version, chunk: med(v.name, 'chunk') } } : {}
      record({ bench: 'read-stream', case: caseName, variant: v.name, role: roleOf(v.name), unit: 'GiB/s', samples: res[v.name].map((x) => x.gibs), params, extra, ...other })
    }
    if (fioBw) record({ bench: 'read-stream', case: caseName, variant: 'fio psync', role: 'limit', unit: 'GiB/s', samples: [fioBw], params, backend: null })
    if (fioPar) record({ bench: 'read-stream', case: caseName, variant: 'fio io_uring', role: 'limit', unit: 'GiB/s', samples: [fioPar], params, backend: null })
    const u = med('uring-fs', 'gibs')
    console.log(`  ratio uring-fs / fs              ${(u / med('fs', 'gibs')).toFixed(2)}x`)
    if (res['fs+uv_io_uring']) console.log(`  ratio uring-fs / fs+uv_io_uring  ${(u / med('fs+uv_io_uring', 'gibs')).toFixed(2)}x`)
    if (res.bun) console.log(`  ratio uring-fs / bun             ${(u / med('bun', 'gibs')).toFixed(2)}x`)
    if (fioBw) console.log(`  fio psync bs=${hwm >> 10}k: ${fioBw.toFixed(2)} GiB/s; uring-fs is ${((u / fioBw) * 100).toFixed(0)}% of it`)
    if (fioPar) {
      console.log(
        `  fio io_uring io-wq bs=${hwm >> 10}k iodepth=${depth} (64 MiB of buffers): ${fioPar.toFixed(2)} GiB/s; uring-fs is ${((u / fioPar) * 100).toFixed(0)}% of it`,
      )
    }
  }
}
