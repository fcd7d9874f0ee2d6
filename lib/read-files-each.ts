// readFilesEach: readFiles for path lists too long to hold at once (a
// directory walk of a million files). The paths are pulled from the caller's
// iterable a batch at a time, each batch is one native readFiles call, and
// results are handed out as each call completes, so memory is a few batches
// of paths and contents however long the list is.

import type { FileError } from '../binding'
import type { PathLike } from './files'
import { invalidArgType } from './errors'
import { fsOutcome, readBatch, type ReadFilesOptions } from './read-files'
import { getOptions, stringToFlags, toPath, validateInteger } from './validate'

export interface ReadFilesEachOptions extends ReadFilesOptions {
  /** Paths per native call (default 256). */
  batch?: number
  /** Native calls outstanding at once (default 3). */
  inFlight?: number
}

/** What readFilesEach yields: the path as given, and the file's contents or its Error. */
export type ReadFilesEachEntry<P, R = Buffer | string> = [path: P, result: R | Error]

// 256 paths per call makes the per-call overhead (one crossing each way, one
// promise) small next to the files' own work. Three calls outstanding keeps
// the engine busy while the consumer works through the batch it was just
// given and another completes; more only holds more memory.
const DEFAULT_CONCURRENCY = 256
const DEFAULT_BATCH = 256
const DEFAULT_IN_FLIGHT = 3

/** One native call: the caller's path values, as given, and what came back. */
interface Batch<P> {
  given: P[]
  paths: Array<string | Buffer>
  results: Array<Buffer | FileError | Error | undefined> | null
  error: unknown
}

type Source<P> = { async: false; it: Iterator<P> } | { async: true; it: AsyncIterator<P> }

function openSource<P>(paths: Iterable<P> | AsyncIterable<P>): Source<P> {
  const asyncFn = (paths as AsyncIterable<P>)[Symbol.asyncIterator]
  if (typeof asyncFn === 'function') return { async: true, it: asyncFn.call(paths) }
  return { async: false, it: (paths as Iterable<P>)[Symbol.iterator]() }
}

/**
 * Reads every file named by `paths` (an iterable or async iterable, pulled
 * lazily: a generator of a million paths is never held whole), yielding
 * `[path, result]` for each, in the order the reads complete. `path` is the
 * value `paths` gave; `result` is the contents (a Buffer, or a string with
 * `encoding`) or the Error fs.promises.readFile would have given, exactly as
 * readFiles gives them.
 *
 * Paths go to the engine `batch` at a time (one native readFiles call each,
 * `concurrency` files of it at once), with at most `inFlight` calls read
 * ahead of the consumer: more paths are pulled only as results are consumed,
 * so memory holds at most `inFlight + 1` batches of paths and contents.
 * Breaking out of the loop (or throwing in it) closes `paths` (its
 * `return()`, so a generator's `finally` runs) and pulls nothing more; reads
 * already submitted finish in the background and are dropped.
 *
 * Arguments: `paths` being iterable and the options are checked when
 * readFilesEach is called, which throws (ERR_INVALID_ARG_TYPE,
 * ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE) like readFiles rejects. Each path
 * is checked as it is pulled. A bad path, or `paths` itself throwing, ends
 * the pulling (a bad path closes `paths`); the results of every path pulled
 * before it are still yielded, then next() rejects with that error.
 */
export function readFilesEach<P extends PathLike>(
  paths: Iterable<P> | AsyncIterable<P>,
  options?: (ReadFilesEachOptions & { encoding?: 'buffer' | null }) | 'buffer' | null,
): AsyncGenerator<ReadFilesEachEntry<P, Buffer>, void, undefined>
export function readFilesEach<P extends PathLike>(
  paths: Iterable<P> | AsyncIterable<P>,
  options: (ReadFilesEachOptions & { encoding: BufferEncoding }) | BufferEncoding,
): AsyncGenerator<ReadFilesEachEntry<P, string>, void, undefined>
export function readFilesEach<P extends PathLike>(
  paths: Iterable<P> | AsyncIterable<P>,
  options?: ReadFilesEachOptions | BufferEncoding | 'buffer' | null,
): AsyncGenerator<ReadFilesEachEntry<P>, void, undefined>
export function readFilesEach<P>(
  paths: Iterable<P> | AsyncIterable<P>,
  options?: ReadFilesEachOptions | BufferEncoding | 'buffer' | null,
): AsyncGenerator<ReadFilesEachEntry<P>, void, undefined> {
  if (
    paths == null ||
    typeof paths === 'string' ||
    (typeof (paths as Iterable<P>)[Symbol.iterator] !== 'function' &&
      typeof (paths as AsyncIterable<P>)[Symbol.asyncIterator] !== 'function')
  ) {
    throw invalidArgType('paths', ['Iterable', 'AsyncIterable'], paths)
  }
  const opts = getOptions<ReadFilesEachOptions>(options)
  const flags = stringToFlags(opts.flag || 'r')
  const concurrency =
    opts.concurrency === undefined ? DEFAULT_CONCURRENCY : validateInteger(opts.concurrency, 'options.concurrency', 1)
  const batch = opts.batch === undefined ? DEFAULT_BATCH : validateInteger(opts.batch, 'options.batch', 1)
  const inFlight = opts.inFlight === undefined ? DEFAULT_IN_FLIGHT : validateInteger(opts.inFlight, 'options.inFlight', 1)
  // getOptions lets 'buffer' through, as fs does: it means no decoding.
  const enc = opts.encoding as BufferEncoding | 'buffer' | null | undefined
  return each(paths, flags, concurrency, batch, inFlight, enc && enc !== 'buffer' ? enc : null)
}

