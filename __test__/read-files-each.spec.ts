// readFilesEach: every result equal to what fs gives for its path, each path
// once, results in completion order, paths pulled only as the consumer
// consumes, the source closed on an early exit, and memory flat over a
// million paths. Runs on both backends (npm test runs the suite again with
// URING_FS_BACKEND=fallback).

import test from 'ava'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import { backend, readFiles, readFilesEach } from 'uring-fs'
import { errorSnapshot, makeTmpDir, mulberry32, randInt, randomContent, removeTmpDir, sleep, testSeed } from './helpers'

const SEED = testSeed()
const KiB = 1024
const MiB = 1024 * KiB

/** What fs.promises.readFile gives for `p` (what readFilesEach promises): the bytes, or its error. */
function fsResult(p: string): Promise<Buffer | Error> {
  return fs.promises.readFile(p).catch((e: Error) => e)
}

/** Why `got` is not what fs gives for `p`, or null when it is. */
async function mismatch(p: string, got: Buffer | string | Error): Promise<string | null> {
  const want = await fsResult(p)
  if (want instanceof Error) {
    if (!(got instanceof Error)) return `${p}: expected ${want.message}, got contents`
    const a = JSON.stringify(errorSnapshot(got), (k, v) => (k === 'constructor' ? String(v) : v))
    const b = JSON.stringify(errorSnapshot(want), (k, v) => (k === 'constructor' ? String(v) : v))
    return a === b ? null : `${p}: error ${a} != fs's ${b}`
  }
  if (!Buffer.isBuffer(got)) return `${p}: expected ${want.length} bytes, got ${got instanceof Error ? got.message : typeof got}`
  return got.equals(want) ? null : `${p}: ${got.length} bytes differ from fs's ${want.length}`
}

/** A sync generator over `paths` that counts what it gave and notes its finally. */
function counting<T>(paths: Iterable<T>): { gen: Generator<T>; pulled: () => number; closed: () => boolean } {
  let pulled = 0
  let closed = false
  function* gen(): Generator<T> {
    try {
      for (const p of paths) {
        pulled++
        yield p
      }
    } finally {
      closed = true
    }
  }
  return { gen: gen(), pulled: () => pulled, closed: () => closed }
}

/** The same as an async generator that yields to the event loop as it goes. */
function countingAsync<T>(paths: Iterable<T>): { gen: AsyncGenerator<T>; pulled: () => number; closed: () => boolean } {
  let pulled = 0
  let closed = false
  async function* gen(): AsyncGenerator<T> {
    try {
      for (const p of paths) {
        if (pulled % 7 === 0) await new Promise((r) => setImmediate(r))
        pulled++
        yield p
      }
    } finally {
      closed = true
    }
  }
  return { gen: gen(), pulled: () => pulled, closed: () => closed }
}

// A tree of a few thousand files (nested directories), sizes random from 0
// to 256 KiB with many right on the 4 KiB / 64 KiB boundaries, with missing
// paths, directories, and a path through a file mixed in.
let dir = ''
let tree: string[] = []
test.before(() => {
  dir = makeTmpDir('rfe')
  const rng = mulberry32(SEED)
  const boundaries = [0, 1, 4095, 4096, 4097, 8192, 65535, 65536, 65537, 131072, 256 * KiB - 1, 256 * KiB]
  for (let i = 0; i < 3000; i++) {
    const sub = path.join(dir, `d${i % 7}`, `e${i % 3}`)
    fs.mkdirSync(sub, { recursive: true })
    const kind = randInt(rng, 0, 19)
    if (kind === 0) {
      tree.push(path.join(sub, `missing-${i}`))
    } else if (kind === 1) {
      const d = path.join(sub, `dir-${i}`)
      fs.mkdirSync(d)
      tree.push(d)
    } else if (kind === 2 && i > 0) {
      // ENOTDIR: a path under an existing file.
      tree.push(path.join(tree.find((p) => path.basename(p).startsWith('f-')) ?? sub, `below-${i}`))
    } else {
      const size =
        kind < 7 ? boundaries[randInt(rng, 0, boundaries.length - 1)] : kind < 10 ? randInt(rng, 0, 256 * KiB) : randInt(rng, 0, 8 * KiB)
      const p = path.join(sub, `f-${i}`)
      fs.writeFileSync(p, randomContent(rng, size))
      tree.push(p)
    }
  }
})
test.after.always(() => removeTmpDir(dir))

