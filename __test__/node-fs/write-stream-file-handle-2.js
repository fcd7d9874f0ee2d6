'use strict'
// After Node's write-stream-file-handle-2.js: writes to a FileHandle given
// as `fd` go through its write() or writev().
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
fs.promises.open(tmpdir.resolve('write_stream_filehandle_test.txt'), 'w+').then((handle) => {
  let calls = 0
  const { write, writev } = handle
  handle.write = function (...args) {
    calls++
    return Reflect.apply(write, this, args)
  }
  handle.writev = function (...args) {
    calls++
    return Reflect.apply(writev, this, args)
  }
  const s = uring.createWriteStream(null, { fd: handle })
  s.end('hello world')
  s.on('close', common.mustCall(() => assert(calls > 0, 'the handle wrote')))
}).then(common.mustCall())
