#!/usr/bin/env node
// Soak test: read and write streams, readFiles batches and sendFile traffic,
// all at once, created and torn down at random points, to catch what the
// unit tests cannot: a descriptor or a few bytes leaked per operation, and
// errors that only an unlucky interleaving produces. It passes when, after
// all work stopped, the descriptors are back to their baseline, RSS grew
// less than 20 MiB past the warm-up, every byte read, written or served was
// right, and no error happened other than the ones the script injected (its
// own destroy(err), the AbortError of its own abort, ECONNRESET/EPIPE from
// its own disconnects, ENOENT for the path it knows is missing, and the
// ERR_STREAM_DESTROYED that fs too gives a write its destroy() interrupts).
//
// The baseline is taken after a warm-up of every kind of work, so that what
// the package keeps by design is in it: sendFile's open-file cache (every
// file is fetched once first), the served root's descriptor, the ring. Three
// pools change size later by design and are allowed for: the engine's
// buffer pool (RSS is read after it trims itself, IDLE_MS), and on io_uring
// the splice pipe pool (PIPE_POOL_FDS) and readFiles' lane rings (LANE_RINGS).
//
//   node scripts/soak.js                # 100,000 read + 20,000 write streams
//   node scripts/soak.js --seconds 60   # the same mix for 60 s (CI)
//   node scripts/soak.js --seed 1234    # the same files and plans again
//   URING_FS_BACKEND=fallback node scripts/soak.js ...   # or =node
//
// The seed fixes the files and the stream of random plans; which plan runs
// when still depends on timing, so a failure is reproduced by running the
// same seed a few times. Exit status 0 only on a pass; the last line of the
// output is the summary as JSON.
'use strict'

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const fsp = require('node:fs/promises')
const http = require('node:http')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')

const KiB = 1024
const MiB = 1024 * KiB

const READ_TARGET = 100_000
const WRITE_TARGET = 20_000
const READ_WORKERS = 8
const WRITE_WORKERS = 4
const HTTP_WORKERS = 6
const FILE_COUNT = 64
const WARMUP_MS = 5_000
const RSS_LIMIT = 20 * MiB
const PROGRESS_MS = 10_000
/** An operation not settled by then is reported (a stream that never closes is a leak). */
const OP_TIMEOUT_MS = 60_000
/**
 * Idle time after a full GC before RSS is read: the engine's buffer pool
 * keeps up to 256 MiB of free buffers while busy, by design, and gives all
 * but 32 MiB back once a 2 s tick of its trimmer has seen no buffer taken
 * (crates/core/src/buffer_pool): 2 to 4 s after the last use.
 */
const IDLE_MS = 5_000
/** Idle splice pipes the io_uring backend keeps at most (64, two descriptors each). */
const PIPE_POOL_FDS = 2 * 64
/**
 * Rings readFiles' lanes keep between runs on io_uring, at most: as many as
 * lanes ran at once so far (MAX_RINGS in crates/core/src/backend/uring/
 * lane_ring.rs). The warm-up made one at least.
 */
const LANE_RINGS = 8
/** How long the end of the run waits for descriptors to come back. */
const FD_SETTLE_MS = 5_000
/** Problems printed as they happen (the counts keep going). */
const PRINT_LIMIT = 20
const HOST = '127.0.0.1'
/** The codes a connection the script cut itself may end with. */
const DISCONNECT_CODES = new Set(['ECONNRESET', 'EPIPE'])

const USAGE = `usage: node scripts/soak.js [--seconds N] [--seed N]
  (no --seconds)  ${READ_TARGET} read streams and ${WRITE_TARGET} write streams, with HTTP and readFiles meanwhile
  --seconds N     the same mix, stopped after N seconds (warm-up included)
  --seed N        the seed of the files and plans (printed when chosen at random)
  URING_FS_BACKEND=fallback|node picks the backend (unset: io_uring where it works)`

// ---------------------------------------------------------------------------
// Outcomes

const counts = {
  reads: 0,
  readsToEnd: 0,
  readsCut: 0,
  writes: 0,
  writesEnded: 0,
  writesCut: 0,
  batches: 0,
  requests: 0,
  requestsFull: 0,
  requestsSlow: 0,
  requestsCut: 0,
  requestsRaw: 0,
  requests404: 0,
  injected: 0,
  unexpected: 0,
  mismatches: 0,
}
/** The first problems, for the summary: enough to start from, bounded. */
const firstProblems = []

function report(kind, what, err) {
  const line = err ? `${what}: ${err.code ? err.code + ' ' : ''}${err.message}` : what
  if (firstProblems.length < 5) firstProblems.push(`${kind}: ${line}`)
  if (counts.unexpected + counts.mismatches <= PRINT_LIMIT) {
    console.error(`soak: ${kind}: ${line}`)
    if (err && err.stack) console.error(err.stack.split('\n').slice(1, 6).join('\n'))
  }
}

function unexpected(what, err) {
  counts.unexpected++
  report('unexpected error', what, err)
}

function mismatch(what) {
  counts.mismatches++
  report('wrong bytes', what)
}

/**
 * After the script's own destroy/abort: the error it injected, an
 * AbortError for its abort, nothing for a plain destroy() (or one of
 * `alsoFine`'s errors, which a plain destroy() causes by design).
 */
function judgeCutError(what, how, injectedErr, err, alsoFine) {
  const fine =
    how === 'error' ? err === injectedErr
      : how === 'abort' ? err !== null && err.name === 'AbortError'
        : err === null || (alsoFine !== undefined && alsoFine(err))
  if (!fine) unexpected(`${what}: after the script's ${how}`, err || new Error('no error'))
  else if (err !== null) counts.injected++
}

// ---------------------------------------------------------------------------
// Randomness: seeded, so that the files and plans of a run can be had again.

let random = Math.random

