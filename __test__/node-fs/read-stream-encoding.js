'use strict'
// After Node's read-stream-encoding.js: an encoding given as the options
// string; piped into a Writable that decodes it back, the bytes are the
// file's.
const { uring, fixtures } = require('./common')
const assert = require('node:assert')
const { Writable } = require('node:stream')

const sink = new Writable({
  write(chunk, _enc, _next) {
    assert(chunk.equals(Buffer.from('xyz')))
  },
})
sink.setDefaultEncoding('base64')
uring.createReadStream(fixtures.path('x.txt'), 'base64').pipe(sink)
