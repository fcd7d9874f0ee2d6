// sendFile's open-file cache, the JavaScript half: per root, the files
// already served (their stat, and their bytes when small, else a
// descriptor the native side keeps), bounded in entries, bytes and
// descriptors. The native half (crates/core/src/http/open_file_cache.rs)
// keeps every entry exact: inotify watches taken before the path was
// walked drop an entry within the system call that changes its file or a
// directory on its path, and `changes()` reads that queue before each
// cached answer (one system call). What inotify cannot see is caught by
// reopening an entry's path when its last check is older than
// REVALIDATE_MS.
//
// One native cache per thread (each Worker has its own), created on first
// use; where it cannot be (no inotify, no native binary) every file is
// served uncached.

import type { OpenFileCache as NativeCache, SharedFile } from '../binding'
import { CachedSlot } from '../binding'
import { constants } from 'node:os'
import { native } from './native'

const ENOENT = constants.errno.ENOENT

/** sendFile's `cache` option as an object: the bounds of one root's cache. */
export interface CacheOptions {
  /** Files kept, at most. Default 1024. */
  entries?: number
  /** Bytes of small files kept in memory, at most. Default 64 MiB. */
  bytes?: number
  /** Descriptors kept open (files too large to keep in memory), at most. Default 128. */
  descriptors?: number
}

export interface CacheLimits {
  entries: number
  bytes: number
  descriptors: number
}

/** Files up to this size are kept in memory; larger ones as a descriptor. */
export const BODY_LIMIT = 64 * 1024
/** How often a small file kept as a descriptor is taken again, to keep its bytes. */
const RETRY_BODY_MS = 250
/** An entry not checked by reopening its path for this long is, before use. */
export const REVALIDATE_MS = 1000

export const DEFAULT_LIMITS: CacheLimits = Object.freeze({ entries: 1024, bytes: 64 * 1024 * 1024, descriptors: 128 })

/**
 * A cached file, shaped as an opened ServedFile (fd -1: the descriptor, if
 * any, stays the cache's; `cached` says so).
 */
export class CachedFile {
  readonly fd = -1
  /** 0, or -ENOENT for a path cached as missing (then `syscall` is 'open'). */
  readonly errno: number
  readonly syscall: string
  /** Set on use, cleared by the eviction's sweep (second chance). */
  used = true
  /** Request paths (as sent, undecoded) known to name this file: see `byUrl`. */
  urls: string[] = []
  /** Its response headers' values, made on first use. */
  etag = ''
  lastModified = ''
  contentType = ''
  constructor(
    readonly root: RootFiles,
    readonly rel: string,
    readonly relPath: Buffer,
    readonly id: number,
    /** The descriptor the cache keeps, or -1 (then `body`). Never close it. */
    readonly keptFd: number,
    readonly body: Buffer | null,
    readonly size: number,
    readonly mode: number,
    readonly mtimeSec: number,
    readonly mtimeNsec: number,
    readonly ino: number,
    public checkedAt: number,
    missing: boolean,
  ) {
    this.errno = missing ? -ENOENT : 0
    this.syscall = missing ? 'open' : ''
  }

  get cached(): CachedFile {
    return this
  }
}

export class RootFiles {
  readonly files = new Map<string, CachedFile>()
  /** Entries for missing paths, at most a quarter of the entries. */
  missing = 0
  /**
   * Request paths, as sent, that a plain request (no dotfile part, no
   * index, no extension tried) served this file for: the fast path's key,
   * which skips decoding and normalising. Only files kept in memory.
   */
  readonly byUrl = new Map<string, CachedFile>()
  bytes = 0
  fds = 0
  constructor(public limits: CacheLimits) {}
}

let nativeCache: NativeCache | null | undefined
/** The kernel signals changes to this thread: `openFileChanges()` moves. */
let signalled = false
/** openFileChanges() when the queue was last read. */
let seenChanges = -1
const byId = new Map<number, CachedFile>()
const roots = new Map<string, RootFiles>()
const dropped = new Float64Array(256)
const slots = new Float64Array(CachedSlot.Count)

