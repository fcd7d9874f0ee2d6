'use strict'
// After Node's stream-fs-options.js: a custom `fs` lacking one of the
// functions a stream needs is a TypeError naming it.
const { uring, fixtures, tmpdir } = require('./common')
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const out = tmpdir.resolve('write-end-test0.txt')

for (const fn of ['open', 'close', 'write']) {
  const custom = { ...fs, [fn]: null }
  if (fn === 'write') custom.writev = null
  assert.throws(() => uring.createWriteStream(out, { fs: custom }), {
    code: 'ERR_INVALID_ARG_TYPE',
    name: 'TypeError',
    message: `The "options.fs.${fn}" property must be of type function. Received null`,
  })
}
assert.throws(() => uring.createWriteStream(out, { fs: { ...fs, writev: 'not a fn' } }), {
  code: 'ERR_INVALID_ARG_TYPE',
  name: 'TypeError',
  message: 'The "options.fs.writev" property must be of type function. Received type string (\'not a fn\')',
})
for (const fn of ['open', 'close', 'read']) {
  assert.throws(() => uring.createReadStream(fixtures.path('x.txt'), { fs: { ...fs, [fn]: null } }), {
    code: 'ERR_INVALID_ARG_TYPE',
    name: 'TypeError',
    message: `The "options.fs.${fn}" property must be of type function. Received null`,
  })
}
