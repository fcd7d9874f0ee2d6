// readFiles: many whole files in one call. Each file is an open → fstat →
// read → close sequence in the engine, many files share each submission to
// the kernel, and all results come back to JavaScript in one crossing.

import { readFiles as nativeReadFiles } from '../binding'
import { invalidArgType, systemError } from './errors'
import { getOptions, stringToFlags, toPath, validateInteger } from './validate'

export interface ReadFilesOptions {
  /** Decode every file with this encoding (strings instead of Buffers). */
  encoding?: BufferEncoding | 'buffer' | null
  /** fs flag to open with, 'r' by default. */
  flag?: string | number
  /** Most files in flight at once (default 256). */
  concurrency?: number
}

const DEFAULT_CONCURRENCY = 256

/**
 * Reads every file in `paths`. Resolves with an array aligned with `paths`:
 * for each file its contents (a Buffer, or a string with `encoding`), or the
 * Error fs.promises.readFile would have given for it (code, errno, syscall,
 * path): one bad file never fails the others.
 */
export async function readFiles(
  paths: Iterable<unknown>,
  options?: ReadFilesOptions | BufferEncoding | 'buffer' | null,
): Promise<Array<Buffer | string | Error>> {
  if (paths == null || typeof (paths as Iterable<unknown>)[Symbol.iterator] !== 'function' || typeof paths === 'string') {
    throw invalidArgType('paths', 'Array', paths)
  }
  const opts = getOptions<ReadFilesOptions>(options)
  const flags = stringToFlags(opts.flag || 'r')
  const concurrency =
    opts.concurrency === undefined ? DEFAULT_CONCURRENCY : validateInteger(opts.concurrency, 'options.concurrency', 1)
  const list = Array.from(paths, (p) => toPath(p))
  const raw = await nativeReadFiles(
    list.map((p) => Buffer.from(p)),
    flags,
    concurrency,
  )
  // 'buffer' is fs's name for no decoding.
  const enc = opts.encoding === 'buffer' ? null : opts.encoding
  return raw.map((res, i) => {
    if (Buffer.isBuffer(res)) return enc ? res.toString(enc) : res
    return systemError(res.errno, res.syscall, res.syscall === 'open' ? list[i] : undefined)
  })
}
