'use strict'
// After Node's read-stream-pos.js (nodejs/node#33940): a file appended to
// every millisecond is read by one stream after another, each from where the
// last one stopped, 10 bytes at a time. A stream that found the end (a short
// chunk) must still read on when the file grew meanwhile, as fs does: the
// test waits for a chunk that follows a short one in the same stream, and
// checks that no line came out broken. fs gets there within seconds; the
// test gives up after 90.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
const file = tmpdir.resolve('read_stream_pos_test.txt')
fs.writeFileSync(file, '')

let counter = 0
const writer = setInterval(() => {
  counter++
  fs.writeFileSync(file, `hello at ${counter}\n`, { flag: 'a' })
}, 1)

const hwm = 10
let bufs = []
let sawShort = false
let pos = 0
let stream = null
const started = Date.now()

const reader = setInterval(() => {
  if (stream) return
  stream = uring.createReadStream(file, { highWaterMark: hwm, start: pos })
  stream.on('data', common.mustCallAtLeast((chunk) => {
    pos += chunk.length
    bufs.push(chunk)
    if (sawShort) {
      const broken = Buffer.concat(bufs)
        .toString()
        .split('\n')
        .filter((line) => line && !line.startsWith('hello at'.slice(0, line.length)))
      assert.strictEqual(broken.length, 0)
      console.log(`a chunk after a short one after ${Date.now() - started} ms`)
      done()
      return
    }
    if (chunk.length !== hwm) sawShort = true
  }))
  stream.on('end', () => {
    stream = null
    sawShort = false
    bufs = []
  })
}, 10)

const giveUp = setTimeout(() => {
  assert.fail('no chunk ever followed a short chunk in the same stream within 90 s')
}, 90000)

function done() {
  clearInterval(reader)
  clearInterval(writer)
  clearTimeout(giveUp)
  if (stream && !stream.destroyed) {
    stream.on('close', () => process.exit())
    stream.destroy()
  } else {
    process.exit()
  }
}