function seedRandom(seed) {
  let a = seed >>> 0
  random = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [lo, hi]. */
function int(lo, hi) {
  return lo + Math.floor(random() * (hi - lo + 1))
}

function pick(list) {
  return list[Math.floor(random() * list.length)]
}

function chance(p) {
  return random() < p
}

function randomBuffer(size) {
  const buf = Buffer.allocUnsafe(size)
  let i = 0
  for (; i + 4 <= size; i += 4) buf.writeUInt32LE((random() * 2 ** 32) >>> 0, i)
  for (; i < size; i++) buf[i] = random() * 256
  return buf
}

// ---------------------------------------------------------------------------
// Small helpers

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function mib(bytes) {
  return Math.round((bytes / MiB) * 10) / 10
}

/**
 * Where the memory is (MiB): a growth in RSS alone is native memory, not
 * JavaScript's; the engine's buffer pool says how much of it is its own.
 */
function memoryMiB(api) {
  const m = process.memoryUsage()
  const out = { rss: mib(m.rss), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers) }
  const e = api.stats()
  if (typeof e.poolFreshBytes === 'number') {
    out.poolHeld = mib(e.poolFreshBytes - e.poolReleasedBytes)
    out.poolFree = mib(e.poolRetainedBytes)
  }
  return out
}

function fdCount() {
  // Less the readdir's own descriptor.
  return fs.readdirSync('/proc/self/fd').length - 1
}

/** The open descriptors counted by what they are ('socket:[]', 'pipe:[]', a path...). */
function fdKinds() {
  const kinds = new Map()
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      continue // the readdir's own descriptor, closed by now
    }
    const kind = target.replace(/\[\d+\]$/, '[]')
    kinds.set(kind, (kinds.get(kind) || 0) + 1)
  }
  return kinds
}

function total(kinds) {
  let n = 0
  for (const v of kinds.values()) n += v
  return n
}

/**
 * The kinds of descriptor there are more of than at the baseline, and how
 * many more. Two pools on io_uring are held to their bounds instead, as
 * they may grow after the baseline with nothing leaked: pipes to the splice
 * pipe pool's (as many idle pipes as responses spliced at once so far, up
 * to 64: crates/core/src/backend/uring/pipe_pool.rs), rings to the lane
 * rings' (LANE_RINGS).
 */
function fdExcess(base, now, pipePool) {
  const excess = {}
  for (const [kind, n] of now) {
    const before = base.get(kind) || 0
    const allowed =
      pipePool && kind === 'pipe:[]'
        ? Math.max(before, PIPE_POOL_FDS)
        : pipePool && kind === 'anon_inode:[io_uring]'
          ? before + LANE_RINGS - 1
          : before
    if (n > allowed) excess[kind] = n - before
  }
  return excess
}

/** Compares each chunk as it comes against where it should be in `expected`: no copy, nothing kept. */
class Cursor {
  constructor(expected) {
    this.expected = expected
    this.pos = 0
    this.bad = false
  }

  feed(chunk) {
    if (!this.bad && !chunk.equals(this.expected.subarray(this.pos, this.pos + chunk.length))) this.bad = true
    this.pos += chunk.length
  }

  get complete() {
    return !this.bad && this.pos === this.expected.length
  }
}

/** Whether `data` is the first `data.length` bytes of `chunks` written in order. */
function isPrefixOf(data, chunks) {
  let pos = 0
  for (const c of chunks) {
    if (pos === data.length) break
    const n = Math.min(c.length, data.length - pos)
    if (!data.subarray(pos, pos + n).equals(c.subarray(0, n))) return false
    pos += n
  }
  return pos === data.length
}

/** Runs `start()` and reports it if it has not settled in OP_TIMEOUT_MS (the loop goes on without it). */
async function guarded(start, describe) {
  let timer
  const stuck = new Promise((resolve) => {
    timer = setTimeout(resolve, OP_TIMEOUT_MS, guarded)
  })
  const work = Promise.resolve()
    .then(start)
    .catch((err) => unexpected(`${describe()}: threw`, err))
  const first = await Promise.race([work, stuck])
  clearTimeout(timer)
  if (first === guarded) unexpected(`${describe()}: not settled after ${OP_TIMEOUT_MS / 1000} s`)
}

// ---------------------------------------------------------------------------
// The files

/**
 * Sizes that take every path: empty, a few bytes, around the open-file
 * cache's 64 KiB limit between bytes and descriptors, past the default
 * read-ahead of 1 MiB, and a few of several MiB.
 */
function fileSize(i) {
  if (i < 4) return 0
  if (i < 12) return int(1, 64)
  if (i < 28) return int(65, 16 * KiB)
  if (i < 48) return int(60 * KiB, 70 * KiB)
  if (i < 60) return int(100 * KiB, 768 * KiB)
  return int(1 * MiB, 8 * MiB)
}

function makeFiles(dir) {
  const files = []
  for (let i = 0; i < FILE_COUNT; i++) {
    const name = `f${String(i).padStart(2, '0')}.bin`
    const data = randomBuffer(fileSize(i))
    const file = { name, path: path.join(dir, name), url: '/' + name, size: data.length, data }
    fs.writeFileSync(file.path, data)
    files.push(file)
  }
  return files
}

// ---------------------------------------------------------------------------
// Read streams

const READ_CUTS = ['sync', 'open', 'data', 'data', 'timer']
const READ_HOWS = ['destroy', 'destroy', 'error', 'abort', 'close']

