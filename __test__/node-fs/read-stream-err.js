'use strict'
// After Node's read-stream-err.js, which patches the global fs.read and
// fs.close; here the same faults come through the `fs` option: a read that
// fails after a first good one destroys the stream with that very error,
// closes the descriptor, and no read follows.
const common = require('./common')
const { uring } = common
const assert = require('node:assert')
const fs = require('node:fs')

const failure = new Error('BAM')
let reads = 0
const s = uring.createReadStream(__filename, {
  highWaterMark: 64,
  fs: {
    open: fs.open,
    read(...args) {
      reads++
      if (reads === 1) return fs.read(...args)
      assert.strictEqual(reads, 2, 'no read after the failing one')
      const cb = args[args.length - 1]
      process.nextTick(() => cb(failure))
    },
    close: common.mustCall((fd, cb) => {
      assert.strictEqual(fd, s.fd)
      fs.close(fd, cb)
    }),
  },
})
s.on('error', common.mustCall((err) => {
  process.nextTick(common.mustCall(() => {
    assert.strictEqual(s.fd, null)
    assert.strictEqual(err, failure)
  }))
}))
s.on('data', () => {
  s.on('data', common.mustNotCall("no more 'data' events"))
})
