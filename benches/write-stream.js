#!/usr/bin/env node
// Write-stream, readFile and writeFile throughput: uring-fs against fs
// (libuv thread pool, and libuv's io_uring with UV_USE_IO_URING=1), in the
// same run.
//
//   node benches/write-stream.js [--rounds 5] [--size-mib 1024] [--only stream|files]
//
// Write streams: SIZE written in 64 KiB and 1 MiB chunks with backpressure
// (write() until it returns false, then wait for 'drain'), timed until
// 'close', with and without `flush`, in two modes reported separately:
//   overwrite  the same cached file rewritten in place (flags 'r+'): the I/O
//              path itself;
//   new        a fresh file each time (flags 'w' after unlink): on these VMs
//              allocating fresh page-cache pages caps every engine near
//              1 GiB/s.
// Files: readFile of a cached 1 MiB / SIZE file (GiB/s) and of a 4 KiB file
// (operations per second, awaited one after another), writeFile of 1 MiB /
// SIZE (overwriting). Every variant runs in its own child process, rounds
// interleave the variants, medians are printed with ratios against fs, and
// fio's psync write figure for the overwrite case when fio is installed.

'use strict'
const { spawnSync, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { once } = require('node:events')
const { record, roleOf } = require('./lib/record')

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : def
}


function lib(engine) {
  return engine === 'uring-fs' ? require('..') : fs
}

async function child(job) {
  const mod = lib(job.engine)
  const out = {}
  const ru0 = process.resourceUsage()
  if (job.kind === 'stream') {
    const buf = Buffer.alloc(job.chunk, 0x61)
    const pass = async () => {
      if (job.mode === 'new') fs.rmSync(job.file, { force: true })
      const ws = mod.createWriteStream(job.file, { flags: job.mode === 'new' ? 'w' : 'r+', flush: job.flush })
      const closed = once(ws, 'close')
      const t0 = process.hrtime.bigint()
      for (let off = 0; off < job.bytes; off += job.chunk) {
        if (!ws.write(buf)) await once(ws, 'drain')
      }
      ws.end()
      await closed
      return Number(process.hrtime.bigint() - t0) / 1e9
    }
    await pass() // warm-up (allocator, JIT, page cache of the target)
    const secs = await pass()
    out.gibs = job.bytes / 2 ** 30 / secs
  } else if (job.kind === 'readFile') {
    const read = job.engine === 'uring-fs' ? mod.readFile : fs.promises.readFile
    await read(job.file)
    const t0 = process.hrtime.bigint()
    let n = 0
    for (let i = 0; i < job.reps; i++) n += (await read(job.file)).length
    const secs = Number(process.hrtime.bigint() - t0) / 1e9
    out.gibs = n / 2 ** 30 / secs
    out.opsPerSec = job.reps / secs
  } else if (job.kind === 'writeFile') {
    const write = job.engine === 'uring-fs' ? mod.writeFile : fs.promises.writeFile
    const data = Buffer.alloc(job.bytes, 0x62)
    await write(job.file, data)
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < job.reps; i++) await write(job.file, data)
    const secs = Number(process.hrtime.bigint() - t0) / 1e9
    out.gibs = (job.bytes * job.reps) / 2 ** 30 / secs
    out.opsPerSec = job.reps / secs
  }
  const ru = process.resourceUsage()
  out.faults = ru.minorPageFault - ru0.minorPageFault
  process.stdout.write(JSON.stringify(out))
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

function ensureFile(file, bytes) {
  try {
    if (fs.statSync(file).size === bytes) return
  } catch {}
  const fd = fs.openSync(file, 'w')
  const chunk = Buffer.alloc(1 << 20, 0x63)
  for (let off = 0; off < bytes; off += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - off))
  fs.closeSync(fd)
}

function warm(file) {
  const fd = fs.openSync(file, 'r')
  const buf = Buffer.allocUnsafe(1 << 20)
  while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
  fs.closeSync(fd)
}

