'use strict'
// After Node's read-stream-concurrent-reads.js: 2,000 reads of a small
// file, six at a time, give its bytes, and the chunks do not keep much more
// memory alive than the data itself (no large shared backing store).
const common = require('./common')
const { uring, fixtures } = common
const assert = require('node:assert')
const fs = require('node:fs')

const file = fixtures.path('loop.js')
const content = fs.readFileSync(file)
const TOTAL = 2000
let started = 0
let finished = 0
const backing = new Set()

function readOnce() {
  started++
  const chunks = []
  uring
    .createReadStream(file)
    .on('data', (chunk) => {
      chunks.push(chunk)
      backing.add(chunk.buffer)
    })
    .on('end', common.mustCall(() => {
      if (started < TOTAL) readOnce()
      assert.deepStrictEqual(Buffer.concat(chunks), content)
      if (++finished === TOTAL) {
        let held = 0
        for (const ab of backing) held += ab.byteLength
        assert(held / (TOTAL * content.length) <= 3, `${held} bytes of ArrayBuffers held for ${TOTAL} reads of ${content.length} bytes`)
      }
    }))
}
for (let i = 0; i < 6; i++) readOnce()
