// The differential fuzzer (fuzz.ts) in the suite: 10,000 seeded cases of
// createReadStream, createWriteStream, readFile and writeFile, each run
// through fs and through uring-fs, on whichever backend the suite runs on.
// Any difference fails with its case number and seed:
//
//   URING_FS_FUZZ_SEED=<seed> URING_FS_FUZZ_ONLY=<case> npx ava target/ava/__test__/fuzz.spec.js
//   (the specs are compiled there by `npx tsc -p __test__/tsconfig.json`)
//
// URING_FS_FUZZ_CASES sets how many cases (the long mode: 200000).

import test from 'ava'
import * as os from 'node:os'
import * as path from 'node:path'
import * as fs from 'node:fs'

import { type Fixtures, asFsPaths, difference, makeCase, makeFixtures, normalise } from './fuzz'
import { mapLimit, testSeed } from './helpers'

/** This process's descriptors and what each refers to. */
function openFds(): Map<string, string> {
  const fds = new Map<string, string>()
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      fds.set(fd, fs.readlinkSync(`/proc/self/fd/${fd}`))
    } catch {
      // Closed meanwhile (the listing's own descriptor).
    }
  }
  return fds
}

const CASES = Number(process.env.URING_FS_FUZZ_CASES || 10000)
const SEED = process.env.URING_FS_FUZZ_SEED ? Number(process.env.URING_FS_FUZZ_SEED) >>> 0 : testSeed()
const ONLY = process.env.URING_FS_FUZZ_ONLY
/** Cases per ava test: each test is a batch, so that progress is visible and no test runs for minutes. */
const BATCH = 500
/** Cases of a batch running at once (most of a case is waiting for I/O). */
const CONCURRENCY = 12

let fixtures: Fixtures
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-fuzz-'))

test.before(() => {
  fixtures = makeFixtures(dir, SEED)
})

test.after.always(() => {
  fs.rmSync(dir, { recursive: true, force: true })
})

/** A case that does not settle in this long hangs: a finding too. */
const CASE_LIMIT_MS = 30_000

function withinLimit<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle in ${CASE_LIMIT_MS} ms`)), CASE_LIMIT_MS)
  })
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

async function runCase(index: number): Promise<string | null> {
  const c = makeCase(SEED, index, fixtures)
  let a, b
  try {
    a = normalise(c, await withinLimit(c.run('fs'), 'fs'))
    b = normalise(c, asFsPaths(await withinLimit(c.run('uring-fs'), 'uring-fs'), fixtures))
  } catch (err) {
    return `case ${index} (seed ${SEED}) ${c.kind} ${c.describe()}\n   ${(err as Error).message}`
  }
  const diff = difference(a, b)
  if (diff === null) return null
  return `case ${index} (seed ${SEED}) ${c.kind} ${c.describe()}\n   ${diff}`
}

if (ONLY !== undefined) {
  test(`fuzz case ${ONLY} (seed ${SEED})`, async (t) => {
    const found = await runCase(Number(ONLY))
    t.is(found, null, found ?? '')
  })
} else {
  for (let first = 0; first < CASES; first += BATCH) {
    const last = Math.min(CASES, first + BATCH)
    test.serial(`fuzz cases ${first}-${last - 1} against fs (seed ${SEED})`, async (t) => {
      const before = openFds()
      const indices = Array.from({ length: last - first }, (_, i) => first + i)
      const differing = (await mapLimit(indices, CONCURRENCY, (i) => runCase(i).then((d) => [i, d] as const))).filter(
        (r): r is readonly [number, string] => r[1] !== null,
      )
      // A trace that just stops (one side's events end: "(none)") is a
      // stream that had no event for STALL_MS. On two cores shared with
      // other specs that happens to fs as well as to uring-fs: such a case
      // runs again, alone, and counts only if it differs again.
      const found: string[] = []
      for (const [i, d] of differing) {
        const again = d.includes('(none)') ? await runCase(i) : d
        if (again === null) t.log(`case ${i} stalled once under load and matched fs when run again alone:\n${d.split('\n')[0]}`)
        else found.push(again)
      }
      for (const f of found.slice(0, 3)) t.log(f)
      t.is(found.length, 0, `${found.length} of ${indices.length} cases differ from fs (logged above)`)
      // Descriptors on uring-fs's copy of the files: fs's own leaks (its
      // streams aborted before they opened) are in fs's copy.
      const left = [...openFds()].filter(([fd, target]) => before.get(fd) !== target && target.startsWith(fixtures.uringDir))
      t.is(left.length, 0, `descriptors left open: ${left.map(([fd, target]) => `${fd} ${target}`).join(', ')}`)
    })
  }
}
