'use strict'
// After Node's read-stream-inherit.js: options inherited through the
// prototype count (fs copies them with for-in), ReadStream works without
// `new`, and the stream has fs's properties (start, end, autoClose).
const common = require('./common')
const { uring, fixtures } = common
const assert = require('node:assert')

const ellipses = fixtures.path('elipses.txt')
const xyz = fixtures.path('x.txt')

{
  let paused = false
  const s = uring.ReadStream(ellipses)
  s.on('open', common.mustCall((fd) => {
    s.total = 0
    assert.strictEqual(typeof fd, 'number')
    assert.ok(s.readable)
    s.pause()
    s.resume()
    s.pause()
    s.resume()
  }))
  s.on('data', common.mustCallAtLeast((chunk) => {
    assert.ok(chunk instanceof Buffer)
    assert.ok(!paused)
    s.total += chunk.length
    paused = true
    s.pause()
    setTimeout(() => {
      paused = false
      s.resume()
    }, 10)
  }))
  s.on('end', common.mustCall())
  s.on('close', common.mustCall(() => assert.strictEqual(s.total, 30000)))
}

{
  const s = uring.createReadStream(ellipses, { __proto__: { encoding: 'utf8' } })
  let chars = 0
  s.on('data', (text) => {
    assert.strictEqual(typeof text, 'string')
    chars += text.length
    for (const ch of text) assert.strictEqual(ch, '\u2026')
  })
  s.on('close', common.mustCall(() => assert.strictEqual(chars, 10000)))
}

function readsTo(options, want, props) {
  const s = uring.createReadStream(xyz, options)
  for (const [k, v] of Object.entries(props)) assert.strictEqual(s[k], v, k)
  let text = ''
  s.on('data', (chunk) => {
    text += chunk.toString('utf-8')
  })
  s.on('end', common.mustCall(() => assert.strictEqual(text, want)))
}
readsTo({ __proto__: { bufferSize: 1, start: 1, end: 2 } }, 'yz', { start: 1, end: 2 })
readsTo({ __proto__: { bufferSize: 1, start: 1 } }, 'yz\n', { start: 1 })
readsTo({ __proto__: { bufferSize: 1.23, start: 1 } }, 'yz\n', { start: 1 })
readsTo({ __proto__: { start: 0, end: 0 } }, 'x', { start: 0, end: 0 })

assert.throws(() => uring.createReadStream(xyz, { __proto__: { start: 10, end: 2 } }), {
  code: 'ERR_OUT_OF_RANGE',
  message: 'The value of "start" is out of range. It must be <= "end" (here: 2). Received 10',
  name: 'RangeError',
})

{
  const s = uring.createReadStream(xyz)
  s.pause()
  s.resume()
}

{
  let text = ''
  let s = uring.createReadStream(xyz, { __proto__: { autoClose: false } })
  assert.strictEqual(s.autoClose, false)
  s.on('data', (chunk) => {
    text += chunk
  })
  s.on('end', common.mustCall(() => {
    process.nextTick(common.mustCall(() => {
      assert(!s.closed)
      assert(!s.destroyed)
      assert.strictEqual(text, 'xyz\n')
      again()
    }))
  }))
  function again() {
    s = uring.createReadStream(null, { __proto__: { fd: s.fd, start: 0 } })
    let more = ''
    s.on('data', (chunk) => {
      more += chunk
    })
    s.on('end', common.mustCall(() => assert.strictEqual(more, 'xyz\n')))
  }
  process.on('exit', () => {
    assert(s.closed)
    assert(s.destroyed)
  })
}

{
  const s = uring.createReadStream(null, { __proto__: { fd: 13337, autoClose: false } })
  s.on('data', common.mustNotCall())
  s.on('error', common.mustCall())
  process.on('exit', () => {
    assert(!s.closed)
    assert(!s.destroyed)
    assert(s.fd)
  })
}

{
  const s = uring.createReadStream('/path/to/file/that/does/not/exist')
  s.on('data', common.mustNotCall())
  s.on('error', common.mustCall())
  process.on('exit', () => {
    assert(s.closed)
    assert(s.destroyed)
  })
}