function cache(): NativeCache | null {
  if (nativeCache === undefined) {
    try {
      nativeCache = native !== null ? new native.OpenFileCache() : null
      signalled = nativeCache !== null && nativeCache.signalled
    } catch {
      nativeCache = null
    }
  }
  return nativeCache
}

function unlink(e: CachedFile): void {
  if (byId.get(e.id) !== e) return
  byId.delete(e.id)
  const r = e.root
  if (r.files.get(e.rel) === e) r.files.delete(e.rel)
  for (const u of e.urls) if (r.byUrl.get(u) === e) r.byUrl.delete(u)
  if (e.body !== null) r.bytes -= e.body.length
  if (e.keptFd >= 0) r.fds--
  if (e.errno !== 0) r.missing--
}

/**
 * Applies the changes queued since the last call: their entries go. When
 * changes are signalled and none came, that is one atomic load.
 */
function applyChanges(c: NativeCache): void {
  if (signalled) {
    const n = (native as NonNullable<typeof native>).openFileChanges()
    if (n === seenChanges) return
    seenChanges = n
  }
  for (;;) {
    const n = c.changed(dropped)
    const k = Math.min(n, dropped.length)
    for (let i = 0; i < k; i++) {
      const e = byId.get(dropped[i])
      if (e !== undefined) unlink(e)
    }
    if (n <= dropped.length) return
  }
}

function forget(c: NativeCache, e: CachedFile): void {
  unlink(e)
  c.forget(e.id)
}

/** Evicts until `r` has room for one more entry of `bytes` and `fds`. */
function makeRoom(c: NativeCache, r: RootFiles, bytes: number, fds: number): boolean {
  const { entries, bytes: maxBytes, descriptors } = r.limits
  if (bytes > maxBytes || fds > descriptors || entries < 1) return false
  // The sweep (CLOCK): an entry used since the last pass gets a second
  // chance at the back; at most two passes.
  let budget = 2 * r.files.size + 1
  while ((r.files.size + 1 > entries || r.bytes + bytes > maxBytes || r.fds + fds > descriptors) && budget-- > 0) {
    const first = r.files.values().next()
    if (first.done) break
    const e = first.value
    if (e.used) {
      e.used = false
      r.files.delete(e.rel)
      r.files.set(e.rel, e)
    } else {
      forget(c, e)
    }
  }
  return r.files.size + 1 <= entries && r.bytes + bytes <= maxBytes && r.fds + fds <= descriptors
}

function rootFiles(root: string, limits: CacheLimits): RootFiles {
  let r = roots.get(root)
  if (r === undefined) {
    r = new RootFiles(limits)
    roots.set(root, r)
  } else if (r.limits !== limits) {
    r.limits = limits
  }
  return r
}

/**
 * The file `rel` beneath `root` (open as `dirFd`) from the cache, or
 * opened into it now; null when it cannot be cached (serve it the usual
 * way: that also gives the usual errors).
 */
export function cachedOpen(root: string, dirFd: number, rel: string, limits: CacheLimits): CachedFile | null {
  const c = cache()
  if (c === null) return null
  applyChanges(c)
  const r = rootFiles(root, limits)
  const hit = r.files.get(rel)
  const now = Date.now()
  if (hit !== undefined && hit.body === null && hit.errno === 0 && hit.size <= BODY_LIMIT && now - hit.checkedAt >= RETRY_BODY_MS) {
    // A small file kept as a descriptor because its pages were not all in
    // the page cache when it was taken: serving it has read them since, so
    // take it again, bytes and all (at most this often).
    forget(c, hit)
  } else if (hit !== undefined) {
    if (now - hit.checkedAt <= REVALIDATE_MS) {
      hit.used = true
      return hit
    }
    const valid = c.revalidate(hit.id, dirFd, hit.relPath)
    // The signal may have been taken over (then every entry went).
    if (signalled && !c.signalled) {
      signalled = false
      applyChanges(c)
    }
    if (valid) {
      hit.checkedAt = now
      hit.used = true
      return hit
    }
    unlink(hit)
  }
  const relPath = Buffer.from(rel)
  // Missing paths (a 404, a precompressed variant or an extension that is
  // not there) are kept too, but never more than a quarter of the entries:
  // a scan of random names must not push the files out.
  const missingOk = r.missing < r.limits.entries >> 2
  const body = c.open(dirFd, relPath, BODY_LIMIT, missingOk, slots)
  const id = slots[CachedSlot.Id]
  if (id < 0) return null
  const keptFd = slots[CachedSlot.Fd]
  const missing = slots[CachedSlot.Missing] === 1
  const e = new CachedFile(
    r, rel, relPath, id, keptFd, body,
    slots[CachedSlot.Size], slots[CachedSlot.Mode], slots[CachedSlot.MtimeSec], slots[CachedSlot.MtimeNsec], slots[CachedSlot.Ino],
    now, missing,
  )
  if (!makeRoom(c, r, body !== null ? body.length : 0, keptFd >= 0 ? 1 : 0)) {
    c.forget(id)
    return null
  }
  r.files.set(rel, e)
  byId.set(id, e)
  if (body !== null) r.bytes += body.length
  if (keptFd >= 0) r.fds++
  if (missing) r.missing++
  return e
}

