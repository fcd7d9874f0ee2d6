'use strict'
// After Node's test/parallel/fs/read-stream.js: chunks, pause/resume,
// encodings, ranges, a FIFO, autoClose: false with the fd reused, errors.
const common = require('./common')
const { uring, fixtures, tmpdir } = common
const assert = require('node:assert')
const childProcess = require('node:child_process')
const fs = require('node:fs')

const ellipses = fixtures.path('elipses.txt')
const xyz = fixtures.path('x.txt')

function readWhole(options) {
  let paused = false
  let seen = 0
  const size = fs.statSync(ellipses).size
  const s = uring.createReadStream(ellipses, options)
  assert.strictEqual(s.bytesRead, 0)
  s.on('open', common.mustCall((fd) => {
    s.total = 0
    assert.strictEqual(typeof fd, 'number')
    assert.strictEqual(s.bytesRead, 0)
    assert.ok(s.readable)
    s.pause()
    s.resume()
    s.pause()
    s.resume()
  }))
  s.on('data', (chunk) => {
    assert.ok(chunk instanceof Buffer)
    assert.strictEqual(chunk.byteOffset % 8, 0)
    assert.ok(!paused)
    s.total += chunk.length
    seen += chunk.length
    assert.strictEqual(s.bytesRead, seen)
    paused = true
    s.pause()
    setTimeout(() => {
      paused = false
      s.resume()
    }, 10)
  })
  s.on('end', common.mustCall(() => {
    assert.strictEqual(seen, size)
    assert.strictEqual(s.bytesRead, size)
  }))
  s.on('close', common.mustCall(() => {
    assert.strictEqual(seen, size)
    assert.strictEqual(s.bytesRead, size)
  }))
  process.on('exit', () => assert.strictEqual(s.total, 30000))
}

readWhole({})
// A custom fs: exactly its functions are called.
readWhole({
  fs: {
    open: common.mustCall(fs.open),
    read: common.mustCallAtLeast(fs.read, 1),
    close: common.mustCall(fs.close),
  },
})

{
  const s = uring.createReadStream(ellipses, common.mustNotMutateObjectDeep({ encoding: 'utf8' }))
  let chars = 0
  s.on('data', (text) => {
    assert.strictEqual(typeof text, 'string')
    chars += text.length
    for (const ch of text) assert.strictEqual(ch, '\u2026')
  })
  s.on('close', common.mustCall())
  process.on('exit', () => assert.strictEqual(chars, 10000))
}

function readsTo(options, want) {
  const s = uring.createReadStream(xyz, common.mustNotMutateObjectDeep(options))
  let text = ''
  s.on('data', (chunk) => {
    text += chunk.toString('utf-8')
  })
  s.on('end', common.mustCall(() => assert.strictEqual(text, want)))
}
// bufferSize is an option of long ago: ignored.
readsTo({ bufferSize: 1, start: 1, end: 2 }, 'yz')
readsTo({ bufferSize: 1, start: 1 }, 'yz\n')
readsTo({ bufferSize: 1.23, start: 1 }, 'yz\n')
readsTo({ start: 0, end: 0 }, 'x')
// An end without a start counts from 0.
readsTo({ end: 1 }, 'xy')

assert.throws(() => uring.createReadStream(xyz, common.mustNotMutateObjectDeep({ start: 10, end: 2 })), {
  code: 'ERR_OUT_OF_RANGE',
  message: 'The value of "start" is out of range. It must be <= "end" (here: 2). Received 10',
  name: 'RangeError',
})

if (!common.isWindows) {
  // An end without a start on a FIFO: no positional reads (a FIFO has no
  // offsets), the end still counts bytes.
  tmpdir.refresh()
  const fifo = `${tmpdir.path}/foo.pipe`
  const made = childProcess.spawnSync('mkfifo', [fifo])
  if (!made.error) {
    childProcess.exec(`echo "xyz foobar" > '${fifo}'`)
    const s = new uring.createReadStream(fifo, common.mustNotMutateObjectDeep({ end: 1 }))
    let text = ''
    s.on('data', (chunk) => {
      text += chunk
    })
    s.on('end', common.mustCall(() => {
      assert.strictEqual(text, 'xy')
      fs.unlinkSync(fifo)
    }))
  } else {
    common.printSkipMessage('mkfifo not available')
  }
}

{
  // Paused and resumed at once.
  const s = uring.createReadStream(xyz)
  s.pause()
  s.resume()
}

{
  // autoClose: false leaves the descriptor open and usable after the end.
  let s = uring.createReadStream(xyz, common.mustNotMutateObjectDeep({ autoClose: false }))
  let text = ''
  s.on('data', (chunk) => {
    text += chunk
  })
  s.on('end', common.mustCall(() => {
    assert.strictEqual(text, 'xyz\n')
    process.nextTick(() => {
      assert(!s.closed)
      assert(!s.destroyed)
      again()
    })
  }))
  function again() {
    s = uring.createReadStream(null, common.mustNotMutateObjectDeep({ fd: s.fd, start: 0 }))
    let more = ''
    s.on('data', (chunk) => {
      more += chunk
    })
    s.on('end', common.mustCall(() => assert.strictEqual(more, 'xyz\n')))
    process.on('exit', () => {
      assert(s.closed)
      assert(s.destroyed)
    })
  }
}

{
  // A bad descriptor with autoClose: false: an error, and the stream is
  // neither closed nor destroyed by it.
  const s = uring.createReadStream(null, common.mustNotMutateObjectDeep({ fd: 13337, autoClose: false }))
  s.on('data', common.mustNotCall())
  s.on('error', common.mustCall())
  process.on('exit', () => {
    assert(!s.closed)
    assert(!s.destroyed)
    assert(s.fd)
  })
}

{
  // A missing file: the stream is destroyed and closed.
  const s = uring.createReadStream('/path/to/file/that/does/not/exist')
  s.on('data', common.mustNotCall())
  s.on('error', common.mustCall())
  process.on('exit', () => {
    assert(s.closed)
    assert(s.destroyed)
  })
}
