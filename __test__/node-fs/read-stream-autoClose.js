'use strict'
// After Node's read-stream-autoClose.js (a write stream, despite its name):
// with autoClose, 'finish' comes before the stream is destroyed.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')

tmpdir.refresh()
const w = uring.createWriteStream(tmpdir.resolve('write-autoClose.txt'), { autoClose: true })
w.on('finish', common.mustCall(() => assert.strictEqual(w.destroyed, false)))
w.end('asd')