function readPlan(file) {
  const opts = {}
  if (chance(0.7)) opts.highWaterMark = pick([1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB])
  if (chance(0.3)) {
    opts.start = int(0, file.size + 8)
    if (chance(0.7)) opts.end = opts.start + int(0, file.size)
  } else if (chance(0.1)) {
    opts.end = int(0, file.size + 8)
  }
  if (chance(0.15)) opts.readAhead = pick([64 * KiB, 512 * KiB, 4 * MiB])
  const expected = file.data.subarray(opts.start || 0, (opts.end ?? Infinity) + 1)
  // Thousands of 1 KiB chunks per stream would make the run about chunk
  // overhead, not streams.
  if (expected.length / (opts.highWaterMark || 64 * KiB) > 1024) opts.highWaterMark = 64 * KiB
  const cut = chance(0.55) ? pick(READ_CUTS) : null
  const how = cut === null ? null : pick(READ_HOWS)
  return {
    file,
    opts,
    expected,
    cut,
    how,
    preAbort: how === 'abort' && cut === 'sync' && chance(0.5),
    cutAfter: int(1, Math.max(1, expected.length)),
    delay: int(0, 4),
    slow: chance(0.15),
    err: how === 'error' ? new Error('soak: injected read error') : null,
  }
}

function describeRead(p) {
  const cut = p.cut === null ? 'to the end' : `${p.how} at ${p.cut === 'data' ? `byte ${p.cutAfter}` : p.cut}${p.preAbort ? ' (signal aborted first)' : ''}`
  return `read stream ${p.file.name} (${p.file.size} bytes) ${JSON.stringify(p.opts)}${p.slow ? ' slow' : ''}: ${cut}`
}

function readStreamOnce(createReadStream, plan) {
  return new Promise((resolve) => {
    const ac = plan.how === 'abort' ? new AbortController() : null
    if (plan.preAbort) ac.abort()
    const s = createReadStream(plan.file.path, ac ? { ...plan.opts, signal: ac.signal } : plan.opts)
    const seen = { body: new Cursor(plan.expected), cut: plan.preAbort, late: false, error: null, errors: 0, ended: false }
    const cut = () => {
      if (seen.cut || s.destroyed) return
      seen.cut = true
      if (plan.how === 'abort') ac.abort()
      else if (plan.how === 'error') s.destroy(plan.err)
      else if (plan.how === 'close') s.close()
      else s.destroy()
    }
    s.on('data', (chunk) => onReadData(s, plan, seen, chunk, cut))
    s.on('error', (err) => {
      seen.errors++
      seen.error = err
    })
    s.on('end', () => {
      seen.ended = true
    })
    const timer = plan.cut === 'timer' ? setTimeout(cut, plan.delay) : null
    if (plan.cut === 'open') s.once('open', cut)
    s.once('close', () => {
      clearTimeout(timer)
      judgeRead(plan, seen)
      resolve()
    })
    if (plan.cut === 'sync') cut()
  })
}

/**
 * Readable (fs's streams as well) emits what it had buffered when a
 * destroyed stream is resumed: a slow reader must not resume one.
 */
function resumeUnlessDestroyed(stream) {
  if (!stream.destroyed) stream.resume()
}

function onReadData(s, plan, seen, chunk, cut) {
  // No 'data' once destroy() returned (the stream is never resumed after).
  if (seen.cut) seen.late = true
  seen.body.feed(chunk)
  if (plan.cut === 'data' && seen.body.pos >= plan.cutAfter) {
    cut()
  } else if (plan.slow && chance(0.3)) {
    s.pause()
    setTimeout(resumeUnlessDestroyed, int(0, 3), s)
  }
}

function judgeRead(plan, seen) {
  counts.reads++
  const what = describeRead(plan)
  if (seen.body.bad) mismatch(`${what}: bytes differ from the file within the first ${seen.body.pos}`)
  if (seen.late) mismatch(`${what}: 'data' after the stream was destroyed`)
  if (seen.errors > 1) unexpected(`${what}: ${seen.errors} 'error' events`, seen.error)
  if (seen.cut) {
    counts.readsCut++
    judgeCutError(what, plan.how, plan.err, seen.error)
    return
  }
  counts.readsToEnd++
  if (seen.error !== null) unexpected(what, seen.error)
  else if (!seen.ended) unexpected(`${what}: 'close' without 'end'`)
  else if (seen.body.pos !== plan.expected.length) mismatch(`${what}: ${seen.body.pos} bytes of ${plan.expected.length}`)
}

// ---------------------------------------------------------------------------
// Write streams, each worker on its own scratch file

const WRITE_CUTS = ['sync', 'open', 'write', 'write', 'timer']
const WRITE_HOWS = ['destroy', 'destroy', 'error', 'abort']

function chunkSize() {
  const r = random()
  if (r < 0.05) return 0
  if (r < 0.35) return int(1, 100)
  if (r < 0.7) return int(101, 16 * KiB)
  if (r < 0.95) return int(16 * KiB, 128 * KiB)
  return int(128 * KiB, 1 * MiB)
}

/** Chunks are views of one random pool: nothing allocated per write, and kept only until checked. */
function writePlan(pool, file) {
  const chunks = []
  let total = 0
  for (let i = pick([0, 1, 1, 2, 3, 4, 8, 16, 32]); i > 0; i--) {
    const len = chunkSize()
    const at = int(0, pool.length - len)
    chunks.push(pool.subarray(at, at + len))
    total += len
  }
  const opts = {}
  if (chance(0.5)) opts.highWaterMark = pick([1 * KiB, 16 * KiB, 64 * KiB, 1 * MiB])
  if (chance(0.02)) opts.flush = true
  const cut = chance(0.5) ? pick(WRITE_CUTS) : null
  const how = cut === null ? null : pick(WRITE_HOWS)
  return {
    file,
    chunks,
    total,
    opts,
    cut,
    how,
    preAbort: how === 'abort' && cut === 'sync' && chance(0.5),
    cutAt: int(0, Math.max(0, chunks.length - 1)),
    delay: int(0, 4),
    cork: chance(0.25),
    drain: chance(0.8),
    err: how === 'error' ? new Error('soak: injected write error') : null,
  }
}