test('readFilesEach: every result equals fs, each path yielded once, the values given', async (t) => {
  t.log(`seed ${SEED} (URING_FS_TEST_SEED), backend ${backend()}`)
  const kinds = new Set((await Promise.all(tree.map((p) => fsResult(p)))).map((r) => (r instanceof Error ? (r as NodeJS.ErrnoException).code : 'file')))
  t.deepEqual([...kinds].sort(), ['EISDIR', 'ENOENT', 'ENOTDIR', 'file'], 'the tree has every kind of entry')
  // Small batches (about 50 native calls, several in flight) and the defaults.
  for (const options of [{ batch: 61, inFlight: 3, concurrency: 16 }, undefined]) {
    const seen = new Map<string, number>()
    const bad: string[] = []
    for await (const [p, res] of readFilesEach(tree, options)) {
      seen.set(p, (seen.get(p) ?? 0) + 1)
      const why = await mismatch(p, res)
      if (why !== null) bad.push(why)
    }
    t.deepEqual(bad.slice(0, 5), [], `${bad.length} results differ from fs (${JSON.stringify(options)})`)
    t.is(seen.size, tree.length, 'every path yielded')
    t.deepEqual(
      [...seen].filter(([, n]) => n !== 1),
      [],
      'no path yielded twice',
    )
  }
})

test('readFilesEach: an async generator of strings, Buffers and URLs; encoding', async (t) => {
  const some = tree.slice(0, 400)
  const given = some.map((p, i) => (i % 3 === 0 ? p : i % 3 === 1 ? Buffer.from(p) : pathToFileURL(p)))
  const src = countingAsync(given)
  const got = new Map<unknown, Buffer | string | Error>()
  for await (const [p, res] of readFilesEach(src.gen, { batch: 32 })) got.set(p, res)
  t.is(got.size, given.length)
  const bad: string[] = []
  for (const [i, g] of given.entries()) {
    // The path yielded is the very value the source gave.
    if (!got.has(g)) bad.push(`${some[i]}: not yielded as given`)
    const why = await mismatch(some[i], got.get(g) ?? new Error('missing'))
    if (why !== null) bad.push(why)
  }
  t.deepEqual(bad.slice(0, 5), [], `${bad.length} wrong`)
  t.true(src.closed(), 'the source ran to its end')

  const text = fs.readFileSync('package.json', 'latin1')
  const enc: Array<[string, Buffer | string | Error]> = []
  for await (const e of readFilesEach(['package.json', path.join(dir, 'nope')], 'latin1')) enc.push(e)
  enc.sort((a, b) => a[0].localeCompare(b[0]))
  t.is(enc[1][1], text)
  t.is((enc[0][1] as NodeJS.ErrnoException).code, 'ENOENT')
  const same = await readFiles(['package.json', path.join(dir, 'nope')], 'latin1')
  t.deepEqual(errorSnapshot(enc[0][1]), errorSnapshot(same[1]), 'errors exactly as readFiles gives them')
})

// Batch 1 is a FIFO whose read waits until the test writes to it, batch 2 a
// plain file. The FIFO is written only once the plain file's result is out:
// yielding in submission order would wait for the FIFO forever, so after 10 s
// the test writes anyway and the order shows the failure.
test('readFilesEach: results in completion order, not submission order', async (t) => {
  const fifo = path.join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  const small = path.join(dir, 'small')
  fs.writeFileSync(small, 'small')
  // Held open for writing so the engine's open returns and its read waits.
  const writer = fs.openSync(fifo, 'r+')
  let written = false
  const release = (): void => {
    if (written) return
    written = true
    fs.writeSync(writer, 'from the fifo')
    fs.closeSync(writer)
  }
  const timer = setTimeout(release, 10_000)
  const order: Array<[string, string]> = []
  try {
    for await (const [p, res] of readFilesEach([fifo, small], { batch: 1, inFlight: 2 })) {
      order.push([p, String(res)])
      if (p === small) release()
    }
  } finally {
    clearTimeout(timer)
    release()
  }
  t.deepEqual(order, [
    [small, 'small'],
    [fifo, 'from the fifo'],
  ])
})

