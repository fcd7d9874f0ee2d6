'use strict'
// After Node's empty-readStream.js: a stream over an empty file ends
// without data; paused, it neither ends nor emits data.
const common = require('./common')
const { uring, fixtures } = common
const assert = require('node:assert')
const fs = require('node:fs')

const empty = fixtures.path('empty.txt')
fs.open(empty, 'r', common.mustSucceed((fd) => {
  const s = uring.createReadStream(empty, { fd })
  s.once('data', common.mustNotCall('no data from an empty file'))
  s.once('end', common.mustCall())
}))
fs.open(empty, 'r', common.mustSucceed((fd) => {
  const s = uring.createReadStream(empty, { fd })
  s.pause()
  s.once('data', common.mustNotCall('no data while paused'))
  s.once('end', common.mustNotCall('no end while paused'))
  setTimeout(common.mustCall(() => assert.strictEqual(s.isPaused(), true)), 50)
}))
