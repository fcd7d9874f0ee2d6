'use strict'
// After Node's write-stream.js, which patches the global fs.close to check
// the descriptor it gets; here: destroyed at once (without new), the
// stream closes its descriptor and nothing else; no 'drain' before any
// write; write(42) throws ERR_INVALID_ARG_TYPE without an 'error' event.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const file = tmpdir.resolve('write.txt')
const openOnFile = () =>
  fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === file
    } catch {
      return false
    }
  }).length

{
  const s = uring.WriteStream(file)
  s.on('error', common.mustNotCall())
  s.on('close', common.mustCall(() => {
    if (fs.existsSync('/proc/self/fd')) assert.strictEqual(openOnFile(), 0, 'the descriptor is closed')
  }))
  s.destroy()
}
{
  const s = uring.createWriteStream(tmpdir.resolve('write2.txt'))
  s.on('drain', () => assert.fail("'drain' before any write"))
  s.destroy()
}
{
  const s = uring.createWriteStream(tmpdir.resolve('write3.txt'))
  s.on('error', common.mustNotCall())
  assert.throws(() => s.write(42), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' })
  s.destroy()
}
