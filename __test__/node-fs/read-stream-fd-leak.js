'use strict'
// After Node's read-stream-fd-leak.js, which counts calls to a patched
// global fs.open/fs.close; here the process's own descriptors are counted:
// streams of an empty file closed or destroyed at once, 50 of each, leave
// no descriptor open.
const common = require('./common')
const { uring, fixtures } = common
const assert = require('node:assert')
const fs = require('node:fs')

const empty = fixtures.path('empty.txt')
const openOnEmpty = () =>
  fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === empty
    } catch {
      return false
    }
  }).length

function leaks(end, next) {
  let made = 0
  const timer = setInterval(() => {
    uring.createReadStream(empty)[end]()
    if (++made === 50) {
      clearInterval(timer)
      let checks = 0
      const check = () => {
        const open = openOnEmpty()
        if (open !== 0 && checks++ < 50) return setTimeout(check, 100)
        assert.strictEqual(open, 0, `descriptors left open after ${end}(): ${open}`)
        if (next) setTimeout(next, 100)
      }
      setTimeout(check, 100)
    }
  }, 2)
}

if (!fs.existsSync('/proc/self/fd')) {
  common.printSkipMessage('no /proc/self/fd to count descriptors')
} else {
  leaks('close', common.mustCall(() => leaks('destroy')))
}
