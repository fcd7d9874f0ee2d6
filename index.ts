// uring-fs: io_uring-backed file streams for Node.js.
//
// The public API. Byte-level work lives in the native engine (crates/core via
// the binding); this module only wires the pieces together.

import type { Stats as FsStats } from 'node:fs'
import { statFiles } from './lib/stat-files'
import type { StatFilesOptions } from './lib/stat-files'
import type { PathLike } from './lib/files'
import { native, noNativeReason } from './lib/native'

export { ReadStream, createReadStream } from './lib/read-stream'
export type { ReadStreamOptions } from './lib/read-stream'
export { WriteStream, createWriteStream } from './lib/write-stream'
export type { WriteStreamOptions } from './lib/write-stream'
export { readFile, writeFile } from './lib/files'
export { readFiles } from './lib/read-files'
export type { ReadFilesOptions } from './lib/read-files'
export { readFilesEach } from './lib/read-files-each'
export type { ReadFilesEachOptions, ReadFilesEachEntry } from './lib/read-files-each'
export { statFiles } from './lib/stat-files'
export type { StatFilesOptions } from './lib/stat-files'
export { writeFiles } from './lib/write-files'
export type { WriteFilesOptions, WriteFilesEntry, WriteFileData } from './lib/write-files'
export { sendFile } from './lib/send-file'
export type { SendFileOptions, SendFileResult } from './lib/send-file'
export { clearCache as clearSendFileCache, cacheStats as sendFileCacheStats } from './lib/open-file-cache'
export type { CacheOptions as SendFileCacheOptions } from './lib/open-file-cache'
export type { PathLike, ReadFileOptions, WriteFileOptions } from './lib/files'

/**
 * 'io_uring'; 'fallback', the native engine on worker threads (io_uring
 * blocked or missing, or not Linux); 'node', no native binary: node:fs.
 */
export type Backend = 'io_uring' | 'fallback' | 'node'

/** Which backend is live. */
export function backend(): Backend {
  return native === null ? 'node' : (native.backend() as Backend)
}

/** Why the live backend is not io_uring, or null when it is. */
export function fallbackReason(): string | null {
  return native === null ? noNativeReason() : (native.fallbackReason() ?? null)
}

export interface Stats {
  /** Operations submitted: SQEs on io_uring, jobs on the fallback. */
  ops: number
  /** io_uring_enter calls made to submit them (0 on the fallback). */
  enters: number
  completions: number
  bytesRead: number
  bytesWritten: number
  /** Times the ring's driver task woke up. */
  wakeups: number
}

let warnedStatsPaths = false

/** The engine's counters since the process started (use differences). */
export function stats(): Stats
/**
 * @deprecated Use `statFiles(paths, options)`: `stats` is the engine's
 * counters. Given paths, it still calls `statFiles`, with a one-time
 * DeprecationWarning (code `URING_FS_DEP_STATS_PATHS`).
 */
export function stats(paths: Iterable<PathLike>, options?: StatFilesOptions | null): Promise<Array<FsStats | Error>>
export function stats(paths?: Iterable<PathLike>, options?: StatFilesOptions | null): Stats | Promise<Array<FsStats | Error>> {
  if (paths !== undefined) {
    if (!warnedStatsPaths) {
      warnedStatsPaths = true
      process.emitWarning('stats(paths) is deprecated: use statFiles(paths); stats() is the engine\'s counters', {
        type: 'DeprecationWarning',
        code: 'URING_FS_DEP_STATS_PATHS',
      })
    }
    return statFiles(paths, options)
  }
  if (native === null) return { ops: 0, enters: 0, completions: 0, bytesRead: 0, bytesWritten: 0, wakeups: 0 }
  return native.stats()
}
