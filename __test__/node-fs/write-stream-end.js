'use strict'
// After Node's write-stream-end.js: end() alone closes; end(data, encoding)
// writes it; 'open' comes before 'finish'.
const common = require('./common')
const { uring, tmpdir } = common
const assert = require('node:assert')
const fs = require('node:fs')

tmpdir.refresh()
{
  const s = uring.createWriteStream(tmpdir.resolve('write-end-test0.txt'))
  s.end()
  s.on('close', common.mustCall())
}
{
  const file = tmpdir.resolve('write-end-test1.txt')
  const s = uring.createWriteStream(file)
  s.end('a\n', 'utf8')
  s.on('close', common.mustCall(() => assert.strictEqual(fs.readFileSync(file, 'utf8'), 'a\n')))
}
{
  const s = uring.createWriteStream(tmpdir.resolve('write-end-test2.txt'))
  s.end()
  let opened = false
  s.on('open', () => {
    opened = true
  })
  s.on('finish', common.mustCall(() => assert.strictEqual(opened, true)))
}
