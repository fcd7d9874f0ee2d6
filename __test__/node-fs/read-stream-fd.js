'use strict'
// After Node's read-stream-fd.js: a stream over a given descriptor has no
// path and reads the file.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const file = tmpdir.resolve('read_stream_fd_test.txt')
fs.writeFileSync(file, 'hello world')
const s = uring.createReadStream(null, { fd: fs.openSync(file, 'r'), encoding: 'utf8' })
assert.strictEqual(s.path, undefined)
let text = ''
s.on('data', common.mustCallAtLeast((chunk) => {
  text += chunk
}))
process.on('exit', () => assert.strictEqual(text, 'hello world'))
