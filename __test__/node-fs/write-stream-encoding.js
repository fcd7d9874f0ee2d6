'use strict'
// After Node's write-stream-encoding.js: base64 read stream piped into a
// base64 write stream copies the bytes; read back as latin1, they are the
// original.
const { uring, fixtures, tmpdir } = require('./common')
const assert = require('node:assert')
const { Writable } = require('node:stream')

tmpdir.refresh()
const copy = tmpdir.resolve('x.txt')
uring
  .createReadStream(fixtures.path('x.txt'), { encoding: 'base64' })
  .pipe(uring.createWriteStream(copy, { encoding: 'base64' }))
  .on('finish', () => {
    const check = new Writable({
      write(chunk, _enc, _next) {
        assert(chunk.equals(Buffer.from('xyz\n')))
      },
    })
    check.setDefaultEncoding('latin1')
    uring.createReadStream(copy, { encoding: 'latin1' }).pipe(check)
  })
