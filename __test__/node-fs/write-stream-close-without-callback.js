'use strict'
// After Node's write-stream-close-without-callback.js: close() without a
// callback after end() is fine, and the data is written.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const file = tmpdir.resolve('nocallback')
const s = uring.createWriteStream(file)
s.end('hello world')
s.close()
s.on('close', common.mustCall(() => assert.strictEqual(fs.readFileSync(file, 'utf8'), 'hello world')))
