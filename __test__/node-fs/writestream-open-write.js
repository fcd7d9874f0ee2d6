'use strict'
// After Node's writestream-open-write.js: a write from 'open' and one a
// tick later both land, in order.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const file = tmpdir.resolve('test-fs-writestream-open-write.txt')
const w = uring.createWriteStream(file)
w.on('open', common.mustCall(() => {
  w.write('hello')
  process.nextTick(() => {
    w.write('world')
    w.end()
  })
}))
w.on('close', common.mustCall(() => {
  assert.strictEqual(fs.readFileSync(file, 'utf8'), 'helloworld')
  fs.unlinkSync(file)
}))
