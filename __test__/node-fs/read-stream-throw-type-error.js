'use strict'
// After Node's read-stream-throw-type-error.js: which options are accepted,
// and the TypeError or RangeError for each bad one.
const { uring, fixtures } = require('./common')
const assert = require('node:assert')

const file = fixtures.path('x.txt')
for (const ok of [undefined, null, 'utf8', { encoding: 'utf8' }, {}, { start: 0 }, { end: Infinity }, { start: 1, end: 5 }]) {
  uring.createReadStream(file, ok).destroy()
}
const fails = (options, code, name) =>
  assert.throws(() => uring.createReadStream(file, options), { code, name }, JSON.stringify(options))
for (const bad of [123, 0, true, false]) fails(bad, 'ERR_INVALID_ARG_TYPE', 'TypeError')
for (const bad of [{ start: 'invalid' }, { end: 'invalid' }, { start: 'invalid', end: 'invalid' }]) {
  fails(bad, 'ERR_INVALID_ARG_TYPE', 'TypeError')
}
const UNSAFE = 2 ** 53
for (const bad of [
  { start: NaN },
  { end: NaN },
  { start: NaN, end: NaN },
  { start: -1 },
  { end: -1 },
  { start: -1, end: -1 },
  { start: 0.1 },
  { end: 0.1 },
  { start: 0.1, end: 0.1 },
  { start: 5, end: 1 },
  { start: UNSAFE, end: Infinity },
  { start: 0, end: UNSAFE },
]) {
  fails(bad, 'ERR_OUT_OF_RANGE', 'RangeError')
}
