'use strict'
// After Node's stream-options.js: an fd that is a string, or a path that
// is a number, is a TypeError for both streams.
const { uring, mustNotMutateObjectDeep } = require('./common')
const assert = require('node:assert')

const typeError = { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }
assert.throws(() => uring.createReadStream(null, mustNotMutateObjectDeep({ fd: 'k' })), typeError)
assert.throws(() => uring.createWriteStream(null, mustNotMutateObjectDeep({ fd: 'k' })), typeError)
assert.throws(() => uring.createReadStream(46), typeError)
assert.throws(() => uring.createWriteStream(46), typeError)
