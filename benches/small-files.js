#!/usr/bin/env node
// Many small files: uring-fs readFiles against fs.promises.readFile with
// Promise.all (concurrency 64 and 1,000, the best reported) and against
// fs.readFileSync in a loop, in the same process and run, median of rounds.
//
//   node benches/small-files.js [--rounds 5] [--files 10000] [--size 4096]
//
// The files are written once (cached afterwards); each round reads them all
// with each variant. Printed: files per second, ratios, and io_uring_enter
// calls against operations for readFiles.

'use strict'
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const u = require('..')

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : def
}
const rounds = opt('rounds', 5)
const count = opt('files', 10000)
const size = opt('size', 4096)

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-small-'))
  try {
    const paths = []
    const data = Buffer.alloc(size, 0x61)
    for (let i = 0; i < count; i++) {
      const p = path.join(dir, `f${i}`)
      fs.writeFileSync(p, data)
      paths.push(p)
    }
    const promisesAll = (c) => async () => {
      for (let i = 0; i < paths.length; i += c) await Promise.all(paths.slice(i, i + c).map((p) => fs.promises.readFile(p)))
    }
    const variants = {
      'uring-fs readFiles': () => u.readFiles(paths),
      'fs.promises c=64': promisesAll(64),
      'fs.promises c=1000': promisesAll(1000),
      'fs.readFileSync loop': async () => {
        for (const p of paths) fs.readFileSync(p)
      },
    }
    const res = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
    let ops = 0
    let enters = 0
    for (let r = 0; r < rounds; r++) {
      for (const [name, run] of Object.entries(variants)) {
        const s0 = u.stats()
        const t0 = process.hrtime.bigint()
        await run()
        res[name].push(count / (Number(process.hrtime.bigint() - t0) / 1e9))
        if (name.startsWith('uring-fs')) {
          const s1 = u.stats()
          ops += s1.ops - s0.ops
          enters += s1.enters - s0.enters
        }
      }
    }
    console.log(`small files: ${count} x ${size} B cached, median of ${rounds}, backend ${u.backend()}, node ${process.version}`)
    for (const name of Object.keys(variants)) console.log(`  ${name.padEnd(22)} ${Math.round(median(res[name]))} files/s`)
    const ours = median(res['uring-fs readFiles'])
    const bestPromises = Math.max(median(res['fs.promises c=64']), median(res['fs.promises c=1000']))
    console.log(`  ratio vs best fs.promises   ${(ours / bestPromises).toFixed(2)}x`)
    console.log(`  ratio vs fs.readFileSync    ${(ours / median(res['fs.readFileSync loop'])).toFixed(2)}x`)
    if (enters > 0) console.log(`  readFiles: ${(ops / enters).toFixed(1)} operations per io_uring_enter`)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
