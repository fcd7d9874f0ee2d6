#!/usr/bin/env node
// npm "prepare" hook: runs on `npm install` / `npm ci` in a checkout of
// this repository and before `npm pack` / `npm publish`, never when the
// package is installed from the registry (a published package has no
// install hook; it takes its binary from the matching npm/<platform>
// package, or runs on node:fs without one). In a checkout (crates/ present)
// it builds the native addon (release) and compiles the TypeScript.
// URING_FS_SKIP_BUILD=1 skips it (the release workflow builds each target
// itself).
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
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const shell = process.platform === 'win32'
// The engine is built on Unix descriptors: Linux and macOS only. Elsewhere
// (Windows) the package runs on the JavaScript fallback: TypeScript only.
if (process.platform !== 'linux' && process.platform !== 'darwin') {
  console.log(`uring-fs: no native build for ${process.platform}; the JavaScript fallback runs there`)
  const ts = spawnSync(npm, ['run', 'build:ts'], { cwd: root, stdio: 'inherit', shell })
  process.exit(ts.status ?? 1)
}
const cargo = spawnSync('cargo', ['--version'], { stdio: 'ignore' })
if (cargo.status !== 0) {
  console.error('uring-fs: building from a checkout needs Rust (cargo); install it from https://rustup.rs')
  process.exit(1)
}
const r = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit', shell })
process.exit(r.status ?? 1)