// fio overwriting the same cached file: `psync` (one thread, one hot
// buffer) or io_uring (`engine` 'io_uring': a queue of 4 writes in flight).
function fioWrite(file, bs, bytes, engine = 'psync') {
  const io = engine === 'io_uring' ? ['--ioengine=io_uring', '--iodepth=4'] : ['--ioengine=psync']
  try {
    const out = execFileSync(
      'fio',
      ['--name=w', `--filename=${file}`, '--rw=write', `--bs=${bs}`, `--size=${bytes}`, ...io, '--output-format=json', '--invalidate=0', '--overwrite=1'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    )
    return JSON.parse(out).jobs[0].write.bw_bytes / 2 ** 30
  } catch {
    return null
  }
}

// fs+uv_io_uring: libuv's io_uring for files, which only Node 20 has (libuv
// 1.49 stopped using it); under later Nodes it would be fs again.
const UV_IO_URING = Number(process.versions.uv.split('.')[1]) < 49
const VARIANTS = [
  { name: 'fs', engine: 'fs', env: { UV_USE_IO_URING: '0' } },
  ...(UV_IO_URING ? [{ name: 'fs+uv_io_uring', engine: 'fs', env: { UV_USE_IO_URING: '1' } }] : []),
  { name: 'uring-fs', engine: 'uring-fs', env: {} },
]

function runCase(title, rounds, job, prepare, unit = 'gibs', params = {}) {
  const res = Object.fromEntries(VARIANTS.map((v) => [v.name, []]))
  for (let r = 0; r < rounds; r++) {
    for (const v of VARIANTS) {
      prepare?.()
      const out = spawnSync(process.execPath, [__filename, '--child', JSON.stringify({ ...job, engine: v.engine })], {
        env: { ...process.env, ...v.env },
        encoding: 'utf8',
      })
      if (out.status !== 0) throw new Error(`${title} ${v.name} failed: ${out.stderr}`)
      res[v.name].push(JSON.parse(out.stdout))
    }
  }
  const m = (name) => median(res[name].map((x) => x[unit]))
  for (const v of VARIANTS) {
    const caseName = job.kind === 'stream' ? `write stream ${job.bytes >> 20} MiB, ${title}` : title
    record({ bench: 'write-stream', case: caseName, variant: v.name, role: roleOf(v.name), unit: unit === 'gibs' ? 'GiB/s' : 'ops/s', samples: res[v.name].map((x) => x[unit]), params })
  }
  const fmt = (x) => (unit === 'gibs' ? `${x.toFixed(2)} GiB/s` : `${Math.round(x)} ops/s`)
  const u = m('uring-fs')
  const uv = UV_IO_URING ? m('fs+uv_io_uring') : null
  console.log(
    `${title.padEnd(34)} fs ${fmt(m('fs')).padStart(12)}${uv === null ? '' : `  fs+uv ${fmt(uv).padStart(12)}`}  uring-fs ${fmt(u).padStart(12)}` +
      `  x${(u / m('fs')).toFixed(2)} fs${uv === null ? '' : `, x${(u / uv).toFixed(2)} fs+uv`}`,
  )
  return u
}

function main() {
  const rounds = Number(opt('rounds', 5))
  const sizeMiB = Number(opt('size-mib', 1024))
  const only = opt('only', '')
  const bytes = sizeMiB << 20
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-wbench-'))
  const big = path.join(dir, 'big.bin')
  console.log(`write-stream / files: ${sizeMiB} MiB, ${rounds} rounds, median; node ${process.version}`)
  try {
    if (only !== 'files') {
      ensureFile(big, bytes)
      for (const chunk of [64 << 10, 1 << 20]) {
        warm(big)
        const fio = fioWrite(big, chunk, bytes)
        warm(big)
        const fioUring = fioWrite(big, chunk, bytes, 'io_uring')
        for (const flush of [false, true]) {
          const title = `overwrite ${chunk >> 10} KiB${flush ? ' flush' : ''}`
          const u = runCase(title, rounds, {
            kind: 'stream', mode: 'overwrite', file: big, bytes, chunk, flush,
          }, () => warm(big), 'gibs', { size: bytes, chunk })
          if (flush) continue
          for (const [variant, bw] of [['fio psync', fio], ['fio io_uring', fioUring]]) {
            if (!bw) continue
            record({ bench: 'write-stream', case: `write stream ${bytes >> 20} MiB, ${title}`, variant, role: 'limit', unit: 'GiB/s', samples: [bw], params: { size: bytes, chunk }, backend: null })
            console.log(`${''.padEnd(34)} ${variant} bs=${chunk >> 10}k overwrite: ${bw.toFixed(2)} GiB/s; uring-fs is ${((u / bw) * 100).toFixed(0)}% of it`)
          }
        }
        for (const flush of [false, true]) {
          runCase(`new file ${chunk >> 10} KiB${flush ? ' flush' : ''}`, rounds, {
            kind: 'stream', mode: 'new', file: path.join(dir, 'new.bin'), bytes, chunk, flush,
          }, null, 'gibs', { size: bytes, chunk })
        }
      }
    }
    if (only !== 'stream') {
      const small = path.join(dir, 'small.bin')
      const mid = path.join(dir, 'mid.bin')
      ensureFile(small, 4096)
      ensureFile(mid, 1 << 20)
      ensureFile(big, bytes)
      runCase('readFile 4 KiB', rounds, { kind: 'readFile', file: small, reps: 5000 }, () => warm(small), 'opsPerSec', { size: 4096 })
      runCase('readFile 1 MiB', rounds, { kind: 'readFile', file: mid, reps: 500 }, () => warm(mid), 'gibs', { size: 1 << 20 })
      runCase(`readFile ${sizeMiB} MiB`, rounds, { kind: 'readFile', file: big, reps: 2 }, () => warm(big), 'gibs', { size: bytes })
      runCase('writeFile 4 KiB', rounds, { kind: 'writeFile', file: small, bytes: 4096, reps: 5000 }, null, 'opsPerSec', { size: 4096 })
      runCase('writeFile 1 MiB', rounds, { kind: 'writeFile', file: mid, bytes: 1 << 20, reps: 300 }, null, 'gibs', { size: 1 << 20 })
      runCase(`writeFile ${sizeMiB} MiB`, rounds, { kind: 'writeFile', file: big, bytes, reps: 2 }, () => warm(big), 'gibs', { size: bytes })
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

if (args[0] === '--child') child(JSON.parse(args[1]))
else main()
