// statFiles: many paths' metadata in one call. Each path is one statx in
// the engine, many share each submission to the kernel, and all results come
// back to JavaScript in one crossing: a Float64Array in the layout of Node's
// own stat array, turned here into fs.Stats objects.

import { Stats } from 'node:fs'
import { statFiles as nativeStatFiles } from '../binding'
import { invalidArgType, invalidArgValue, systemError } from './errors'
import { getOptions, toPath, validateBoolean, validateInteger } from './validate'

export interface StatFilesOptions {
  /** Most paths in flight at once (default 256). */
  concurrency?: number
  /** BigIntStats are not supported: `true` is refused. */
  bigint?: boolean
  /** Do not follow a final symbolic link (fs.lstat rather than fs.stat). */
  lstat?: boolean
}

const DEFAULT_CONCURRENCY = 256
/** Numbers per path in the native result (Node's stat array order). */
const FIELDS = 18

/** Node's msFromTimeSpec and dateFromMs (lib/internal/fs/utils.js). */
function ms(sec: number, nsec: number): number {
  return sec * 1e3 + nsec / 1e6
}

function date(msValue: number): Date {
  return new Date(Math.round(msValue))
}

/**
 * An fs.Stats as Node's Stats constructor builds it: the same own fields in
 * the same order, on fs.Stats.prototype (so isFile() and the rest work), without
 * calling the constructor itself, which Node deprecates (DEP0180).
 */
function toStats(a: Float64Array, o: number): Stats {
  const s = Object.create(Stats.prototype) as Stats
  s.dev = a[o]
  s.mode = a[o + 1]
  s.nlink = a[o + 2]
  s.uid = a[o + 3]
  s.gid = a[o + 4]
  s.rdev = a[o + 5]
  s.blksize = a[o + 6]
  s.ino = a[o + 7]
  s.size = a[o + 8]
  s.blocks = a[o + 9]
  s.atimeMs = ms(a[o + 10], a[o + 11])
  s.mtimeMs = ms(a[o + 12], a[o + 13])
  s.ctimeMs = ms(a[o + 14], a[o + 15])
  s.birthtimeMs = ms(a[o + 16], a[o + 17])
  s.atime = date(s.atimeMs)
  s.mtime = date(s.mtimeMs)
  s.ctime = date(s.ctimeMs)
  s.birthtime = date(s.birthtimeMs)
  return s
}

/**
 * Stats every path in `paths` (lstat with `lstat: true`). Resolves with an
 * array aligned with `paths`: for each path an fs.Stats, or the Error
 * fs.promises.stat (or lstat) would have rejected with (code, errno, syscall,
 * path): one bad path never fails the others.
 */
export async function statFiles(paths: Iterable<unknown>, options?: StatFilesOptions | null): Promise<Array<Stats | Error>> {
  if (paths == null || typeof (paths as Iterable<unknown>)[Symbol.iterator] !== 'function' || typeof paths === 'string') {
    throw invalidArgType('paths', 'Array', paths)
  }
  const opts = getOptions<StatFilesOptions>(options)
  if (opts.bigint) throw invalidArgValue('options.bigint', opts.bigint, 'is not supported by statFiles')
  const follow = opts.lstat === undefined ? true : !validateBoolean(opts.lstat, 'options.lstat')
  const concurrency =
    opts.concurrency === undefined ? DEFAULT_CONCURRENCY : validateInteger(opts.concurrency, 'options.concurrency', 1)
  const list = Array.from(paths, (p) => toPath(p))
  // More workers than a u32 counts would be idle anyway.
  const raw = await nativeStatFiles(
    list.map((p) => Buffer.from(p)),
    follow,
    Math.min(concurrency, 0xffffffff),
  )
  const n = list.length
  const syscall = follow ? 'stat' : 'lstat'
  const out = new Array<Stats | Error>(n)
  for (let i = 0; i < n; i++) {
    const errno = raw[n * FIELDS + i]
    out[i] = errno === 0 ? toStats(raw, i * FIELDS) : systemError(errno, syscall, list[i])
  }
  return out
}
