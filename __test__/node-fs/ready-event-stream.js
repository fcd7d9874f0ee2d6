'use strict'
// After Node's ready-event-stream.js: `pending` until 'ready', then not.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')

const r = uring.createReadStream(__filename)
assert.strictEqual(r.pending, true)
r.on('ready', common.mustCall(() => assert.strictEqual(r.pending, false)))

tmpdir.refresh()
const w = uring.createWriteStream(tmpdir.resolve('write-fsreadyevent.txt'), { autoClose: true })
assert.strictEqual(w.pending, true)
w.on('ready', common.mustCall(() => {
  assert.strictEqual(w.pending, false)
  w.end()
}))
