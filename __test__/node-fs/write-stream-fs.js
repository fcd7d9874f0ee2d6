'use strict'
// After Node's write-stream-fs.js: with a custom `fs`, exactly its open,
// write (or writev, when given) and close are called.
const common = require('./common')
const { uring, tmpdir } = common
const fs = require('node:fs')

tmpdir.refresh()
{
  const s = uring.createWriteStream(tmpdir.resolve('write-end-test0.txt'), {
    fs: {
      open: common.mustCall(fs.open),
      write: common.mustCallAtLeast(fs.write, 1),
      close: common.mustCall(fs.close),
    },
  })
  s.end('asd')
  s.on('close', common.mustCall())
}
{
  const s = uring.createWriteStream(tmpdir.resolve('write-end-test1.txt'), {
    fs: {
      open: common.mustCall(fs.open),
      write: fs.write,
      writev: common.mustCallAtLeast(fs.writev, 1),
      close: common.mustCall(fs.close),
    },
  })
  s.write('asd')
  s.write('asd')
  s.write('asd')
  s.end()
  s.on('close', common.mustCall())
}
