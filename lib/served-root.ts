// The directory sendFile serves from, held open: every file is opened
// relative to it with the kernel confining the lookup (openat2
// RESOLVE_BENEATH), so no path, encoded dot or symlink reaches outside.
//
// A directory descriptor names the directory itself, not its path: after a
// deploy that swaps the tree (`mv new www`) a descriptor held forever would
// keep serving the old one. So a root is re-opened when its descriptor is
// more than a second old, and an old descriptor is closed only when the
// last open that uses it has finished (closing it earlier could let a new
// open reuse its number while an openat2 is still relative to it).

//
// On the JavaScript fallback there is no descriptor: files are opened by
// path, and the confinement checked after the open (lib/node-fs-backend.ts).

import { constants } from 'node:fs'
import { engine, native } from './native'

/** A root as sendFile opens files beneath it. */
export interface ServedDir {
  /** Its descriptor (-1 on the JavaScript fallback). */
  fd: number
  path: string
  /** 0, or the open's `-errno`. */
  errno: number
}

const MAX_AGE_MS = 1000

interface Entry {
  fd: Promise<number>
  /** The descriptor once the open has finished. */
  value?: number
  openedAt: number
  users: number
  retired: boolean
}

const roots = new Map<string, Entry>()

function release(e: Entry): void {
  e.users--
  if (e.retired && e.users === 0) {
    e.fd.then((fd) => { if (fd >= 0) void engine().close(fd) }, () => {})
  }
}

/**
 * Runs `use` with the directory `root` (an absolute path): its descriptor,
 * or the open's `-errno`.
 */
export function withRoot<T>(root: string, use: (dir: ServedDir) => Promise<T>): Promise<T> {
  if (native === null) return use({ fd: -1, path: root, errno: 0 })
  const now = Date.now()
  let e = roots.get(root)
  if (e && now - e.openedAt > MAX_AGE_MS) {
    roots.delete(root)
    e.retired = true
    if (e.users === 0) { e.users = 1; release(e) }
    e = undefined
  }
  if (!e) {
    const flags = constants.O_RDONLY | constants.O_DIRECTORY
    e = { fd: engine().open(Buffer.from(root), flags, 0), openedAt: now, users: 0, retired: false }
    roots.set(root, e)
  }
  const entry = e
  entry.users++
  const done = (): void => release(entry)
  if (entry.value !== undefined) {
    // The common case: no await before the work starts.
    let p: Promise<T>
    try {
      p = use({ fd: entry.value, path: root, errno: 0 })
    } catch (err) {
      done()
      throw err
    }
    p.then(done, done)
    return p
  }
  return entry.fd.then((fd) => {
    if (fd < 0) {
      // Not kept: the directory may appear later.
      if (roots.get(root) === entry) roots.delete(root)
      entry.retired = true
    } else {
      entry.value = fd
    }
    return use(fd < 0 ? { fd: -1, path: root, errno: fd } : { fd, path: root, errno: 0 })
  }).finally(done)
}
