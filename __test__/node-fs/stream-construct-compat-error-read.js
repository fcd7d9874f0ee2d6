'use strict'
// After Node's stream-construct-compat-error-read.js: a subclass made the
// old way (a function calling ReadStream on `this`) whose open() emits an
// open error: the stream is destroyed with it, then closes.
const common = require('./common')
const { uring } = common
const assert = require('node:assert')
const fs = require('node:fs')

function OldReadStream(...args) {
  uring.ReadStream.call(this, ...args)
}
Object.setPrototypeOf(OldReadStream.prototype, uring.ReadStream.prototype)
Object.setPrototypeOf(OldReadStream, uring.ReadStream)
OldReadStream.prototype.open = common.mustCall(function () {
  fs.open(this.path, this.flags, this.mode, (err) => this.emit('error', err))
})

const r = new OldReadStream('/doesnotexist', { emitClose: true }).on('error', common.mustCall((err) => {
  assert.strictEqual(err.code, 'ENOENT')
  assert.strictEqual(r.destroyed, true)
  r.on('close', common.mustCall())
}))
