#!/usr/bin/env node
// Runs the `send` package's own test suite (pillarjs/send test/send.js,
// with its fixtures) against sendFile, through __test__/send-suite/adapter.js.
// The suite is not part of this repository (it is send's): give a checkout
// of pillarjs/send (or its git directory), or let this script clone it.
//
//   node scripts/send-suite.js [--send-dir DIR]     (or SEND_SUITE_DIR=DIR)
//
// Without a copy and without network access it says so and exits 0. It
// fails (exit 1) when a test fails that is not in NOT_APPLICABLE: the tests
// of send's event API, which sendFile replaces with its promise's result.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const REPO = path.join(__dirname, '..')
const WORK = path.join(REPO, 'target', 'send-suite')

/** Tests that use what sendFile has no equivalent of, with why. */
const NOT_APPLICABLE = {
  'send(file).pipe(res) should emit ENOENT if the file does not exist':
    "reads err.code in an 'error' listener (an err payload); sendFile gives the cause in its result (error.code 'ENOENT')",
  'send(file).pipe(res) should 404 if file disappears after stat, before open':
    "replaces the stream's send() from a 'file' listener to fake the race; sendFile opens first and stats the open file, so the race it fakes cannot happen",
  'send(file).pipe(res) should 500 on file stream error':
    "makes the file stream fail from a 'stream' listener; sendFile's body goes file -> socket in the kernel, with no stream",
  'send(file).pipe(res) when "directory" listeners are present should be called when sending directory':
    "the 'directory' event; sendFile redirects (or 404s with redirect: false)",
  'send(file).pipe(res) when "directory" listeners are present should be called with path':
    "the 'directory' event",
}

function arg(name) {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

/** Copies test/ of pillarjs/send from a checkout or a git dir into WORK; false if there is none. */
function fetchSuite() {
  fs.rmSync(WORK, { recursive: true, force: true })
  fs.mkdirSync(WORK, { recursive: true })
  let dir = arg('send-dir') || process.env.SEND_SUITE_DIR
  if (!dir) {
    const clone = spawnSync('git', ['clone', '--quiet', '--depth', '1', 'https://github.com/pillarjs/send', path.join(WORK, 'repo')], {
      stdio: 'ignore',
      timeout: 60_000,
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    })
    if (clone.status !== 0) return false
    dir = path.join(WORK, 'repo')
  }
  if (fs.existsSync(path.join(dir, 'test', 'send.js'))) {
    fs.cpSync(path.join(dir, 'test'), path.join(WORK, 'test'), { recursive: true })
    return true
  }
  // A git directory without a work tree.
  const tar = spawnSync('git', ['--git-dir', dir, 'archive', 'HEAD', 'test'], { maxBuffer: 64 << 20 })
  if (tar.status !== 0) return false
  const x = spawnSync('tar', ['-x', '-C', WORK], { input: tar.stdout })
  return x.status === 0 && fs.existsSync(path.join(WORK, 'test', 'send.js'))
}

function main() {
  if (!fetchSuite()) {
    console.log('send suite: skipped (no copy of pillarjs/send: pass --send-dir DIR or SEND_SUITE_DIR, or allow git clone from GitHub)')
    return
  }
  // The suite requires '..': make that the adapter.
  fs.writeFileSync(path.join(WORK, 'index.js'), `module.exports = require(${JSON.stringify(path.join(REPO, '__test__', 'send-suite', 'adapter.js'))})\n`)
  const out = path.join(WORK, 'results.json')
  const mocha = spawnSync(
    process.execPath,
    [require.resolve('mocha/bin/mocha.js'), '--reporter', 'json', '--reporter-option', `output=${out}`, '--timeout', '10000', path.join(WORK, 'test', 'send.js')],
    { cwd: WORK, encoding: 'utf8', env: { ...process.env, NODE_PATH: path.join(REPO, 'node_modules') } },
  )
  if (!fs.existsSync(out)) {
    console.error(`send suite: mocha did not report (exit ${mocha.status}):\n${mocha.stdout}\n${mocha.stderr}`)
    process.exit(1)
  }
  const r = JSON.parse(fs.readFileSync(out, 'utf8'))
  const failed = r.failures.map((f) => f.fullTitle)
  const unexpected = r.failures.filter((f) => !(f.fullTitle in NOT_APPLICABLE))
  const passedAnyway = Object.keys(NOT_APPLICABLE).filter((t) => r.passes.some((p) => p.fullTitle === t))
  console.log(`send suite: ${r.stats.passes} passed, ${r.stats.failures} failed of ${r.stats.tests} (${failed.length - unexpected.length} of those not applicable)`)
  for (const t of failed) if (t in NOT_APPLICABLE) console.log(`  n/a  ${t}: ${NOT_APPLICABLE[t]}`)
  for (const t of passedAnyway) console.log(`  note: listed as not applicable but passed: ${t}`)
  for (const f of unexpected) console.log(`  FAIL ${f.fullTitle}\n       ${String(f.err && f.err.message).split('\n')[0]}`)
  if (unexpected.length) process.exit(1)
}

main()
