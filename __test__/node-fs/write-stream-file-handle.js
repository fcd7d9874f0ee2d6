'use strict'
// After Node's write-stream-file-handle.js: a FileHandle as `fd` is
// written and closed with the stream.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const file = tmpdir.resolve('write_stream_filehandle_test.txt')
fs.promises.open(file, 'w+').then((handle) => {
  handle.on('close', common.mustCall())
  const s = uring.createWriteStream(null, { fd: handle })
  s.end('hello world')
  s.on('close', common.mustCall(() => assert.strictEqual(fs.readFileSync(file, 'utf-8'), 'hello world')))
}).then(common.mustCall())
