'use strict'
// After Node's stream-construct-compat-graceful-fs.js: subclasses with
// graceful-fs's own open() (it opens, sets fd, emits 'open'): 'open' comes
// with that descriptor.
const common = require('./common')
const { uring, fixtures, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()

{
  function GracefulReadStream(...args) {
    uring.ReadStream.call(this, ...args)
  }
  Object.setPrototypeOf(GracefulReadStream.prototype, uring.ReadStream.prototype)
  Object.setPrototypeOf(GracefulReadStream, uring.ReadStream)
  GracefulReadStream.prototype.open = common.mustCall(function () {
    fs.open(this.path, this.flags, this.mode, (err, fd) => {
      if (err) {
        if (this.autoClose) this.destroy()
        this.emit('error', err)
      } else {
        this.fd = fd
        this.emit('open', fd)
        this.read()
      }
    })
  })
  const r = new GracefulReadStream(fixtures.path('x.txt')).on('open', common.mustCall((fd) => {
    assert.strictEqual(fd, r.fd)
    r.destroy()
  }))
}

{
  function GracefulWriteStream(...args) {
    uring.WriteStream.call(this, ...args)
  }
  Object.setPrototypeOf(GracefulWriteStream.prototype, uring.WriteStream.prototype)
  Object.setPrototypeOf(GracefulWriteStream, uring.WriteStream)
  GracefulWriteStream.prototype.open = common.mustCall(function () {
    fs.open(this.path, this.flags, this.mode, (err, fd) => {
      if (err) {
        this.destroy()
        this.emit('error', err)
      } else {
        this.fd = fd
        this.emit('open', fd)
      }
    })
  })
  const w = new GracefulWriteStream(`${tmpdir.path}/dummy`).on('open', common.mustCall((fd) => {
    assert.strictEqual(fd, w.fd)
    w.destroy()
  }))
}
