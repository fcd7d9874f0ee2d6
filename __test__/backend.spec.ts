// Which backend runs, why, its counters, and the automatic fallback when
// io_uring is really blocked (by a seccomp filter, through the testkit's
// `no-io-uring` wrapper).

import test from 'ava'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { backend, createReadStream, fallbackReason, stats } from 'uring-fs'
import { AUTO_BACKEND, IO_URING_BLOCKED, ON_ENGINE, REPO, type SpawnResult, makeTmpDir, mulberry32, randomContent, readAll, removeTmpDir, spawnAsync, writeFixture } from './helpers'
import { engineTest } from './engine-test'

const FORCED = process.env.URING_FS_BACKEND === 'fallback'

let dir = ''
let file = ''

test.before(() => {
  dir = makeTmpDir('backend')
  file = writeFixture(dir, 'data.bin', randomContent(mulberry32(42), 3 * 1024 * 1024 + 7))
})

test.after.always(() => removeTmpDir(dir))

test('backend(): fallback when URING_FS_BACKEND=fallback, node when =node, otherwise io_uring (the fallback where io_uring is blocked)', (t) => {
  t.is(backend(), process.env.URING_FS_BACKEND === 'node' ? 'node' : FORCED ? 'fallback' : AUTO_BACKEND)
})

test('fallbackReason(): null on io_uring, the reason otherwise', (t) => {
  const reason = fallbackReason()
  if (backend() === 'io_uring') {
    t.is(reason, null)
  } else {
    t.is(typeof reason, 'string')
    if (process.env.URING_FS_BACKEND) t.regex(reason as string, new RegExp(`URING_FS_BACKEND=${backend()}`))
    else t.regex(reason as string, /io_uring[^]*(Operation not permitted|EPERM|os error 1\b)/, 'io_uring blocked: the kernel\'s EPERM is the reason')
  }
})

test('stats() on the JavaScript fallback: all zero, the same shape', (t) => {
  if (ON_ENGINE) {
    t.pass('the engine is live: the next test checks its counters')
    return
  }
  t.deepEqual(stats(), { ops: 0, enters: 0, completions: 0, bytesRead: 0, bytesWritten: 0, wakeups: 0 })
})

engineTest('stats(): a read shows up in the counters of the backend in use', async (t) => {
  const before = stats()
  const data = await readAll(createReadStream(file))
  const after = stats()
  t.true((data as Buffer).equals(fs.readFileSync(file)))
  const d = {
    ops: after.ops - before.ops,
    enters: after.enters - before.enters,
    completions: after.completions - before.completions,
    bytesRead: after.bytesRead - before.bytesRead,
  }
  t.log(backend(), d)
  // Other tests in this file may read at the same time: lower bounds only.
  t.true(d.bytesRead >= fs.statSync(file).size, 'every byte was read by the engine')
  // An open, 48 reads of 64 KiB and the read that finds EOF, at least.
  t.true(d.ops >= 50, 'operations')
  t.true(d.completions >= 50, 'completions')
  if (backend() === 'io_uring') t.true(d.enters >= 1, 'io_uring_enter was called')
  else t.is(after.enters, 0, 'never an io_uring_enter on the fallback')
  for (const k of ['ops', 'enters', 'completions', 'bytesRead', 'wakeups'] as const) {
    t.true(Number.isSafeInteger(after[k]) && after[k] >= 0, k)
  }
})

// ---------------------------------------------------------------------------
// Children

/** A script printing what the engine says and whether a read is byte-correct. */
const PROBE_SCRIPT = `
const [entry, file] = process.argv.slice(1)
const out = {}
try {
  const lib = require(entry)
  out.backend = lib.backend()
  out.reason = lib.fallbackReason()
} catch (e) {
  out.backendError = e.message
}
const lib = require(entry)
const hash = require('crypto').createHash('sha256')
lib.createReadStream(file, { highWaterMark: 100000 })
  .on('data', (c) => hash.update(c))
  .on('error', (e) => { out.readError = e.message })
  .on('close', () => {
    out.sha = out.readError ? null : hash.digest('hex')
    try { out.stats = lib.stats() } catch (e) { out.statsError = e.message }
    console.log(JSON.stringify(out))
  })
`

/** How to run the library in a child: the package (the compiled index.js). */
function nodeArgs(script: string, ...args: string[]): string[] {
  return ['-e', script, REPO, ...args]
}

/** The environment of a child: the backend variable as given (deleted when undefined). */
function childEnv(backendVar: string | undefined): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.URING_FS_BACKEND
  if (backendVar !== undefined) env.URING_FS_BACKEND = backendVar
  return env
}

async function probe(command: string[], backendVar?: string): Promise<{ res: SpawnResult; out: Record<string, unknown> }> {
  const [cmd, ...args] = command
  const res = await spawnAsync(cmd, args, { cwd: REPO, env: childEnv(backendVar), timeoutMs: 60_000 })
  let out: Record<string, unknown> = {}
  try {
    out = JSON.parse(res.stdout)
  } catch {
    // Left empty: the assertions on it fail and show stderr.
  }
  return { res, out }
}

const expectedSha = () => createHash('sha256').update(fs.readFileSync(file)).digest('hex')

