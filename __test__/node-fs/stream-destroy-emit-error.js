'use strict'
// After Node's stream-destroy-emit-error.js: destroy(err) from 'open'
// emits that very error, then 'close', with and without emitClose given.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')

tmpdir.refresh()

function destroyOnOpen(stream) {
  const failure = new Error('DESTROYED')
  stream.on('close', common.mustCall())
  stream.on('open', () => stream.destroy(failure))
  stream.on('error', common.mustCall((err) => assert.strictEqual(err, failure)))
}
destroyOnOpen(uring.createReadStream(__filename))
destroyOnOpen(uring.createWriteStream(`${tmpdir.path}/dummy`))
destroyOnOpen(uring.createReadStream(__filename, { emitClose: true }))
destroyOnOpen(uring.createWriteStream(`${tmpdir.path}/dummy2`, { emitClose: true }))
