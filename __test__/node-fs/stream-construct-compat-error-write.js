'use strict'
// After Node's stream-construct-compat-error-write.js: the same for a
// WriteStream subclass whose open() fails with EEXIST (flags 'wx+').
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()

function OldWriteStream(...args) {
  uring.WriteStream.call(this, ...args)
}
Object.setPrototypeOf(OldWriteStream.prototype, uring.WriteStream.prototype)
Object.setPrototypeOf(OldWriteStream, uring.WriteStream)
OldWriteStream.prototype.open = common.mustCall(function () {
  fs.open(this.path, this.flags, this.mode, (err) => this.emit('error', err))
})

const file = `${tmpdir.path}/dummy`
fs.open(file, 'wx+', common.mustCall((err, fd) => {
  assert.ifError(err)
  fs.close(fd, () => {})
  const w = new OldWriteStream(file, { flags: 'wx+', emitClose: true }).on('error', common.mustCall((e) => {
    assert.strictEqual(e.code, 'EEXIST')
    w.destroy()
    w.on('close', common.mustCall())
  }))
}))
