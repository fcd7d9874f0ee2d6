'use strict'
// After Node's non-number-arguments-throw.js: a start or end that is a
// string is a TypeError; numbers read the range.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const file = tmpdir.resolve('fs-non-number-arguments-throw')
fs.writeFileSync(file, 'abc\ndef')
const good = uring.createReadStream(file, { start: 4, end: 6 })
const typeError = { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }
assert.throws(() => uring.createReadStream(file, { start: '4', end: 6 }), typeError)
assert.throws(() => uring.createReadStream(file, { start: 4, end: '6' }), typeError)
assert.throws(() => uring.createWriteStream(file, { start: '4' }), typeError)
good.on('data', common.mustCall((chunk) => assert.strictEqual(chunk.toString('utf8'), 'def')))