function describeWrite(p) {
  const cut = p.cut === null ? 'ended' : `${p.how} at ${p.cut === 'write' ? `write #${p.cutAt}` : p.cut}${p.preAbort ? ' (signal aborted first)' : ''}`
  const style = `${p.cork ? ' corked' : ''}${p.drain ? '' : ' ignoring backpressure'}`
  return `write stream ${path.basename(p.file)} ${p.chunks.length} chunks, ${p.total} bytes ${JSON.stringify(p.opts)}${style}: ${cut}`
}

async function writeStreamOnce(createWriteStream, plan) {
  // A stream cut before it opens leaves no file: none from the last run either.
  fs.rmSync(plan.file, { force: true })
  const ac = plan.how === 'abort' ? new AbortController() : null
  if (plan.preAbort) ac.abort()
  const w = createWriteStream(plan.file, ac ? { ...plan.opts, signal: ac.signal } : plan.opts)
  const seen = { cut: plan.preAbort, error: null, errors: 0, finished: false, bytesAtFinish: -1, sizeAtFinish: -1 }
  const closed = new Promise((resolve) => w.once('close', resolve))
  w.on('error', (err) => {
    seen.errors++
    seen.error = err
  })
  w.on('finish', () => {
    seen.finished = true
    seen.bytesAtFinish = w.bytesWritten
    seen.sizeAtFinish = fs.statSync(plan.file).size
  })
  const cut = () => {
    if (seen.cut || w.destroyed) return
    seen.cut = true
    if (plan.how === 'abort') ac.abort()
    else if (plan.how === 'error') w.destroy(plan.err)
    else w.destroy()
  }
  const timer = plan.cut === 'timer' ? setTimeout(cut, plan.delay) : null
  if (plan.cut === 'open') w.once('open', cut)
  if (plan.cut === 'sync') cut()
  await writeChunks(w, plan, cut)
  if (!w.destroyed) w.end()
  await closed
  clearTimeout(timer)
  await judgeWrite(plan, seen, w)
}

/** In groups of 4 between cork() and uncork() when corked, so that they reach _writev together. */
async function writeChunks(w, plan, cut) {
  let i = 0
  while (i < plan.chunks.length && !w.destroyed) {
    if (plan.cork) w.cork()
    let ok = true
    for (let n = plan.cork ? 4 : 1; n > 0 && i < plan.chunks.length; n--, i++) {
      ok = w.write(plan.chunks[i])
      if (plan.cut === 'write' && i === plan.cutAt) {
        if (plan.cork) w.uncork()
        cut()
        return
      }
    }
    if (plan.cork) w.uncork()
    if (!ok && plan.drain) await drainedOrClosed(w)
  }
}

function drainedOrClosed(w) {
  return new Promise((resolve) => {
    const done = () => {
      w.removeListener('drain', done)
      w.removeListener('close', done)
      resolve()
    }
    w.on('drain', done)
    w.on('close', done)
  })
}

/** fs's documented quirk: a destroy() while a write is in the kernel fails that write with ERR_STREAM_DESTROYED. */
function destroyedMidWrite(err) {
  return err.code === 'ERR_STREAM_DESTROYED'
}

async function judgeWrite(plan, seen, w) {
  counts.writes++
  const what = describeWrite(plan)
  if (seen.errors > 1) unexpected(`${what}: ${seen.errors} 'error' events`, seen.error)
  if (seen.cut) {
    counts.writesCut++
    judgeCutError(what, plan.how, plan.err, seen.error, destroyedMidWrite)
    await checkWrittenPrefix(plan, w, what)
    return
  }
  counts.writesEnded++
  if (seen.error !== null) return unexpected(what, seen.error)
  if (!seen.finished) return unexpected(`${what}: 'close' without 'finish'`)
  if (seen.bytesAtFinish !== plan.total || seen.sizeAtFinish !== plan.total) {
    return mismatch(`${what}: at 'finish' bytesWritten ${seen.bytesAtFinish} and file size ${seen.sizeAtFinish}, not ${plan.total}`)
  }
  const data = await fsp.readFile(plan.file)
  if (data.length !== plan.total || !isPrefixOf(data, plan.chunks)) mismatch(`${what}: the file is not what was written`)
}

/** A cut stream wrote some prefix of its chunks, at least what bytesWritten counts. */
async function checkWrittenPrefix(plan, w, what) {
  let data
  try {
    data = await fsp.readFile(plan.file)
  } catch (err) {
    if (err.code !== 'ENOENT' || w.bytesWritten !== 0) unexpected(`${what}: reading the file back`, err)
    return
  }
  if (data.length > plan.total || w.bytesWritten > data.length || !isPrefixOf(data, plan.chunks)) {
    mismatch(`${what}: the file (${data.length} bytes, bytesWritten ${w.bytesWritten}) is not a prefix of what was written`)
  }
}

// ---------------------------------------------------------------------------
// readFiles batches

async function readFilesOnce(readFiles, files, missing) {
  const withMissing = chance(0.3)
  const paths = files.map((f) => f.path)
  if (withMissing) paths.push(missing)
  const concurrency = pick([undefined, 1, 8, 256])
  const out = await readFiles(paths, concurrency === undefined ? undefined : { concurrency })
  counts.batches++
  for (let i = 0; i < files.length; i++) {
    const got = out[i]
    if (got instanceof Error) unexpected(`readFiles ${files[i].name}`, got)
    else if (!got.equals(files[i].data)) mismatch(`readFiles ${files[i].name}: ${got.length} bytes, not the file's ${files[i].size}`)
  }
  if (!withMissing) return
  const last = out[files.length]
  if (last instanceof Error && last.code === 'ENOENT') counts.injected++
  else unexpected('readFiles of a missing path', last instanceof Error ? last : new Error(`gave ${last.length} bytes`))
}

