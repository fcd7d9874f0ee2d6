'use strict'
// After Node's write-stream-flush.js, whose flush tests spy on the global
// fs.fsync; here: `flush` must be a boolean; with a custom `fs`, its fsync
// is called exactly once, with (fd, callback), when flush is true and never
// otherwise; on the engine, a flushed stream's data is in the file at
// close; a FileHandle with flush (fs's own path) too.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')
const test = require('node:test')

tmpdir.refresh()
let n = 0
const nextFile = () => tmpdir.resolve(`${n++}.out`)

test('validation', () => {
  for (const flush of ['true', '', 0, 1, [], {}, Symbol('x')]) {
    assert.throws(() => uring.createWriteStream(nextFile(), { flush }), { code: 'ERR_INVALID_ARG_TYPE' })
  }
})

function withFsync(calls) {
  return { ...fs, fsync: (...args) => {
    calls.push(args)
    return fs.fsync(...args)
  } }
}

test('flush: true fsyncs once through a custom fs', (t, done) => {
  const calls = []
  const file = nextFile()
  const s = uring.createWriteStream(file, { flush: true, fs: withFsync(calls) })
  s.write('foo', common.mustSucceed(() => {
    s.close(common.mustSucceed(() => {
      assert.strictEqual(calls.length, 1)
      assert.strictEqual(calls[0].length, 2)
      assert.strictEqual(typeof calls[0][0], 'number')
      assert.strictEqual(typeof calls[0][1], 'function')
      assert.strictEqual(fs.readFileSync(file, 'utf8'), 'foo')
      done()
    }))
  }))
})

test('no flush: no fsync', (t, done) => {
  const values = [undefined, null, false]
  const calls = []
  let left = values.length
  for (const flush of values) {
    const file = nextFile()
    const s = uring.createWriteStream(file, { flush, fs: withFsync(calls) })
    s.write('foo', common.mustSucceed(() => {
      s.close(common.mustSucceed(() => {
        assert.strictEqual(fs.readFileSync(file, 'utf8'), 'foo')
        if (--left === 0) {
          assert.strictEqual(calls.length, 0)
          done()
        }
      }))
    }))
  }
})

test('flush on the engine: the data is in the file', (t, done) => {
  const file = nextFile()
  const s = uring.createWriteStream(file, { flush: true })
  s.write('foo', common.mustSucceed(() => {
    s.close(common.mustSucceed(() => {
      assert.strictEqual(fs.readFileSync(file, 'utf8'), 'foo')
      done()
    }))
  }))
})

test('works with file handles', async () => {
  const file = nextFile()
  const handle = await fs.promises.open(file, 'w')
  const s = uring.createWriteStream(null, { fd: handle, flush: true })
  await new Promise((resolve) => {
    s.write('foo', common.mustSucceed(() => {
      s.close(common.mustSucceed(() => {
        assert.strictEqual(fs.readFileSync(file, 'utf8'), 'foo')
        resolve()
      }))
    }))
  })
})
