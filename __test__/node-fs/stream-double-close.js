'use strict'
// After Node's stream-double-close.js: destroy() twice, before or after
// 'open', on read and write streams, is harmless.
const common = require('./common')
const { uring, tmpdir } = common

tmpdir.refresh()

const twice = (s) => {
  s.destroy()
  s.destroy()
}
const beforeOpen = (s) => {
  s.destroy()
  s.on('open', common.mustCall(() => s.destroy()))
}
const onOpen = (s) => {
  s.on('open', common.mustCall(() => {
    s.destroy()
    s.destroy()
  }))
}
twice(uring.createReadStream(__filename))
beforeOpen(uring.createReadStream(__filename))
onOpen(uring.createReadStream(__filename))
twice(uring.createWriteStream(`${tmpdir.path}/dummy1`))
beforeOpen(uring.createWriteStream(`${tmpdir.path}/dummy2`))
onOpen(uring.createWriteStream(`${tmpdir.path}/dummy3`))
