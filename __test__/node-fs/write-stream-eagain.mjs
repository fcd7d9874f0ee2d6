// After Node's write-stream-eagain.mjs: with a custom `fs` whose first
// write fails with EAGAIN, fs's streams retry (Node 20 and later): two
// writes, no error, the bytes in the file. A stream that reports itself
// destroyed when its write completes fails with an error.
import { createRequire } from 'node:module'
import assert from 'node:assert'
import fs from 'node:fs'
import { describe, it, mock } from 'node:test'
import { finished } from 'node:stream/promises'

const require = createRequire(import.meta.url)
const common = require('./common')
const { uring, tmpdir } = common

tmpdir.refresh()
const file = tmpdir.resolve('writeStreamEAGAIN.txt')
const eagain = (fd, buffer, offset, length, position, callback) => {
  callback(Object.assign(new Error(), { code: 'EAGAIN' }), 0, buffer)
}

describe('WriteStream EAGAIN', () => {
  it('retries a write that failed with EAGAIN', async () => {
    const write = mock.fn(fs.write)
    write.mock.mockImplementationOnce(eagain)
    const s = uring.createWriteStream(file, {
      fs: { open: common.mustCall(fs.open), write, close: common.mustCall(fs.close) },
    })
    s.end('foo')
    s.on('close', common.mustCall())
    s.on('error', common.mustNotCall())
    await finished(s)
    assert.strictEqual(write.mock.callCount(), 2)
    assert.strictEqual(fs.readFileSync(file, 'utf8'), 'foo')
  })

  it('fails a write that completes on a destroyed stream', async () => {
    const s = uring.createWriteStream(file)
    mock.getter(s, 'destroyed', () => true)
    s.end('foo')
    await finished(s).catch(common.mustCall())
  })
})