async function* each<P>(
  paths: Iterable<P> | AsyncIterable<P>,
  flags: number,
  concurrency: number,
  batchSize: number,
  inFlight: number,
  enc: BufferEncoding | null,
): AsyncGenerator<ReadFilesEachEntry<P>, void, undefined> {
  // Opened on the first next(), as a generator's body runs: a generator
  // that is never iterated never touches `paths`.
  const source = openSource(paths)
  // Batches submitted and not yet completed, and completed ones not yet
  // handed out; together never more than `inFlight`.
  let pending = 0
  const ready: Batch<P>[] = []
  let wake: (() => void) | null = null
  // The source is finished with: it ended, threw, or gave a bad path.
  let sourceDone = false
  let sourceError: unknown = null
  let hasSourceError = false
  let closed = false

  const closeSource = async (): Promise<void> => {
    const it = source.it as { return?: () => unknown }
    if (typeof it.return === 'function') await it.return()
  }

  // Takes up to `batchSize` paths; on a bad path or a throwing source keeps
  // the paths taken so far (they still get their results) and records the
  // error for after them.
  const pull = async (): Promise<Batch<P> | null> => {
    const given: P[] = []
    const list: Array<string | Buffer> = []
    try {
      while (given.length < batchSize) {
        const r = source.async ? await source.it.next() : source.it.next()
        if (r.done) {
          sourceDone = true
          break
        }
        let p: string | Buffer
        try {
          p = toPath(r.value)
        } catch (e) {
          // As for-of does when its body throws: the source is closed, and
          // an error from closing it gives way to the bad path's.
          sourceDone = true
          await closeSource().catch(() => {})
          throw e
        }
        given.push(r.value)
        list.push(p)
      }
    } catch (e) {
      sourceDone = true
      sourceError = e
      hasSourceError = true
    }
    return given.length === 0 ? null : { given, paths: list, results: null, error: undefined }
  }

  const submit = (b: Batch<P>): void => {
    pending++
    const done = (): void => {
      pending--
      // After an early exit nobody reads `ready`: drop the contents now.
      if (closed) return
      ready.push(b)
      const w = wake
      wake = null
      w?.()
    }
    let call: Promise<Array<Buffer | FileError | Error>>
    try {
      call = readBatch(b.paths, flags, concurrency)
    } catch (e) {
      call = Promise.reject(e)
    }
    // Never rejects: a native failure is kept on the batch and thrown when
    // the batch's turn comes, so a batch abandoned by an early exit cannot
    // become an unhandled rejection.
    call.then(
      (res) => {
        b.results = res
        done()
      },
      (e: unknown) => {
        b.error = e ?? new Error('readFiles failed')
        done()
      },
    )
  }

  const refill = async (): Promise<void> => {
    while (!sourceDone && pending + ready.length < inFlight) {
      const b = await pull()
      if (b !== null) submit(b)
    }
  }

  try {
    await refill()
    for (;;) {
      while (ready.length === 0) {
        if (pending === 0) {
          if (hasSourceError) throw sourceError
          return
        }
        await new Promise<void>((resolve) => (wake = resolve))
      }
      const b = ready.shift()!
      if (b.results === null) throw b.error
      // Submit the next batch before handing this one out, so the engine
      // works while the consumer does.
      await refill()
      const { given, paths: list, results } = b
      for (let i = 0; i < given.length; i++) {
        const res = results[i]!
        // Let each result be collected once the consumer is done with it.
        results[i] = undefined
        // A file the engine could not read: fs's own outcome (readFiles).
        const read = Buffer.isBuffer(res) || res instanceof Error ? res : await fsOutcome(list[i], flags)
        const out = Buffer.isBuffer(read) && enc ? read.toString(enc) : read
        yield [given[i], out]
      }
    }
  } finally {
    closed = true
    // An early exit (break, a throw in the loop, or an error above) leaves
    // the source open: close it, as for-of would.
    if (!sourceDone) {
      sourceDone = true
      await closeSource()
    }
  }
}
