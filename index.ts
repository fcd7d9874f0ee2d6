// uring-fs: io_uring-backed file streams for Node.js.
//
// The public API. Byte-level work lives in the native engine (crates/core via
// the binding); this module only wires the pieces together.

import type { Stats as FsStats } from 'node:fs'
import { statFiles } from './lib/stat-files'
import type { StatFilesOptions } from './lib/stat-files'
import { backend as nativeBackend, fallbackReason as nativeFallbackReason, stats as nativeStats } from './binding'

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
export type { ReadFileOptions, WriteFileOptions } from './lib/files'

export type Backend = 'io_uring' | 'fallback'

/** Which backend is live: 'io_uring', or 'fallback' (worker threads). */
export function backend(): Backend {
  return nativeBackend() as Backend
}

/** Why the fallback is in use, or null when io_uring is. */
export function fallbackReason(): string | null {
  return nativeFallbackReason() ?? null
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

/**
 * Engine counters since the process started (use differences); or, given
 * paths, their metadata: `stats(paths, options)` is `statFiles`.
 */
export function stats(): Stats
export function stats(paths: Iterable<unknown>, options?: StatFilesOptions | null): Promise<Array<FsStats | Error>>
export function stats(paths?: Iterable<unknown>, options?: StatFilesOptions | null): Stats | Promise<Array<FsStats | Error>> {
  if (paths === undefined) return nativeStats()
  return statFiles(paths, options)
}