test('a child without URING_FS_BACKEND uses io_uring (the control for the seccomp tests), or the fallback where io_uring is blocked', async (t) => {
  const { res, out } = await probe([process.execPath, ...nodeArgs(PROBE_SCRIPT, file)])
  t.is(res.status, 0, res.stderr)
  t.is(out.backend, AUTO_BACKEND)
  t.is(out.sha, expectedSha())
  if (IO_URING_BLOCKED) {
    // kernel.io_uring_disabled=2 (or the seccomp wrapper the whole suite
    // runs under): io_uring_setup fails with EPERM, and the engine says so.
    t.regex(String(out.reason), /io_uring[^]*(Operation not permitted|EPERM|os error 1\b)/)
    t.is((out.stats as { enters: number }).enters, 0, 'no io_uring_enter')
  } else {
    t.is(out.reason, null)
    t.true(((out.stats as { enters: number }).enters ?? 0) > 0)
  }
})

test("URING_FS_BACKEND must be 'io_uring', 'fallback' or 'auto'", async (t) => {
  const auto = await probe([process.execPath, ...nodeArgs(PROBE_SCRIPT, file)], 'auto')
  t.is(auto.out.backend, AUTO_BACKEND, auto.res.stderr)
  const bogus = await probe([process.execPath, ...nodeArgs(PROBE_SCRIPT, file)], 'bogus')
  t.is(bogus.res.status, 0, bogus.res.stderr)
  t.regex(String(bogus.out.backendError), /URING_FS_BACKEND .*'bogus'/)
  t.regex(String(bogus.out.readError), /URING_FS_BACKEND .*'bogus'/, 'a stream reports it as an error event')
})

// ---------------------------------------------------------------------------
// io_uring blocked by seccomp

const NO_IO_URING = path.join(REPO, 'target', 'debug', 'no-io-uring')

/**
 * The `no-io-uring` wrapper, built with cargo when missing; null (with a
 * log) only when cargo itself is not available. A failing build fails.
 */
function noIoUring(t: import('ava').ExecutionContext): string | null {
  if (fs.existsSync(NO_IO_URING)) return NO_IO_URING
  const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' })
  if (cargo.error && (cargo.error as NodeJS.ErrnoException).code === 'ENOENT') {
    t.log(`cargo is not available: cannot build ${NO_IO_URING}; skipped`)
    return null
  }
  const build = spawnSync('cargo', ['build', '-p', 'uring-fs-testkit'], { cwd: REPO, encoding: 'utf8', timeout: 170_000 })
  t.is(build.status, 0, `cargo build -p uring-fs-testkit failed: ${build.error ?? ''}\n${build.stderr}`)
  t.true(fs.existsSync(NO_IO_URING), `the build did not produce ${NO_IO_URING}`)
  return fs.existsSync(NO_IO_URING) ? NO_IO_URING : null
}

test.serial('io_uring_setup blocked (EPERM): automatic fallback, with the reason, and byte-correct reads', async (t) => {
  t.timeout(180_000)
  const bin = noIoUring(t)
  if (bin === null) {
    t.pass()
    return
  }
  const { res, out } = await probe([bin, process.execPath, ...nodeArgs(PROBE_SCRIPT, file)])
  t.is(res.status, 0, res.stderr)
  t.log(out.backend, out.reason)
  t.is(out.backend, 'fallback')
  t.regex(String(out.reason), /io_uring/)
  t.regex(String(out.reason), /Operation not permitted|EPERM|os error 1\b/)
  t.is(out.readError, undefined)
  t.is(out.sha, expectedSha(), 'the fallback reads the file right')
  t.is((out.stats as { enters: number }).enters, 0, 'no io_uring_enter')
})

test.serial('io_uring_setup blocked (ENOSYS, a kernel without io_uring): automatic fallback', async (t) => {
  t.timeout(180_000)
  const bin = noIoUring(t)
  if (bin === null) {
    t.pass()
    return
  }
  const { res, out } = await probe([bin, '--errno=ENOSYS', process.execPath, ...nodeArgs(PROBE_SCRIPT, file)])
  t.is(res.status, 0, res.stderr)
  t.is(out.backend, 'fallback')
  t.regex(String(out.reason), /Function not implemented|ENOSYS|os error 38\b/)
  t.is(out.sha, expectedSha())
})

test.serial('io_uring_setup blocked with URING_FS_BACKEND=io_uring: an error, not a silent fallback', async (t) => {
  t.timeout(180_000)
  const bin = noIoUring(t)
  if (bin === null) {
    t.pass()
    return
  }
  const { res, out } = await probe([bin, process.execPath, ...nodeArgs(PROBE_SCRIPT, file)], 'io_uring')
  t.is(res.status, 0, res.stderr)
  t.is(out.backend, undefined)
  t.regex(String(out.backendError), /Operation not permitted|os error 1\b/)
  t.regex(String(out.readError), /Operation not permitted|os error 1\b/, 'a stream reports it as an error event')
})

// ---------------------------------------------------------------------------
// The build under test

test('the compiled JavaScript the specs load is built from the current TypeScript', (t) => {
  t.timeout(120_000)
  // The specs load the package (index.js, lib/*.js): a stale build would
  // mean testing old code. Compile afresh and compare.
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-tsc-'))
  try {
    const tsc = spawnSync(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json', '--outDir', out], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 110_000,
    })
    t.is(tsc.status, 0, tsc.stdout + tsc.stderr)
    const compiled = ['index.js', ...fs.readdirSync(path.join(out, 'lib')).filter((f) => f.endsWith('.js')).map((f) => `lib/${f}`)]
    t.true(compiled.length >= 4)
    for (const f of compiled) {
      const fresh = fs.readFileSync(path.join(out, f), 'utf8')
      const loaded = fs.readFileSync(path.join(REPO, f), 'utf8')
      t.true(fresh === loaded, `${f} is stale: run \`npx tsc -p tsconfig.json\``)
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true })
  }
})
