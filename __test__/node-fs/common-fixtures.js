'use strict'
// The fixture files Node's fs stream tests read (Node keeps them in
// test/fixtures), made here: same names, sizes and kinds of content.

const fs = require('node:fs')
const path = require('node:path')

function makeFixtures(dir) {
  fs.mkdirSync(dir, { recursive: true })
  // 10,000 horizontal ellipses (U+2026): 30,000 bytes of 3-byte characters.
  fs.writeFileSync(path.join(dir, 'elipses.txt'), '\u2026'.repeat(10000))
  fs.writeFileSync(path.join(dir, 'x.txt'), 'xyz\n')
  fs.writeFileSync(path.join(dir, 'empty.txt'), '')
  // A small file whose bytes are not all alike.
  fs.writeFileSync(
    path.join(dir, 'loop.js'),
    "'use strict'\nlet n = 0\nfor (const word of ['alpha', 'beta', 'gamma', 'delta']) {\n  n += word.length\n  console.log(word, n)\n}\nprocess.exit(n % 7)\n",
  )
}

module.exports = { makeFixtures }
