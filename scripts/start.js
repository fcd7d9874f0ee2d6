#!/usr/bin/env node
// npm start: until the HTTP server lands, shows the library at work: which
// backend is live, then a short read-stream benchmark against fs (one round
// over a 256 MiB cached file; `npm run bench` runs the full one).
'use strict'
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const u = require('..')

console.log(`uring-fs backend: ${u.backend()}${u.fallbackReason() ? ` (${u.fallbackReason()})` : ''}`)
const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'benches', 'read-stream.js'), '--rounds', '1', '--size-mib', '256'], {
  stdio: 'inherit',
})
process.exit(r.status ?? 1)
