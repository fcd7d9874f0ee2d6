'use strict'
// After Node's stream-construct-compat-old-node.js: subclasses whose open()
// emits 'open' then 'ready' (as old Node did): both in the same tick, no
// error, the descriptor as given.
const common = require('./common')
const { uring, fixtures, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()

function oldOpen() {
  fs.open(this.path, this.flags, this.mode, (err, fd) => {
    if (err) {
      if (this.autoClose) this.destroy()
      this.emit('error', err)
      return
    }
    this.fd = fd
    this.emit('open', fd)
    this.emit('ready')
  })
}

function check(stream) {
  let ready = false
  let ticked = false
  stream
    .on('ready', common.mustCall(() => {
      ready = true
      assert.strictEqual(ticked, false, "'ready' in the same tick as 'open'")
    }))
    .on('error', common.mustNotCall())
    .on('open', common.mustCall((fd) => {
      process.nextTick(() => {
        ticked = true
        stream.destroy()
      })
      assert.strictEqual(ready, false)
      assert.strictEqual(fd, stream.fd)
    }))
}

function OldReadStream(...args) {
  uring.ReadStream.call(this, ...args)
}
Object.setPrototypeOf(OldReadStream.prototype, uring.ReadStream.prototype)
Object.setPrototypeOf(OldReadStream, uring.ReadStream)
OldReadStream.prototype.open = common.mustCall(oldOpen)
check(new OldReadStream(fixtures.path('x.txt')))

function OldWriteStream(...args) {
  uring.WriteStream.call(this, ...args)
}
Object.setPrototypeOf(OldWriteStream.prototype, uring.WriteStream.prototype)
Object.setPrototypeOf(OldWriteStream, uring.WriteStream)
OldWriteStream.prototype.open = common.mustCall(oldOpen)
check(new OldWriteStream(`${tmpdir.path}/dummy`))
