'use strict'
// After Node's write-stream-patch-open.js (run in a child process there,
// as here). Where the Node that runs still has fs's deprecated
// WriteStream.prototype.open() (DEP0135, up to Node 24), calling it warns;
// in every version an open() patched onto the prototype is what the
// stream calls to open.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

if (process.argv[2] !== 'child') {
  const { fork } = require('node:child_process')
  const child = fork(__filename, ['child'], { stdio: 'inherit' })
  child.on('exit', common.mustCall((code) => assert.strictEqual(code, 0)))
  return
}

tmpdir.refresh()
if (typeof fs.WriteStream.prototype.open === 'function') {
  common.expectWarning('DeprecationWarning', 'WriteStream.prototype.open() is deprecated', 'DEP0135')
  const s = uring.createWriteStream(`${tmpdir.path}/out`)
  s.open()
} else {
  assert.strictEqual(uring.WriteStream.prototype.open, undefined)
}
process.nextTick(() => {
  uring.WriteStream.prototype.open = common.mustCall()
  uring.createWriteStream('asd')
})
