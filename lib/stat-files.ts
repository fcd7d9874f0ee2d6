// statFiles: many paths' metadata in one call. Each path is one statx in
// the engine, many share each submission to the kernel, and all results come
// back to JavaScript in one crossing: a Float64Array in the layout of Node's
// own stat array (StatSlot, declared by the binding: crates/node/src/layouts.rs),
// turned here into fs.Stats objects.

import { Stats, statSync } from 'node:fs'
import type { PathLike } from './files'
import { StatSlot } from '../binding'
import { native } from './native'
import { statFilesJs } from './node-fs-backend'
import { invalidArgType, invalidArgValue, systemError } from './errors'
import { getOptions, toPath, validateBoolean, validateInteger } from './validate'

export interface StatFilesOptions {
  /** Most paths in flight at once (default 256). */
  concurrency?: number
  /** BigIntStats are not supported: `true` is refused. */
  bigint?: false
  /** Do not follow a final symbolic link (fs.lstat rather than fs.stat). */
  lstat?: boolean
}

const DEFAULT_CONCURRENCY = 256

/** This Node's fs.Stats has its Dates as getters on the prototype. */
const LAZY_DATES = Object.getOwnPropertyDescriptor(Stats.prototype, 'atime') !== undefined

/**
 * The symbol-keyed fields this Node's Stats carry, in order, each with the
 * stat-array slot it holds: Node 26 keeps each time's nanoseconds within
 * its second (partialAtimeNs...) for `atimeInstant` and the like. Found by
 * their names on a Stats fs makes for this file.
 */
const PARTIAL_NS: ReadonlyArray<readonly [symbol, number]> = (() => {
  const slots: Record<string, number> = {
    partialAtimeNs: StatSlot.AtimeNsec,
    partialMtimeNs: StatSlot.MtimeNsec,
    partialCtimeNs: StatSlot.CtimeNsec,
    kPartialBirthtimeNs: StatSlot.BirthtimeNsec,
    partialBirthtimeNs: StatSlot.BirthtimeNsec,
  }
  try {
    return Object.getOwnPropertySymbols(statSync(__filename))
      .filter((sym) => sym.description !== undefined && sym.description in slots)
      .map((sym) => [sym, slots[sym.description as string]] as const)
  } catch {
    return []
  }
})()

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
  s.dev = a[o + StatSlot.Dev]
  s.mode = a[o + StatSlot.Mode]
  s.nlink = a[o + StatSlot.Nlink]
  s.uid = a[o + StatSlot.Uid]
  s.gid = a[o + StatSlot.Gid]
  s.rdev = a[o + StatSlot.Rdev]
  s.blksize = a[o + StatSlot.Blksize]
  s.ino = a[o + StatSlot.Ino]
  s.size = a[o + StatSlot.Size]
  s.blocks = a[o + StatSlot.Blocks]
  s.atimeMs = ms(a[o + StatSlot.AtimeSec], a[o + StatSlot.AtimeNsec])
  s.mtimeMs = ms(a[o + StatSlot.MtimeSec], a[o + StatSlot.MtimeNsec])
  s.ctimeMs = ms(a[o + StatSlot.CtimeSec], a[o + StatSlot.CtimeNsec])
  s.birthtimeMs = ms(a[o + StatSlot.BirthtimeSec], a[o + StatSlot.BirthtimeNsec])
  // Node 22 and later compute the Dates lazily, from the *Ms fields, with
  // getters on Stats.prototype; before, they were own fields.
  if (!LAZY_DATES) {
    s.atime = date(s.atimeMs)
    s.mtime = date(s.mtimeMs)
    s.ctime = date(s.ctimeMs)
    s.birthtime = date(s.birthtimeMs)
  }
  for (const [sym, slot] of PARTIAL_NS) (s as unknown as Record<symbol, number>)[sym] = a[o + slot]
  return s
}

/**
 * Stats every path in `paths` (lstat with `lstat: true`). Resolves with an
 * array aligned with `paths`: for each path an fs.Stats, or the Error
 * fs.promises.stat (or lstat) would have rejected with (code, errno, syscall,
 * path): one bad path never fails the others.
 */
export async function statFiles(paths: Iterable<PathLike>, options?: StatFilesOptions | null): Promise<Array<Stats | Error>> {
  if (paths == null || typeof (paths as Iterable<unknown>)[Symbol.iterator] !== 'function' || typeof paths === 'string') {
    throw invalidArgType('paths', 'Array', paths)
  }
  const opts = getOptions<StatFilesOptions>(options)
  if (opts.bigint) throw invalidArgValue('options.bigint', opts.bigint, 'is not supported by statFiles')
  const follow = opts.lstat === undefined ? true : !validateBoolean(opts.lstat, 'options.lstat')
  const concurrency =
    opts.concurrency === undefined ? DEFAULT_CONCURRENCY : validateInteger(opts.concurrency, 'options.concurrency', 1)
  const list = Array.from(paths, (p) => toPath(p))
  if (native === null) return statFilesJs(list, follow, concurrency)
  // More workers than a u32 counts would be idle anyway.
  const raw = await native.statFiles(
    list.map((p) => Buffer.from(p)),
    follow,
    Math.min(concurrency, 0xffffffff),
  )
  const n = list.length
  const syscall = follow ? 'stat' : 'lstat'
  const out = new Array<Stats | Error>(n)
  for (let i = 0; i < n; i++) {
    const errno = raw[n * StatSlot.Count + i]
    out[i] = errno === 0 ? toStats(raw, i * StatSlot.Count) : systemError(errno, syscall, list[i])
  }
  return out
}
