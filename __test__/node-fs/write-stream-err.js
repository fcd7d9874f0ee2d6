'use strict'
// After Node's write-stream-err.js, which patches the global fs.write and
// fs.close; here the same faults through a custom `fs`: the second write
// fails, its callback and the stream's 'error' get that very error, the
// descriptor is closed (once) and no write follows.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const failure = new Error('BAM')
let writes = 0
const s = uring.createWriteStream(`${tmpdir.path}/out`, {
  highWaterMark: 10,
  fs: {
    open: fs.open,
    write(...args) {
      switch (writes++) {
        case 0:
          return fs.write(...args)
        case 1: {
          const cb = args[args.length - 1]
          return process.nextTick(() => cb(failure))
        }
        default:
          throw new Error('no write after the failing one')
      }
    },
    close: common.mustCall((fd, cb) => {
      assert.strictEqual(fd, s.fd)
      fs.closeSync(fd)
      process.nextTick(cb)
    }),
  },
})
s.on('error', common.mustCall((err) => {
  assert.strictEqual(s.fd, null)
  assert.strictEqual(err, failure)
}))
s.write(Buffer.allocUnsafe(256), () => {
  s.write(Buffer.allocUnsafe(256), common.mustCall((err) => assert.strictEqual(err, failure)))
})