// ---------------------------------------------------------------------------
// HTTP: the server

let serverInFlight = 0

/**
 * One server for the clients that read whole responses, one for those that
 * disconnect: a connection reset before its request was parsed can only be
 * told apart by where it came in (its peer address is gone by then).
 */
function startServer(sendFile, root, byUrl, cut) {
  const zeroCopy = { root }
  const viaStream = { root, zeroCopy: false }
  const server = http.createServer((req, res) => {
    serverInFlight++
    sendFile(req, res, req.url, req.headers['x-soak-stream'] === '1' ? viaStream : zeroCopy)
      .then(
        (result) => judgeServed(req, result, cut, byUrl.get(req.url)),
        (err) => unexpected(`sendFile ${req.url} rejected`, err),
      )
      .finally(() => serverInFlight--)
  })
  // Idle keep-alive sockets are closed by the script when it quiesces, not
  // by a timer: a socket the server closes just as the client reuses it is
  // an ECONNRESET nobody injected.
  server.keepAliveTimeout = 10 * 60_000
  server.on('clientError', (err, socket) => {
    if (cut && DISCONNECT_CODES.has(err.code)) counts.injected++
    else unexpected('http server clientError', err)
    socket.destroy()
  })
  server.on('error', (err) => unexpected('http server', err))
  return new Promise((resolve) => server.listen(0, HOST, () => resolve(server)))
}

function rangeLength(header) {
  const m = /^bytes=(\d+)-(\d+)$/.exec(header || '')
  return m ? Number(m[2]) - Number(m[1]) + 1 : -1
}

function judgeServed(req, r, cut, file) {
  const what = `sendFile ${req.url}${req.headers.range ? ' ' + req.headers.range : ''}${req.headers['x-soak-stream'] ? ' (zeroCopy: false)' : ''}`
  if (r.aborted || (r.error && r.statusCode < 400)) {
    if (!cut) unexpected(`${what}: cut short after ${r.bytes} bytes`, r.error || new Error('aborted'))
    else if (r.error && !DISCONNECT_CODES.has(r.error.code)) unexpected(`${what}: the client's disconnect gave`, r.error)
    else if (r.error) counts.injected++
    return
  }
  if (file === undefined) {
    if (r.statusCode !== 404) unexpected(`${what}: status ${r.statusCode} for a missing file`)
    return
  }
  if (r.error) return unexpected(`${what}: status ${r.statusCode}`, r.error)
  const want = r.statusCode === 206 ? rangeLength(req.headers.range) : file.size
  if (r.statusCode !== (req.headers.range ? 206 : 200)) unexpected(`${what}: status ${r.statusCode}`)
  else if (r.bytes !== want) mismatch(`${what}: ${r.bytes} body bytes sent, not ${want}`)
}

function serverConnections(server) {
  return new Promise((resolve) => server.getConnections((err, n) => resolve(err ? -1 : n)))
}

// ---------------------------------------------------------------------------
// HTTP: the clients

const HTTP_CUTS = ['request', 'response', 'body', 'body', 'timer']

function httpPlan(files) {
  const r = random()
  const kind = r < 0.35 ? 'full' : r < 0.5 ? 'slow' : r < 0.75 ? 'cut' : r < 0.93 ? 'raw' : 'missing'
  const file = pick(files)
  let range = null
  if ((kind === 'full' || kind === 'slow') && file.size > 0 && chance(0.2)) {
    const a = int(0, file.size - 1)
    range = [a, int(a, file.size - 1)]
  }
  return {
    kind,
    file,
    url: kind === 'missing' ? `/missing-${int(0, 999)}.bin` : file.url,
    range,
    expected: range ? file.data.subarray(range[0], range[1] + 1) : file.data,
    viaStream: chance(0.25),
    cutAt: pick(HTTP_CUTS),
    cutHow: kind === 'raw' ? pick(['destroy', 'reset', 'end']) : pick(['req', 'res', 'socket', 'reset']),
    cutAfter: int(0, file.size),
    delay: int(0, 20),
    slow: kind === 'slow' || chance(0.3),
  }
}

function describeHttp(p) {
  const range = p.range ? ` bytes=${p.range[0]}-${p.range[1]}` : ''
  const cut = p.kind === 'cut' || p.kind === 'raw' ? ` ${p.cutHow} at ${p.cutAt === 'body' ? `body byte ${p.cutAfter}` : p.cutAt}` : ''
  return `${p.kind} GET ${p.url}${range}${p.viaStream ? ' zeroCopy: false' : ''}${cut}`
}

function requestHeaders(p) {
  const headers = {}
  if (p.range) headers.range = `bytes=${p.range[0]}-${p.range[1]}`
  if (p.viaStream) headers['x-soak-stream'] = '1'
  return headers
}

/** A slow reader: stops taking data now and then, so that the server meets a full socket. */
function maybeStall(stream, p) {
  if (!p.slow || !chance(0.5)) return
  stream.pause()
  setTimeout(resumeUnlessDestroyed, int(1, 20), stream)
}

/** A whole response over the keep-alive agent, checked byte for byte. */
function httpGetOnce(env, p) {
  return new Promise((resolve) => {
    const what = describeHttp(p)
    let settled = false
    const settle = (err) => {
      if (settled) return
      settled = true
      if (err) unexpected(what, err)
      resolve()
    }
    const req = http.get({ host: HOST, port: env.port, path: p.url, agent: env.agent, headers: requestHeaders(p) }, (res) => {
      if (p.kind === 'missing') return expect404(res, what, settle)
      const status = p.range ? 206 : 200
      if (res.statusCode !== status) unexpected(`${what}: status ${res.statusCode}`)
      if (Number(res.headers['content-length']) !== p.expected.length) mismatch(`${what}: Content-Length ${res.headers['content-length']}`)
      const body = new Cursor(p.expected)
      let ended = false
      res.on('data', (chunk) => {
        body.feed(chunk)
        maybeStall(res, p)
      })
      res.on('end', () => {
        ended = true
        if (!body.complete) mismatch(`${what}: body ${body.bad ? 'differs' : `${body.pos} bytes of ${p.expected.length}`}`)
      })
      res.on('error', settle)
      res.on('close', () => settle(ended ? null : new Error("response 'close' without 'end'")))
    })
    req.on('error', settle)
    req.on('close', () => {
      if (req.res === null) settle(new Error('request closed without a response'))
    })
    counts.requests++
    if (p.kind === 'slow') counts.requestsSlow++
    else if (p.kind === 'full') counts.requestsFull++
  })
}

