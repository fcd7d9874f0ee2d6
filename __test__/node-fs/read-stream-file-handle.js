'use strict'
// After Node's read-stream-file-handle.js: a FileHandle as `fd` is read
// through the handle (its read() is called), closed with the stream, and a
// stream over it closes when the handle does; with a custom `fs` it throws
// ERR_METHOD_NOT_IMPLEMENTED, as fs does.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const file = tmpdir.resolve('read_stream_filehandle_test.txt')
const input = 'hello world'
fs.writeFileSync(file, input)

fs.promises.open(file, 'r').then((handle) => {
  handle.on('close', common.mustCall())
  const s = uring.createReadStream(null, { fd: handle })
  let text = ''
  s.on('data', common.mustCallAtLeast((chunk) => {
    text += chunk
  }))
  s.on('end', common.mustCall(() => assert.strictEqual(text, input)))
  s.on('close', common.mustCall())
}).then(common.mustCall())

fs.promises.open(file, 'r').then((handle) => {
  // The handle closed first: the stream closes, without data.
  handle.on('close', common.mustCall())
  const s = uring.createReadStream(null, { fd: handle })
  s.on('data', common.mustNotCall())
  s.on('close', common.mustCall())
  return handle.close()
}).then(common.mustCall())

fs.promises.open(file, 'r').then((handle) => {
  // The handle closed from a 'data' handler.
  handle.on('close', common.mustCall())
  const s = uring.createReadStream(null, { fd: handle })
  s.on('close', common.mustCall())
  s.on('data', common.mustCall(() => handle.close()))
}).then(common.mustCall())

fs.promises.open(file, 'r').then((handle) => {
  // The stream closed: the handle too.
  handle.on('close', common.mustCall())
  const s = uring.createReadStream(null, { fd: handle })
  s.on('close', common.mustCall())
  s.close()
}).then(common.mustCall())

fs.promises.open(file, 'r').then((handle) => {
  assert.throws(() => uring.createReadStream(null, { fd: handle, fs }), {
    code: 'ERR_METHOD_NOT_IMPLEMENTED',
    name: 'Error',
    message: 'The FileHandle with fs method is not implemented',
  })
  return handle.close()
}).then(common.mustCall())

fs.promises.open(file, 'r').then((handle) => {
  // Reads go through the handle's read().
  const read = handle.read
  handle.read = common.mustCallAtLeast(function (...args) {
    return Reflect.apply(read, this, args)
  })
  const s = uring.createReadStream(null, { fd: handle })
  let text = ''
  s.on('data', common.mustCallAtLeast((chunk) => {
    text += chunk
  }))
  s.on('end', common.mustCall(() => assert.strictEqual(text, input)))
}).then(common.mustCall())