/** At most this many request paths per file (percent-encoded spellings). */
const URLS_PER_FILE = 4

/** Notes that the request path `url` (as sent) served the cached file `e`. */
export function rememberUrl(e: CachedFile, url: string): void {
  if (byId.get(e.id) !== e || e.body === null || e.urls.length >= URLS_PER_FILE || e.root.byUrl.has(url)) return
  e.urls.push(url)
  e.root.byUrl.set(url, e)
}

/**
 * The cached file a plain request for `url` beneath `root` gets, when
 * it is known and still exact (no change queued, checked within
 * REVALIDATE_MS); else null (the usual path decides, and revalidates).
 */
export function urlHit(root: string, url: string): CachedFile | null {
  const r = roots.get(root)
  if (r === undefined) return null
  const e = r.byUrl.get(url)
  if (e === undefined) return null
  // nativeCache is set: the entry came from it.
  applyChanges(nativeCache as NativeCache)
  if (byId.get(e.id) !== e || Date.now() - e.checkedAt > REVALIDATE_MS) return null
  e.used = true
  return e
}

/**
 * A share of the descriptor a cached file is kept open with, or null: the
 * caller uses `share.fd` and calls `share.release()` when done (the
 * descriptor stays open until then, whatever happens to the entry). Every
 * response of one file shares that one descriptor, however long each takes.
 */
export function shareCached(e: CachedFile): SharedFile | null {
  const c = cache()
  return c === null || e.keptFd < 0 ? null : c.share(e.id)
}

/** Every entry of every root dropped (tests; a deploy that wants a clean start). */
export function clearCache(): void {
  const c = cache()
  if (c === null) return
  for (const e of [...byId.values()]) forget(c, e)
  roots.clear()
}

/** What the cache holds on this thread: entries, bytes in memory, descriptors kept. */
export function cacheStats(): { entries: number; bytes: number; descriptors: number } {
  let bytes = 0
  let descriptors = 0
  for (const r of roots.values()) {
    bytes += r.bytes
    descriptors += r.fds
  }
  return { entries: byId.size, bytes, descriptors }
}

/** sendFile's `cache` option: false (none), true or absent (defaults), or bounds. */
export function cacheOption(v: unknown): CacheLimits | null {
  if (v === undefined || v === true) return DEFAULT_LIMITS
  if (v === false || v === null) return null
  if (typeof v !== 'object') throw new TypeError('cache option must be a boolean or an object with entries, bytes and descriptors')
  const o = v as CacheOptions
  const num = (x: unknown, name: string, def: number): number => {
    if (x === undefined) return def
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) throw new TypeError(`cache.${name} must be a non-negative integer`)
    return x
  }
  return {
    entries: num(o.entries, 'entries', DEFAULT_LIMITS.entries),
    bytes: num(o.bytes, 'bytes', DEFAULT_LIMITS.bytes),
    descriptors: num(o.descriptors, 'descriptors', DEFAULT_LIMITS.descriptors),
  }
}