// A slow consumer: the source is pulled ahead by at most `inFlight` batches
// beyond the one being consumed, and the read-ahead does reach that.
for (const [label, make] of [
  ['sync', counting],
  ['async', countingAsync],
] as const) {
  test(`readFilesEach: backpressure on a slow consumer (${label} source)`, async (t) => {
    const batch = 16
    const inFlight = 3
    const total = 1000
    const src = make(Array.from({ length: total }, (_, i) => tree[i % tree.length]))
    let consumed = 0
    let maxAhead = 0
    for await (const _ of readFilesEach(src.gen as Iterable<string> | AsyncIterable<string>, { batch, inFlight })) {
      consumed++
      maxAhead = Math.max(maxAhead, src.pulled() - consumed)
      // Slow: give the reads in flight time to complete before going on.
      if (consumed % 8 === 0) await sleep(1)
      else await new Promise((r) => setImmediate(r))
    }
    t.is(consumed, total)
    t.true(maxAhead <= batch * inFlight + batch, `pulled at most ${batch * inFlight + batch} ahead: ${maxAhead}`)
    t.true(maxAhead >= batch * inFlight - 1, `read ahead does happen: ${maxAhead}`)
  })
}

test('readFilesEach: break and throw in the loop stop pulling and close the source', async (t) => {
  const rejections: unknown[] = []
  const onRejection = (e: unknown): void => {
    rejections.push(e)
  }
  process.on('unhandledRejection', onRejection)
  t.teardown(() => process.off('unhandledRejection', onRejection))
  const batch = 8
  const inFlight = 4
  const many = Array.from({ length: 5000 }, (_, i) => tree[i % tree.length])

  for (const make of [counting, countingAsync]) {
    // break
    const a = make(many)
    let n = 0
    for await (const _ of readFilesEach(a.gen as Iterable<string> | AsyncIterable<string>, { batch, inFlight })) {
      if (++n === 10) break
    }
    t.true(a.closed(), 'break: the source generator finally ran')
    const pulledAtBreak = a.pulled()
    t.true(pulledAtBreak - n <= batch * inFlight + batch, `break: ${pulledAtBreak} pulled for ${n} consumed`)

    // A throw in the loop body propagates and closes the source too.
    const b = make(many)
    const boom = new Error('consumer failed')
    await t.throwsAsync(
      async () => {
        let m = 0
        for await (const _ of readFilesEach(b.gen as Iterable<string> | AsyncIterable<string>, { batch, inFlight })) {
          if (++m === 20) throw boom
        }
      },
      { is: boom },
    )
    t.true(b.closed(), 'throw: the source generator finally ran')

    // The batches still in flight complete in the background; nothing more
    // is pulled and nothing rejects unhandled.
    await readFiles(tree.slice(0, 50))
    await sleep(50)
    t.is(a.pulled(), pulledAtBreak, 'nothing pulled after the break')
  }

  // return() before the first next(): the source is never touched.
  const c = counting(many)
  const it = readFilesEach(c.gen)
  await it.return()
  t.is(c.pulled(), 0)
  t.deepEqual(await it.next(), { value: undefined, done: true })
  t.deepEqual(rejections, [])
})

