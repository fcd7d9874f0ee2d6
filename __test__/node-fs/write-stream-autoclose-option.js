'use strict'
// After Node's write-stream-autoclose-option.js: autoClose: false keeps the
// descriptor after 'finish' (no 'close'); a second stream on it with start
// 0 overwrites and, with autoClose, closes it; a third stream closes too.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const file = tmpdir.resolve('write-autoclose-opt1.txt')
let s = uring.createWriteStream(file, { flags: 'w+', autoClose: false })
s.write('Test1')
s.end()
s.on('finish', common.mustCall(() => {
  s.on('close', common.mustNotCall())
  process.nextTick(common.mustCall(() => {
    assert.strictEqual(s.closed, false)
    assert.notStrictEqual(s.fd, null)
    second()
  }))
}))

function second() {
  s = uring.createWriteStream(null, { fd: s.fd, start: 0 })
  s.write('Test2')
  s.end()
  s.on('finish', common.mustCall(() => {
    assert.strictEqual(s.closed, false)
    s.on('close', common.mustCall(() => {
      assert.strictEqual(s.fd, null)
      assert.strictEqual(s.closed, true)
      process.nextTick(check)
    }))
  }))
}

function check() {
  fs.readFile(file, (err, data) => {
    assert.ifError(err)
    assert.strictEqual(data.toString(), 'Test2')
    process.nextTick(common.mustCall(third))
  })
}

function third() {
  const w = uring.createWriteStream(file, { autoClose: true })
  w.write('Test3')
  w.end()
  w.on('finish', common.mustCall(() => {
    assert.strictEqual(w.closed, false)
    w.on('close', common.mustCall(() => {
      assert.strictEqual(w.fd, null)
      assert.strictEqual(w.closed, true)
    }))
  }))
}
