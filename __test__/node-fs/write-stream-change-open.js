'use strict'
// After Node's write-stream-change-open.js, which patches the global
// fs.open/fs.close after making the stream; here the same check through a
// custom `fs`: close is called once, with the descriptor open gave, and the
// bytes are written.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const file = tmpdir.resolve('write.txt')
let opened
const s = uring.WriteStream(file, {
  fs: {
    open: common.mustCall((...args) => {
      const cb = args.pop()
      fs.open(...args, (err, fd) => {
        opened = fd
        cb(err, fd)
      })
    }),
    write: fs.write,
    close: common.mustCall((fd, cb) => {
      assert.ok(fd, 'close must get a descriptor')
      assert.strictEqual(fd, opened)
      fs.closeSync(fd)
      cb()
    }),
  },
})
s.write('foo')
s.end()
s.on('close', common.mustCall(() => assert.strictEqual(fs.readFileSync(file, 'utf8'), 'foo')))
