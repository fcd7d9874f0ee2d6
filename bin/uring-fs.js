#!/usr/bin/env node
// uring-fs serve [dir] [options]: a static file server whose responses come
// from sendFile, on every core (see lib/serve-options.ts for the flags,
// lib/serve-cluster.ts for the processes, lib/serve-app.ts for a server).
'use strict'
const { USAGE, UsageError, parseServeArgs } = require('../lib/serve-options.js')

function main(argv) {
  let parsed
  try {
    parsed = parseServeArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`uring-fs: ${err.message} (see uring-fs --help)\n`)
    process.exit(2)
  }
  if (parsed.command === 'help') {
    process.stdout.write(USAGE)
    return process.exit(0)
  }
  if (parsed.command === 'version') {
    process.stdout.write(`${require('../package.json').version}\n`)
    return process.exit(0)
  }
  const { checkRoot } = require('../lib/serve-app.js')
  const problem = checkRoot(parsed.settings.dir)
  if (problem) {
    process.stderr.write(`uring-fs: ${problem}\n`)
    process.exit(2)
  }
  require('../lib/serve-cluster.js').runPrimary(parsed.settings)
}

module.exports = { main }
if (require.main === module) main(process.argv.slice(2))
