'use strict'
// After Node's write-stream-double-close.js: close(cb) twice calls both
// callbacks; one 'close' event whatever the number of close() calls; the
// same with autoClose: false.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')

tmpdir.refresh()
{
  const s = uring.createWriteStream(tmpdir.resolve('rw'))
  s.close(common.mustCall())
  s.close(common.mustCall())
}
{
  const s = uring.createWriteStream(tmpdir.resolve('rw2'))
  let closes = 0
  s.on('close', () => closes++)
  s.close(common.mustCall(() => {
    assert.strictEqual(closes, 1)
    s.close(common.mustCall(() => assert.strictEqual(closes, 1)))
    process.nextTick(() => s.close(common.mustCall(() => assert.strictEqual(closes, 1))))
  }))
}
{
  const s = uring.createWriteStream(tmpdir.resolve('rw'), { autoClose: false })
  s.close(common.mustCall())
  s.close(common.mustCall())
}
