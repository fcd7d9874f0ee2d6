'use strict'
// After Node's read-stream-resume.js: resume() from the first 'data'
// handler, with a pause and a later resume around it, loses nothing.
const common = require('./common')
const { uring, fixtures } = common
const assert = require('node:assert')

let text = ''
let first = true
const s = uring.createReadStream(fixtures.path('x.txt'))
s.setEncoding('utf8')
s.on('data', common.mustCallAtLeast((chunk) => {
  text += chunk
  if (first) {
    first = false
    s.resume()
  }
}))
process.nextTick(() => {
  s.pause()
  setTimeout(() => s.resume(), 100)
})
process.on('exit', () => assert.strictEqual(text, 'xyz\n'))