function expect404(res, what, settle) {
  counts.requests404++
  if (res.statusCode !== 404) unexpected(`${what}: status ${res.statusCode}, not 404`)
  res.resume()
  res.on('error', settle)
  res.on('close', () => settle(null))
}

/**
 * A reset (RST) where Node can send one. Once the socket is shutting down
 * (the server's FIN makes Node end() it) libuv refuses with EINVAL, and
 * Node then emits that error and never 'close', and keeps the descriptor:
 * a plain destroy() instead.
 */
function resetOrDestroy(socket) {
  if (socket.destroyed) return
  if (socket.writableEnded || (socket.readyState !== 'open' && socket.readyState !== 'opening')) socket.destroy()
  else socket.resetAndDestroy()
}

/** node:http on its own connection, cut at a random point; what arrived before the cut must be right. */
function httpCutOnce(env, p) {
  return new Promise((resolve) => {
    const what = describeHttp(p)
    const body = new Cursor(p.expected)
    let cutDone = false
    let res = null
    const req = http.get({ host: HOST, port: env.cutPort, path: p.url, agent: false, headers: requestHeaders(p) })
    const cut = () => {
      if (cutDone || (res !== null && res.complete)) return
      cutDone = true
      const socket = req.socket
      if (p.cutHow === 'res' && res !== null) res.destroy()
      else if (p.cutHow === 'socket' && socket) socket.destroy()
      else if (p.cutHow === 'reset' && socket) resetOrDestroy(socket)
      else req.destroy()
    }
    const onError = (err) => {
      if (cutDone && DISCONNECT_CODES.has(err.code)) counts.injected++
      else unexpected(`${what}${cutDone ? ': after the cut' : ''}`, err)
    }
    req.on('response', (response) => {
      res = response
      if (res.statusCode !== 200) unexpected(`${what}: status ${res.statusCode}`)
      res.on('data', (chunk) => {
        body.feed(chunk)
        if (p.cutAt === 'body' && body.pos >= p.cutAfter) cut()
        else maybeStall(res, p)
      })
      res.on('error', onError)
      if (p.cutAt === 'response') cut()
    })
    req.on('error', onError)
    const timer = p.cutAt === 'timer' ? setTimeout(cut, p.delay) : null
    // The request closes with its socket, before a paused response has
    // been read: done when the response is too.
    const done = () => {
      clearTimeout(timer)
      if (body.bad) mismatch(`${what}: the bytes before the cut differ`)
      if (!cutDone && !body.complete) unexpected(`${what}: closed before the cut, incomplete`)
      resolve()
    }
    req.on('close', () => {
      if (res === null || res.closed) done()
      else res.once('close', done)
    })
    if (p.cutAt === 'request') cut()
    counts.requests++
    counts.requestsCut++
  })
}

/** The head of a raw HTTP response, then its body checked as it comes. */
class RawResponse {
  constructor(expected) {
    this.head = ''
    this.status = 0
    this.body = new Cursor(expected)
  }

  feed(chunk) {
    if (this.status === 0) {
      const text = this.head + chunk.toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) {
        this.head = text
        return
      }
      this.status = Number(text.slice(9, 12))
      this.head = ''
      chunk = Buffer.from(text.slice(end + 4), 'latin1')
    }
    if (chunk.length > 0) this.body.feed(chunk)
  }
}

/** A raw socket: sends a request, reads (slowly, maybe), then destroys, resets or half-closes. */
function rawOnce(env, p) {
  return new Promise((resolve) => {
    const what = describeHttp(p)
    const response = new RawResponse(p.file.data)
    const socket = net.connect(env.cutPort, HOST)
    let cutDone = false
    const cut = () => {
      if (cutDone || socket.destroyed) return
      cutDone = true
      if (p.cutHow === 'reset') resetOrDestroy(socket)
      else if (p.cutHow === 'end') socket.end()
      else socket.destroy()
    }
    socket.once('connect', () => {
      // Half-closed before it connected: a request now would be a write after end.
      if (cutDone) return
      const stream = p.viaStream ? 'X-Soak-Stream: 1\r\n' : ''
      socket.write(`GET ${p.url} HTTP/1.1\r\nHost: ${HOST}\r\n${stream}Connection: close\r\n\r\n`)
      if (p.cutAt === 'request') cut()
    })
    socket.on('data', (chunk) => {
      const before = response.status
      response.feed(chunk)
      if (before === 0 && response.status !== 0 && response.status !== 200) unexpected(`${what}: status ${response.status}`)
      if (p.cutAt === 'response' && response.status !== 0) cut()
      else if (p.cutAt === 'body' && response.body.pos >= p.cutAfter) cut()
      else maybeStall(socket, p)
    })
    socket.on('error', (err) => {
      if (cutDone && DISCONNECT_CODES.has(err.code)) counts.injected++
      else unexpected(`${what}${cutDone ? ': after the cut' : ''}`, err)
    })
    const timer = p.cutAt === 'timer' ? setTimeout(cut, p.delay) : null
    socket.on('close', () => {
      clearTimeout(timer)
      if (response.body.bad) mismatch(`${what}: the bytes before the cut differ`)
      if (!cutDone && !response.body.complete) unexpected(`${what}: closed before the cut, incomplete`)
      resolve()
    })
    counts.requests++
    counts.requestsRaw++
  })
}

