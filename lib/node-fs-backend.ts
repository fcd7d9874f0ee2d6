// The JavaScript fallback of the engine's batch operations: what readFiles,
// statFiles, writeFiles and sendFile ask of the native binding, done with
// node:fs where no binary loads (backend 'node'). Same results, same errors
// (fs's own), no zero-copy and no batching: a pool of `concurrency` calls
// in flight.

import * as fs from 'node:fs'
import { sep } from 'node:path'
import { getSystemErrorMap } from 'node:util'
import type { ServedFile } from '../binding'

/** Runs `fn` over `items`, at most `limit` at a time, results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** Each file whole (or fs.promises.readFile's Error for it). */
export function readFilesJs(list: ReadonlyArray<string | Buffer>, flags: number, concurrency: number): Promise<Array<Buffer | Error>> {
  return mapLimit(list, concurrency, (p) => fs.promises.readFile(p, { flag: flags }).catch((err: Error) => err))
}

/** fs.Stats of each path (or fs's Error), following a final symlink when `follow`. */
export function statFilesJs(list: ReadonlyArray<string | Buffer>, follow: boolean, concurrency: number): Promise<Array<fs.Stats | Error>> {
  const stat = follow ? fs.promises.stat : fs.promises.lstat
  return mapLimit(list, concurrency, (p) => stat(p).catch((err: Error) => err))
}

/** Writes each file whole (undefined, or fs's Error for it). */
export function writeFilesJs(
  paths: ReadonlyArray<string | Buffer>,
  data: readonly Buffer[],
  flags: number,
  mode: number,
  flush: boolean,
  concurrency: number,
): Promise<Array<Error | undefined>> {
  return mapLimit(paths, concurrency, (p, i) =>
    fs.promises.writeFile(p, data[i], { flag: flags, mode, flush }).then(
      () => undefined,
      (err: Error) => err,
    ),
  )
}

const open = (p: string, flags: number): Promise<number> =>
  new Promise((resolve, reject) => fs.open(p, flags, (err, fd) => (err ? reject(err) : resolve(fd))))
const fstat = (fd: number): Promise<fs.BigIntStats> =>
  new Promise((resolve, reject) => fs.fstat(fd, { bigint: true }, (err, st) => (err ? reject(err) : resolve(st))))

/** What openServed gives for a failure: fs's errno (EIO when it has none). */
function failed(errno: unknown, syscall: string): ServedFile {
  return { fd: -1, errno: typeof errno === 'number' ? errno : -5, syscall, size: 0, mode: 0, mtimeSec: 0, mtimeNsec: 0, ino: 0 }
}

function errnoOf(err: unknown): unknown {
  return (err as NodeJS.ErrnoException | null)?.errno
}

/** libuv's errno for ENOENT on this platform (what a path out of the root is). */
const ENOENT = [...getSystemErrorMap()].find(([, [name]]) => name === 'ENOENT')?.[0] ?? -2

/**
 * Opens `rel` beneath `root` and says what it is, as the native openServed
 * does, confined to `root` without openat2: the opened file must be the
 * one its real path names (same device and inode) and that real path must
 * lie beneath the root's real path. A path that leads out (a symlink) is
 * ENOENT, as the kernel's RESOLVE_BENEATH makes it natively. Anything but a
 * regular file comes back closed (fd -1) with its mode.
 */
/** The path the open descriptor `fd` names (Linux's /proc), or null. */
async function openedPath(fd: number): Promise<string | null> {
  if (process.platform !== 'linux') return null
  try {
    const p = await fs.promises.readlink(`/proc/self/fd/${fd}`)
    // An unlinked file: still the file that was opened where it was.
    return p.endsWith(' (deleted)') ? p.slice(0, -' (deleted)'.length) : p
  } catch {
    return null
  }
}

export async function openServedJs(root: string, rel: string): Promise<ServedFile> {
  const full = rel === '.' ? root : root.endsWith(sep) ? root + rel : root + sep + rel
  let fd = -1
  try {
    let st: fs.BigIntStats
    try {
      // Non-blocking: a FIFO would wait for a writer (and hold one of fs's
      // four thread-pool threads) before it could be looked at.
      fd = await open(full, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0))
      st = await fstat(fd)
    } catch (err) {
      // Windows cannot open a directory: its stat says what it is.
      if ((err as NodeJS.ErrnoException).code !== 'EISDIR') return failed(errnoOf(err), 'open')
      st = await fs.promises.stat(full, { bigint: true })
    }
    const realRoot = await fs.promises.realpath(root)
    const inside = (p: string): boolean => p === realRoot || p.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)
    let beneath: boolean
    const opened = fd >= 0 ? await openedPath(fd) : null
    if (opened !== null) {
      // Where the descriptor really is (Linux): no rename or symlink flip
      // between the open and this check can make it look inside.
      beneath = inside(opened)
    } else {
      // Elsewhere: the path resolved now, and the same inode there. A
      // symlink flipped twice between those steps is what this cannot see.
      const real = await fs.promises.realpath(full)
      const there = await fs.promises.lstat(real, { bigint: true })
      beneath = inside(real) && there.ino === st.ino && there.dev === st.dev
    }
    if (!beneath) {
      if (fd >= 0) fs.closeSync(fd)
      fd = -1
      return failed(ENOENT, 'open')
    }
    // Only regular files are served: a directory (a redirect or its index)
    // or anything else (a 404) comes back closed.
    const kind = Number(st.mode) & fs.constants.S_IFMT
    if (kind !== fs.constants.S_IFREG && fd >= 0) {
      fs.closeSync(fd)
      fd = -1
    }
    return {
      fd,
      errno: 0,
      syscall: '',
      size: Number(st.size),
      mode: Number(st.mode),
      mtimeSec: Number(st.mtimeNs / 1_000_000_000n),
      mtimeNsec: Number(st.mtimeNs % 1_000_000_000n),
      ino: Number(st.ino),
    }
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd)
    return failed(errnoOf(err), 'open')
  }
}
