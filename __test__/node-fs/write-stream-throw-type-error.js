'use strict'
// After Node's write-stream-throw-type-error.js: options that are neither
// a string nor an object are TypeErrors.
const { uring, tmpdir } = require('./common')
const assert = require('node:assert')

tmpdir.refresh()
const file = tmpdir.resolve('dummy')
for (const ok of [undefined, null, 'utf8', { encoding: 'utf8' }]) uring.createWriteStream(file, ok).end()
for (const bad of [123, 0, true, false]) {
  assert.throws(() => uring.createWriteStream(file, bad), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' })
}
