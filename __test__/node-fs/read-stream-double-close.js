'use strict'
// After Node's read-stream-double-close.js: close() and destroy() twice,
// each callback called once.
const common = require('./common')
const { uring } = common

{
  const s = uring.createReadStream(__filename)
  s.close(common.mustCall())
  s.close(common.mustCall())
}
{
  const s = uring.createReadStream(__filename)
  s.destroy(null, common.mustCall())
  s.destroy(null, common.mustCall())
}
