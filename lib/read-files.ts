// readFiles: many whole files in one call. The engine reads them on every
// core (small files as linked open -> read -> close chains, many per
// submission to the kernel) and hands all results back in one crossing:
// small files packed into shared blocks, which become one Buffer (a view)
// per file here.

import type { FileError } from '../binding'
import { FileSlot } from '../binding'
import type { PathLike } from './files'
import { promises } from 'node:fs'
import { native } from './native'
import { readFilesJs } from './node-fs-backend'
import { invalidArgType } from './errors'
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
export function readFiles(
  paths: Iterable<PathLike>,
  options?: (ReadFilesOptions & { encoding?: 'buffer' | null }) | 'buffer' | null,
): Promise<Array<Buffer | Error>>
export function readFiles(paths: Iterable<PathLike>, options: (ReadFilesOptions & { encoding: BufferEncoding }) | BufferEncoding): Promise<Array<string | Error>>
export function readFiles(paths: Iterable<PathLike>, options?: ReadFilesOptions | BufferEncoding | 'buffer' | null): Promise<Array<Buffer | string | Error>>
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
  const raw = await readBatch(list, flags, concurrency)
  // 'buffer' is fs's name for no decoding.
  const enc = opts.encoding === 'buffer' ? null : opts.encoding
  return Promise.all(
    raw.map(async (res, i) => {
      // A file the engine could not read: fs.promises.readFile's outcome,
      // so that the error is the running Node's exactly (they differ).
      const out = Buffer.isBuffer(res) || res instanceof Error ? res : await fsOutcome(list[i], flags)
      return Buffer.isBuffer(out) && enc ? out.toString(enc) : out
    }),
  )
}

/**
 * What fs.promises.readFile gives for `path`: its contents, or its Error.
 * For the few files the engine failed on: asking fs again makes the error
 * the running Node's own (Node 26 names the path in a read's error; 24 did
 * not), and a file that became readable meanwhile is read.
 */
export function fsOutcome(path: string | Buffer, flags: number): Promise<Buffer | Error> {
  return promises.readFile(path, { flag: flags }).catch((err: Error) => err)
}

/**
 * One native call for `list` (validated paths): per path, its contents or
 * the `{ errno, syscall }` it failed with (on the JavaScript fallback, fs's
 * Error itself).
 *
 * Small files arrive packed into shared blocks of 64 KiB, and each becomes a
 * view of its block, as Node's own Buffer pool does for small allocations
 * (at 8 KiB): keeping one such Buffer keeps its block. Larger files have a
 * block of their own.
 */
export async function readBatch(
  list: ReadonlyArray<string | Buffer>,
  flags: number,
  concurrency: number,
): Promise<Array<Buffer | FileError | Error>> {
  if (native === null) return readFilesJs(list, flags, concurrency)
  const { blocks, layout, others } = await native.readFiles(joinPaths(list), list.length, flags, concurrency)
  const out = new Array<Buffer | FileError>(list.length)
  let next = 0
  for (let i = 0, j = 0; i < list.length; i++, j += FileSlot.Count) {
    const block = layout[j + FileSlot.Block]!
    out[i] =
      block < 0
        ? others[next++]!
        : Buffer.from(
            blocks[block]!.buffer,
            blocks[block]!.byteOffset + layout[j + FileSlot.Offset]!,
            layout[j + FileSlot.Length]!,
          )
  }
  return out
}

/** The paths NUL-terminated one after the other, as the binding takes them. */
function joinPaths(list: ReadonlyArray<string | Buffer>): Buffer {
  if (list.length === 0) return Buffer.alloc(0)
  if (list.every((p) => typeof p === 'string')) return Buffer.from(list.join('\0') + '\0')
  const nul = Buffer.alloc(1)
  return Buffer.concat(list.flatMap((p) => [typeof p === 'string' ? Buffer.from(p) : p, nul]))
}
