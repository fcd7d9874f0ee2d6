'use strict'
// A small stand-in for Node's test/common, enough for the fs stream tests
// of this folder: call-count checks verified at exit, a scratch directory,
// generated fixtures, and the package under test (the checkout's build, or
// URING_FS_PACKAGE: a path or package name, for a packed install).

const assert = require('node:assert')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { inspect } = require('node:util')

const { makeFixtures } = require('./common-fixtures')

const uring = require(process.env.URING_FS_PACKAGE || path.join(__dirname, '..', '..'))

/** Checks that run when the process exits: every expected call happened. */
const atExit = []
process.on('exit', (code) => {
  if (code !== 0) return
  for (const check of atExit) {
    const problem = check()
    if (problem) {
      console.error(`not ok: ${problem}`)
      process.exitCode = 1
    }
  }
})

/** The test's line that called the helper `depth` frames up. */
function where(depth) {
  const line = new Error().stack.split('\n')[depth + 1] || ''
  return line.trim()
}

function counted(fn, check, what) {
  let calls = 0
  const at = where(3)
  atExit.push(() => (check(calls) ? null : `${what}, called ${calls} time(s) (${at})`))
  return function (...args) {
    calls++
    return fn ? fn.apply(this, args) : undefined
  }
}

/** `fn`, which must have been called exactly `n` times when the process exits. */
function mustCall(fn, n = 1) {
  if (typeof fn === 'number') [fn, n] = [undefined, fn]
  return counted(fn, (c) => c === n, `expected exactly ${n} call(s)`)
}

/** `fn`, which must have been called at least `n` times when the process exits. */
function mustCallAtLeast(fn, n = 1) {
  if (typeof fn === 'number') [fn, n] = [undefined, fn]
  return counted(fn, (c) => c >= n, `expected at least ${n} call(s)`)
}

/** A function that fails the test if it is ever called. */
function mustNotCall(msg = 'function should not have been called') {
  const at = where(2)
  return (...args) => {
    assert.fail(`${msg} (${at}) with ${inspect(args, { depth: 1 })}`)
  }
}

/** A callback that must be called once, without an error. */
function mustSucceed(fn) {
  return mustCall(function (err, ...rest) {
    assert.ifError(err)
    if (fn) return fn.apply(this, rest)
  })
}

const unmutable = new WeakMap()
/** A view of `obj` that fails the test on any change to it or to what it holds. */
function mustNotMutateObjectDeep(obj) {
  if (obj === null || typeof obj !== 'object') return obj
  let proxy = unmutable.get(obj)
  if (proxy) return proxy
  const refuse = (what) => () => assert.fail(`expected no side effects on the options, got ${what}`)
  proxy = new Proxy(obj, {
    get: (target, key, receiver) => mustNotMutateObjectDeep(Reflect.get(target, key, receiver)),
    set: refuse('a property set'),
    defineProperty: refuse('a property defined'),
    deleteProperty: refuse('a property deleted'),
    setPrototypeOf: refuse('its prototype changed'),
    preventExtensions: refuse('extensions prevented'),
  })
  unmutable.set(obj, proxy)
  return proxy
}

/** The warning `name` with `message` (and `code`) must be emitted before exit. */
function expectWarning(name, message, code) {
  let seen = false
  process.on('warning', (w) => {
    if (w.name === name && w.message === message && (code === undefined || w.code === code)) seen = true
  })
  atExit.push(() => (seen ? null : `expected the warning ${name} ${code}: ${message}`))
}

function printSkipMessage(msg) {
  console.log(`1..0 # Skipped: ${msg}`)
}

const tmpPath = path.join(process.env.URING_FS_NODE_TMP || os.tmpdir(), `uring-fs-node-fs.${process.pid}`)
const tmpdir = {
  path: tmpPath,
  refresh() {
    fs.rmSync(tmpPath, { recursive: true, force: true })
    fs.mkdirSync(tmpPath, { recursive: true })
  },
  resolve(...parts) {
    return path.resolve(tmpPath, ...parts)
  },
}
process.on('exit', () => fs.rmSync(tmpPath, { recursive: true, force: true }))

/** Fixture files, made once per run (the runner passes their folder). */
const fixtureDir = process.env.URING_FS_NODE_FIXTURES || path.join(tmpPath, '..', `uring-fs-node-fixtures.${process.pid}`)
if (!process.env.URING_FS_NODE_FIXTURES) {
  makeFixtures(fixtureDir)
  process.on('exit', () => fs.rmSync(fixtureDir, { recursive: true, force: true }))
}
const fixtures = {
  path: (...parts) => path.join(fixtureDir, ...parts),
}

module.exports = {
  uring,
  mustCall,
  mustCallAtLeast,
  mustNotCall,
  mustSucceed,
  mustNotMutateObjectDeep,
  expectWarning,
  printSkipMessage,
  platformTimeout: (ms) => ms,
  isWindows: process.platform === 'win32',
  tmpdir,
  fixtures,
  makeFixtures,
}
