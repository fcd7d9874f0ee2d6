#!/usr/bin/env node
// npm "install" hook. In a checkout of this repository (crates/ present) it
// builds the native addon and compiles the TypeScript, so that
// `npm install` (or `npm ci`) leaves a working package. Installed from the
// registry, the package carries compiled JavaScript and takes its addon from
// the matching per-platform package (npm/*), so there is nothing to do.
'use strict'
const { spawnSync } = require('node:child_process')
const { existsSync } = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
if (!existsSync(path.join(root, 'crates', 'node', 'Cargo.toml'))) process.exit(0)
if (process.env.URING_FS_SKIP_BUILD) {
  console.log('uring-fs: URING_FS_SKIP_BUILD is set, not building')
  process.exit(0)
}
const cargo = spawnSync('cargo', ['--version'], { stdio: 'ignore' })
if (cargo.status !== 0) {
  console.error('uring-fs: building from source needs Rust (cargo); install it from https://rustup.rs')
  process.exit(1)
}
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const r = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' })
process.exit(r.status ?? 1)
