'use strict'
// After Node's read-stream-patch-open.js. Where the Node that runs still has
// fs's deprecated ReadStream.prototype.open() (DEP0135, up to Node 24),
// calling it warns; in every version an open() patched onto the prototype
// is what the stream calls to open.
const common = require('./common')
const { uring } = common
const assert = require('node:assert')
const fs = require('node:fs')

if (typeof fs.ReadStream.prototype.open === 'function') {
  common.expectWarning('DeprecationWarning', 'ReadStream.prototype.open() is deprecated', 'DEP0135')
  const s = uring.createReadStream('asd').on('error', () => {})
  s.open()
} else {
  assert.strictEqual(uring.ReadStream.prototype.open, undefined)
}

process.nextTick(() => {
  uring.ReadStream.prototype.open = common.mustCall()
  uring.createReadStream('asd')
})