function httpOnce(env, p) {
  if (p.kind === 'cut') return httpCutOnce(env, p)
  if (p.kind === 'raw') return rawOnce(env, p)
  return httpGetOnce(env, p)
}

// ---------------------------------------------------------------------------
// The mix

/** Calls `next()` for a plan and runs it, until `next()` has none. */
async function worker(next, run, describe) {
  for (let plan = next(); plan !== null; plan = next()) {
    const p = plan
    await guarded(() => run(p), () => describe(p))
  }
}

async function batchLoop(env, phase) {
  while (!phase.over()) {
    await guarded(() => readFilesOnce(env.api.readFiles, env.files, env.missing), () => 'readFiles batch')
    await sleep(int(200, 1000))
  }
}

/**
 * Every kind of work at once until `phase` says stop: streams up to their
 * targets, HTTP and readFiles for as long as the streams go on.
 */
async function runMix(env, phase) {
  const { api, files } = env
  const started = env.started
  const nextRead = () => (phase.over() || started.reads >= READ_TARGET ? null : (started.reads++, readPlan(pick(files))))
  const nextWrite = (slot) => (phase.over() || started.writes >= WRITE_TARGET ? null : (started.writes++, writePlan(env.pool, env.scratch[slot])))
  const streams = []
  for (let i = 0; i < READ_WORKERS; i++) streams.push(worker(nextRead, (p) => readStreamOnce(api.createReadStream, p), describeRead))
  for (let i = 0; i < WRITE_WORKERS; i++) streams.push(worker(() => nextWrite(i), (p) => writeStreamOnce(api.createWriteStream, p), describeWrite))
  const streamsDone = Promise.all(streams).then(() => {
    phase.streamsDone = true
  })
  const others = [batchLoop(env, phase)]
  const nextHttp = () => (phase.over() ? null : httpPlan(files))
  for (let i = 0; i < HTTP_WORKERS; i++) others.push(worker(nextHttp, (p) => httpOnce(env, p), describeHttp))
  await Promise.all([streamsDone, ...others])
}

function phaseUntil(deadline) {
  const phase = {
    streamsDone: false,
    over: () => phase.streamsDone || Date.now() >= deadline,
  }
  return phase
}

/** Every file once, whole: the open-file cache keeps descriptors by design, and the baseline must include them. */
async function fetchEveryFile(env) {
  for (const file of env.files) {
    await guarded(
      () => httpGetOnce(env, { kind: 'full', file, url: file.url, range: null, expected: file.data, viaStream: false, slow: false }),
      () => `warm-up GET ${file.url}`,
    )
  }
}

// ---------------------------------------------------------------------------
// Measuring

/** No work, no connection, no garbage, the buffer pool trimmed: the state to compare. */
async function quiesce(env) {
  env.agent.destroy()
  const until = Date.now() + 10_000
  const connections = async () => (await serverConnections(env.server)) + (await serverConnections(env.cutServer))
  while ((serverInFlight > 0 || (await connections()) > 0) && Date.now() < until) await sleep(50)
  if (serverInFlight > 0) unexpected(`${serverInFlight} sendFile calls still pending 10 s after the clients stopped`)
  if (typeof global.gc === 'function') {
    global.gc()
    await sleep(100)
    global.gc()
  }
  await sleep(IDLE_MS)
}

/** Until the descriptor count has held still for half a second (3 s at most): the baseline must not catch a close in flight. */
async function fdsHoldStill() {
  const until = Date.now() + 3000
  let n = fdCount()
  let since = Date.now()
  while (Date.now() - since < 500 && Date.now() < until) {
    await sleep(50)
    const m = fdCount()
    if (m !== n) {
      n = m
      since = Date.now()
    }
  }
}

/** The descriptors, polled until none is in excess of `base` or FD_SETTLE_MS passed. */
async function settledFds(base, pipePool) {
  const until = Date.now() + FD_SETTLE_MS
  let now = fdKinds()
  while (Object.keys(fdExcess(base, now, pipePool)).length > 0 && Date.now() < until) {
    await sleep(100)
    now = fdKinds()
  }
  return now
}

function startProgress() {
  const t0 = Date.now()
  const timer = setInterval(() => {
    const c = counts
    console.log(
      `soak ${Math.round((Date.now() - t0) / 1000)}s: reads ${c.reads} writes ${c.writes} http ${c.requests} readFiles ${c.batches}` +
        ` injected ${c.injected} unexpected ${c.unexpected} mismatches ${c.mismatches}` +
        ` rss ${mib(process.memoryUsage().rss)} MiB fds ${fdCount()}`,
    )
  }, PROGRESS_MS)
  return () => clearInterval(timer)
}

// ---------------------------------------------------------------------------
// Setup and the run

function parseOptions(argv) {
  let values
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: { seconds: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }))
  } catch (err) {
    console.error(`${err.message}\n${USAGE}`)
    process.exit(2)
  }
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const seconds = values.seconds === undefined ? null : Number(values.seconds)
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(values.seed)
  if ((seconds !== null && !(seconds > 0)) || !Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    console.error(`--seconds takes a positive number, --seed an integer in [0, 2^32)\n${USAGE}`)
    process.exit(2)
  }
  return { seconds, seed }
}

function makeTempDirs() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-soak-'))
  // rmSync is synchronous, so it runs on every way out, a failure included;
  // Ctrl-C and kill are made ways out too.
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(1))
  const root = path.join(dir, 'files')
  const scratch = path.join(dir, 'scratch')
  fs.mkdirSync(root)
  fs.mkdirSync(scratch)
  return { root, scratch }
}

