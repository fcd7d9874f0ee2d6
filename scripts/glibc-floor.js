#!/usr/bin/env node
// Fails when a Linux binary needs a newer glibc than the floor given: the
// highest GLIBC_x.y symbol version `objdump -T` lists must be at most it.
//
//   node scripts/glibc-floor.js uring-fs.linux-x64-gnu.node 2.17
'use strict'
const { execFileSync } = require('node:child_process')

const [file, floor] = process.argv.slice(2)
if (!file || !floor) {
  console.error('usage: glibc-floor.js <binary> <x.y>')
  process.exit(2)
}
const parse = (v) => v.split('.').map(Number)
const newer = (a, b) => {
  const [x, y] = [parse(a), parse(b)]
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0)
  return false
}
const dump = execFileSync('objdump', ['-T', file], { encoding: 'utf8' })
const versions = [...new Set(dump.match(/GLIBC_[0-9.]+/g) || [])].map((v) => v.slice(6))
const highest = versions.reduce((a, b) => (newer(b, a) ? b : a), '0')
console.log(`${file}: needs glibc ${highest} (floor ${floor})`)
if (newer(highest, floor)) process.exit(1)
