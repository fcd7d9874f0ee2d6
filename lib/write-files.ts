// writeFiles: many whole files in one call. Each file is an open → batch
// write (→ fsync) → close sequence in the engine, many files share each
// submission to the kernel, and all results come back to JavaScript in one
// crossing. The data goes to the kernel from the caller's own memory: views
// are passed as they are, only strings are encoded (as fs does).

import type { PathLike } from './files'
import { promises } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { native } from './native'
import { writeFilesJs } from './node-fs-backend'
import { invalidArgType, systemError } from './errors'
import { getOptions, parseFileMode, stringToFlags, toPath, validateBoolean, validateInteger } from './validate'

export interface WriteFilesOptions {
  /** How string data is encoded ('utf8' by default). */
  encoding?: BufferEncoding | null
  /** Mode of files created (default 0o666, less the umask). */
  mode?: number | string
  /** fs flag to open with, 'w' by default ('a' appends, 'wx' refuses existing files). */
  flag?: string | number
  /** fsync each file before closing it, as writeFile's `flush`. */
  flush?: boolean
  /** Most files in flight at once (default 256). */
  concurrency?: number
}

/** What fs.promises.writeFile takes as whole data. */
export type WriteFileData = string | NodeJS.ArrayBufferView

/** A file to write: `[path, data]` or `{ path, data }`. */
export type WriteFilesEntry =
  | readonly [path: PathLike, data: WriteFileData]
  | { readonly path: PathLike; readonly data: WriteFileData }

const DEFAULT_CONCURRENCY = 256

let modeFirst: Promise<boolean> | null = null

/**
 * Whether fs.promises.writeFile checks `mode` before anything else: given a
 * bad mode and bad data, which does it reject? (Both are refused before
 * any file is touched.)
 */
function modeCheckedFirst(): Promise<boolean> {
  modeFirst ??= promises
    .writeFile(join(tmpdir(), 'uring-fs-never-written'), 42 as unknown as string, { mode: 'not a mode' })
    .then(
      () => false,
      (err: NodeJS.ErrnoException) => err.code === 'ERR_INVALID_ARG_VALUE' && err.message.includes("'mode'"),
    )
  return modeFirst
}

function asBuffer(view: ArrayBufferView): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength)
}

/**
 * Writes every entry's data as the whole content of its path. Resolves with
 * an array aligned with `entries`: for each file `undefined` once written,
 * or the Error fs.promises.writeFile would have given for it (code, errno,
 * syscall, and path when the open failed): one bad file never fails the
 * others. Arguments are checked, in fs's order, for every entry before any
 * file is touched: a bad one rejects the call and nothing is written.
 * Unlike writeFile, data must be whole: an (async) iterable of pieces is
 * refused with the ERR_INVALID_ARG_TYPE fs gives for other bad data.
 */
export async function writeFiles(
  entries: Iterable<WriteFilesEntry>,
  options?: WriteFilesOptions | BufferEncoding | null,
): Promise<Array<Error | undefined>> {
  if (entries == null || typeof (entries as Iterable<unknown>)[Symbol.iterator] !== 'function' || typeof entries === 'string') {
    throw invalidArgType('entries', 'Array', entries)
  }
  const opts = getOptions<WriteFilesOptions>(options)
  const flag = opts.flag || 'w'
  const flush = opts.flush ?? false
  validateBoolean(flush, 'options.flush')
  const encoding = (opts.encoding || 'utf8') as BufferEncoding
  const concurrency =
    opts.concurrency === undefined
      ? DEFAULT_CONCURRENCY
      : validateInteger(opts.concurrency, 'options.concurrency', 1, 2 ** 32 - 1)
  // Node 26's writeFile checks the mode first; earlier ones after the data,
  // the path and the flag. Asked of fs itself (once), so that the first
  // error is the running Node's.
  if (await modeCheckedFirst()) parseFileMode(opts.mode, 'mode', 0o666)
  const paths: Array<string | Buffer> = []
  const data: Buffer[] = []
  let i = 0
  for (const entry of entries as Iterable<unknown>) {
    let p: unknown
    let d: unknown
    if (Array.isArray(entry)) {
      p = entry[0]
      d = entry[1]
    } else if (entry !== null && typeof entry === 'object') {
      p = (entry as { path?: unknown }).path
      d = (entry as { data?: unknown }).data
    } else {
      throw invalidArgType(`entries[${i}]`, ['Array', 'Object'], entry)
    }
    // fs.promises.writeFile's order: the data, then the path.
    if (ArrayBuffer.isView(d)) data.push(asBuffer(d))
    else if (typeof d === 'string') data.push(Buffer.from(d, encoding))
    else throw invalidArgType('data', ['string', 'Buffer', 'TypedArray', 'DataView'], d)
    paths.push(toPath(p))
    i++
  }
  // Then, as fs's open does, the flag and the mode.
  const flags = stringToFlags(flag)
  const mode = parseFileMode(opts.mode, 'mode', 0o666)
  if (paths.length === 0) return []
  if (native === null) return writeFilesJs(paths, data, flags, mode, flush, concurrency)
  const raw = await native.writeFiles(
    paths.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)),
    data,
    flags,
    mode,
    flush,
    concurrency,
  )
  return raw.map((res, j) =>
    res === null ? undefined : systemError(res.errno, res.syscall, res.syscall === 'open' ? paths[j] : undefined),
  )
}