/** Anything thrown or warned outside an operation is a failure too. */
function watchProcess() {
  process.on('uncaughtException', (err) => unexpected('uncaught exception', err))
  process.on('unhandledRejection', (err) => unexpected('unhandled rejection', err instanceof Error ? err : new Error(String(err))))
  process.on('warning', (w) => unexpected(`process warning ${w.name}`, w))
}

async function setup(opts) {
  const api = require(path.join(__dirname, '..'))
  seedRandom(opts.seed)
  const dirs = makeTempDirs()
  const files = makeFiles(dirs.root)
  const byUrl = new Map(files.map((f) => [f.url, f]))
  const server = await startServer(api.sendFile, dirs.root, byUrl, false)
  const cutServer = await startServer(api.sendFile, dirs.root, byUrl, true)
  return {
    api,
    files,
    server,
    port: server.address().port,
    cutServer,
    cutPort: cutServer.address().port,
    agent: new http.Agent({ keepAlive: true, maxSockets: HTTP_WORKERS }),
    pool: randomBuffer(2 * MiB),
    scratch: Array.from({ length: WRITE_WORKERS }, (_, i) => path.join(dirs.scratch, `w${i}.bin`)),
    missing: path.join(dirs.root, 'missing.bin'),
    started: { reads: 0, writes: 0 },
  }
}

function verdict(s) {
  const reasons = []
  if (Object.keys(s.fdsExcess).length > 0) {
    reasons.push(`descriptors: ${s.fdsEnd} open at the end, ${s.fdsBaseline} at the baseline; more than then: ${JSON.stringify(s.fdsExcess)}`)
  }
  if (s.rssGrowthMiB * MiB >= RSS_LIMIT) reasons.push(`RSS grew ${s.rssGrowthMiB} MiB after the warm-up (limit ${mib(RSS_LIMIT)} MiB)`)
  if (s.unexpected > 0) reasons.push(`${s.unexpected} unexpected errors`)
  if (s.mismatches > 0) reasons.push(`${s.mismatches} wrong byte counts or contents`)
  if (!s.gc) reasons.push('global.gc() is not exposed: the RSS figures include garbage (run under --expose-gc)')
  return reasons
}

/** The state after the warm-up, once quiet: what the end is compared with. */
async function takeBaseline(env) {
  await quiesce(env)
  await fdsHoldStill()
  const fds = fdKinds()
  const rss = process.memoryUsage().rss
  console.log(`soak: warm-up done: rss ${mib(rss)} MiB, fds ${total(fds)}`)
  return { fds, rss, mem: memoryMiB(env.api) }
}

/** The state at the end, once quiet, the descriptors given FD_SETTLE_MS to come back. */
async function takeEnd(env, base) {
  await quiesce(env)
  const pipePool = env.api.backend() === 'io_uring'
  const fds = await settledFds(base.fds, pipePool)
  return { fds, rss: process.memoryUsage().rss, mem: memoryMiB(env.api), excess: fdExcess(base.fds, fds, pipePool) }
}

function summarize(env, opts, elapsed, base, end) {
  return {
    backend: env.api.backend(),
    node: process.version,
    seed: opts.seed,
    mode: opts.seconds === null ? 'full' : `${opts.seconds}s`,
    seconds: Math.round(elapsed),
    ...counts,
    rssWarmupMiB: mib(base.rss),
    rssEndMiB: mib(end.rss),
    rssGrowthMiB: mib(end.rss - base.rss),
    memWarmup: base.mem,
    memEnd: end.mem,
    fdsBaseline: total(base.fds),
    fdsEnd: total(end.fds),
    pipesBaseline: base.fds.get('pipe:[]') || 0,
    pipesEnd: end.fds.get('pipe:[]') || 0,
    fdsExcess: end.excess,
    gc: typeof global.gc === 'function',
    firstProblems,
  }
}

function printHeader(env, opts) {
  const reason = env.api.fallbackReason()
  const mode = opts.seconds === null ? `${READ_TARGET} read and ${WRITE_TARGET} write streams` : `${opts.seconds} s`
  console.log(`soak: backend ${env.api.backend()}${reason ? ` (${reason})` : ''}, node ${process.version}, seed ${opts.seed}, ${mode}`)
}

async function main() {
  const opts = parseOptions(process.argv.slice(2))
  watchProcess()
  const env = await setup(opts)
  printHeader(env, opts)
  const t0 = Date.now()
  const deadline = opts.seconds === null ? Infinity : t0 + opts.seconds * 1000
  const warmupMs = opts.seconds === null ? WARMUP_MS : Math.min(WARMUP_MS, (opts.seconds * 1000) / 6)
  const stopProgress = startProgress()

  await fetchEveryFile(env)
  await runMix(env, phaseUntil(Math.min(deadline, t0 + warmupMs)))
  const base = await takeBaseline(env)
  await runMix(env, phaseUntil(deadline))
  const elapsed = (Date.now() - t0) / 1000
  stopProgress()
  const end = await takeEnd(env, base)

  const summary = summarize(env, opts, elapsed, base, end)
  const reasons = verdict(summary)
  for (const r of reasons) console.log(`soak: FAIL: ${r}`)
  summary.ok = reasons.length === 0
  await Promise.all([env.server, env.cutServer].map((server) => new Promise((resolve) => server.close(resolve))))
  console.log(JSON.stringify(summary))
  process.exit(summary.ok ? 0 : 1)
}

// A leak shows in RSS only after a full collection: without global.gc the
// figures would be garbage. Re-run under --expose-gc, once.
// Signals are passed on, so that the child removes its files.
if (typeof global.gc !== 'function' && !process.execArgv.includes('--expose-gc')) {
  const child = spawn(process.execPath, ['--expose-gc', ...process.execArgv, __filename, ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code) => process.exit(code ?? 1))
} else {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