test('readFilesEach: bad arguments throw when called; bad paths and source errors after the paths before them', async (t) => {
  const call = (...args: unknown[]): unknown => (readFilesEach as (...a: unknown[]) => unknown)(...args)
  t.throws(() => call(42), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => call('package.json'), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => call(null), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => call([], 42), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => call([], { encoding: 'nope' }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => call([], { batch: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => call([], { inFlight: 1.5 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => call([], { concurrency: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => call([], { batch: '8' }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => call([], { flag: 'bogus' }), { code: 'ERR_INVALID_ARG_VALUE' })

  const empty: unknown[] = []
  for await (const e of readFilesEach([])) empty.push(e)
  t.deepEqual(empty, [])

  const good = tree.slice(0, 5)
  // A bad path: the paths pulled before it still get their results (the full
  // batch and the part of the next one), then next() rejects; the source is
  // closed and the path after it never pulled.
  const src = counting([...good.slice(0, 3), 123, ...good.slice(3)])
  const before: string[] = []
  const it = readFilesEach(src.gen as Iterable<string>, { batch: 2 })
  const err = await t.throwsAsync(async () => {
    for await (const [p] of it) before.push(p as string)
  })
  t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG_TYPE')
  t.deepEqual(before.sort(), good.slice(0, 3).sort())
  t.is(src.pulled(), 4)
  t.true(src.closed())
  t.deepEqual(await it.next(), { value: undefined, done: true })

  // The source throwing: the same, with the source's own error.
  const walkError = new Error('walk failed')
  async function* failing(): AsyncGenerator<string> {
    yield* good.slice(0, 3)
    throw walkError
  }
  const got: string[] = []
  await t.throwsAsync(
    async () => {
      for await (const [p] of readFilesEach(failing(), { batch: 2 })) got.push(p)
    },
    { is: walkError },
  )
  t.deepEqual(got.sort(), good.slice(0, 3).sort())
})

// A million paths through one iterator: memory after warm-up stays flat.
// Serial, so no other test's buffers are in the figures. Paths are long
// (about 150 bytes), so holding them all would alone cost 150 MB; one in 16
// is one of 300 real small files, the rest missing. Measured under ava on 2
// cores: a million take 10-17 s on io_uring and 18-28 s on the fallback
// (mostly building the Error for each missing path; a real file costs ~45 us
// on the fallback against ~8 us on io_uring, hence so few), so the full
// million runs on both.
test.serial('readFilesEach: memory stays bounded over 1,000,000 paths', async (t) => {
  t.timeout(180_000)
  const total = 1_000_000
  const base = path.join(dir, 'm'.repeat(100))
  fs.mkdirSync(base)
  const sizes: number[] = []
  for (let i = 0; i < 300; i++) {
    sizes.push((i * 37) % 3000)
    fs.writeFileSync(path.join(base, `f${i}`), Buffer.alloc(sizes[i], i))
  }
  function* paths(): Generator<string> {
    for (let i = 0; i < total; i++) yield i % 16 === 0 ? `${base}/f${(i >>> 4) % 300}` : `${base}/missing-${i % 1000}`
  }
  let n = 0
  let wrong = 0
  // Measured after a forced GC at each checkpoint, in two parts: the live
  // JavaScript heap (what the iteration keeps reachable) and the memory
  // outside V8's heap (rss less the heap's committed pages: native buffers,
  // the engine, malloc). V8's committed heap itself is left out: Node 24
  // keeps 60-120 MiB committed over a 6 MiB live heap here, on every backend
  // (the JavaScript fallback included), which is V8's sizing, not a leak.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  let baseline: { native: number; heap: number } | null = null
  let maxNative = 0
  let maxHeap = 0
  const t0 = Date.now()
  for await (const [p, res] of readFilesEach(paths())) {
    n++
    if (p.startsWith(`${base}/f`)) {
      if (!Buffer.isBuffer(res) || res.length !== sizes[Number(p.slice(base.length + 2))]) wrong++
    } else if (!(res instanceof Error) || (res as NodeJS.ErrnoException).code !== 'ENOENT' || (res as NodeJS.ErrnoException).path !== p) {
      wrong++
    }
    if (n % 100_000 === 0) {
      gc()
      const m = { native: process.memoryUsage.rss() - getHeapStatistics().total_physical_size, heap: process.memoryUsage().heapUsed }
      // After warm-up: engine buffers, threads and JIT are one-off costs.
      if (n === 100_000) baseline = m
      else if (baseline !== null) {
        maxNative = Math.max(maxNative, m.native - baseline.native)
        maxHeap = Math.max(maxHeap, m.heap - baseline.heap)
      }
    }
  }
  const secs = (Date.now() - t0) / 1000
  t.log(`${backend()}: ${n} paths in ${secs.toFixed(1)} s; growth outside the JS heap ${(maxNative / MiB).toFixed(1)} MiB, live JS heap ${(maxHeap / MiB).toFixed(1)} MiB`)
  t.is(n, total)
  t.is(wrong, 0)
  t.true(maxNative < 32 * MiB, `memory outside the JS heap grew ${(maxNative / MiB).toFixed(1)} MiB`)
  t.true(maxHeap < 16 * MiB, `live JS heap grew ${(maxHeap / MiB).toFixed(1)} MiB`)
})
