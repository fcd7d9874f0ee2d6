'use strict'
// After Node's promises-file-handle-stream.js, which uses the FileHandle's
// own createReadStream/createWriteStream; here a FileHandle goes to this
// package's streams as `fd`: written whole, then read back whole.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')
const { finished } = require('node:stream/promises')
const { buffer } = require('node:stream/consumers')

tmpdir.refresh()

async function writes() {
  const file = tmpdir.resolve('tmp-write.txt')
  const handle = await fs.promises.open(file, 'w')
  const data = Buffer.from('Hello world'.repeat(100), 'utf8')
  const w = uring.createWriteStream(null, { fd: handle })
  w.end(data)
  await finished(w)
  assert.deepStrictEqual(fs.readFileSync(file), data)
}

async function reads() {
  const file = tmpdir.resolve('tmp-read.txt')
  const data = Buffer.from('Hello world'.repeat(100), 'utf8')
  fs.writeFileSync(file, data)
  const handle = await fs.promises.open(file)
  assert.deepStrictEqual(await buffer(uring.createReadStream(null, { fd: handle })), data)
}

Promise.all([writes(), reads()]).then(common.mustCall())
