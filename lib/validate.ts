// Argument validation with the rules (and errors) of Node's fs streams.

import { fileURLToPath } from 'node:url'
import { constants } from 'node:fs'
import { invalidArgType, invalidArgValue, outOfRange } from './errors'

export function validateInteger(value: unknown, name: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'number', value)
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value)
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value)
  return value
}

export function validateInt32(value: unknown, name: string, min = -2147483648, max = 2147483647): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'number', value)
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value)
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value)
  return value
}

export function validateBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'boolean', value)
  return value
}

/** fs's getOptions: a string is an encoding; anything else must be an object. */
export function getOptions<T extends object>(options: unknown): T & { encoding?: BufferEncoding | 'buffer' | null } {
  if (options == null || typeof options === 'function') return {} as T
  let out: Record<string, unknown>
  if (typeof options === 'string') out = { encoding: options }
  else if (typeof options !== 'object') throw invalidArgType('options', ['string', 'Object'], options)
  else out = { ...(options as Record<string, unknown>) }
  const enc = out.encoding
  if (enc && enc !== 'buffer' && !Buffer.isEncoding(enc as string)) {
    throw invalidArgValue('encoding', enc, 'is invalid encoding')
  }
  // fs's getOptions validates the signal itself (so null is rejected too).
  const signal = out.signal
  if (signal !== undefined && (signal === null || typeof signal !== 'object' || !('aborted' in signal))) {
    throw invalidArgType('options.signal', 'AbortSignal', signal)
  }
  return out as T
}

/** A path as fs takes it: string, Buffer/Uint8Array, or file: URL. */
export function toPath(path: unknown, name = 'path'): string | Buffer {
  if (path != null && typeof path === 'object' && 'href' in path && 'protocol' in path) {
    path = fileURLToPath(path as URL)
  }
  if (typeof path === 'string') {
    if (path.includes('\u0000')) throw invalidArgValue(name, path, 'must be a string, Uint8Array, or URL without null bytes')
    return path
  }
  if (path instanceof Uint8Array) {
    if (path.includes(0)) throw invalidArgValue(name, path, 'must be a string, Uint8Array, or URL without null bytes')
    return Buffer.isBuffer(path) ? path : Buffer.from(path.buffer, path.byteOffset, path.byteLength)
  }
  throw invalidArgType(name, ['string', 'Buffer', 'URL'], path)
}

const { O_APPEND, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_SYNC, O_TRUNC, O_WRONLY } = constants

/** fs's stringToFlags. */
export function stringToFlags(flags: unknown, name = 'flags'): number {
  // Coerced from -0 to +0 (as Node 24 does; Node 20 and 22 pass -0 on,
  // which opens the same way).
  if (typeof flags === 'number') return validateInt32(flags, name) + 0
  if (flags == null) return O_RDONLY
  switch (flags) {
    case 'r': return O_RDONLY
    case 'rs':
    case 'sr': return O_RDONLY | O_SYNC
    case 'r+': return O_RDWR
    case 'rs+':
    case 'sr+': return O_RDWR | O_SYNC
    case 'w': return O_TRUNC | O_CREAT | O_WRONLY
    case 'wx':
    case 'xw': return O_TRUNC | O_CREAT | O_WRONLY | O_EXCL
    case 'w+': return O_TRUNC | O_CREAT | O_RDWR
    case 'wx+':
    case 'xw+': return O_TRUNC | O_CREAT | O_RDWR | O_EXCL
    case 'a': return O_APPEND | O_CREAT | O_WRONLY
    case 'ax':
    case 'xa': return O_APPEND | O_CREAT | O_WRONLY | O_EXCL
    case 'as':
    case 'sa': return O_APPEND | O_CREAT | O_WRONLY | O_SYNC
    case 'a+': return O_APPEND | O_CREAT | O_RDWR
    case 'ax+':
    case 'xa+': return O_APPEND | O_CREAT | O_RDWR | O_EXCL
    case 'as+':
    case 'sa+': return O_APPEND | O_CREAT | O_RDWR | O_SYNC
  }
  throw invalidArgValue('flags', flags)
}

const octalReg = /^[0-7]+$/

/** fs's parseFileMode. */
export function parseFileMode(value: unknown, name: string, def?: number): number {
  value ??= def
  if (typeof value === 'string') {
    if (!octalReg.test(value)) throw invalidArgValue(name, value, 'must be a 32-bit unsigned integer or an octal string')
    value = parseInt(value, 8)
  }
  if (typeof value !== 'number') throw invalidArgType(name, 'number', value)
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value)
  if (value < 0 || value > 4294967295) throw outOfRange(name, '>= 0 && <= 4294967295', value)
  return value
}

/** What streams use of a fs/promises FileHandle. */
export interface FileHandleLike {
  fd: number
  close(): Promise<void>
  on(event: 'close', listener: () => void): unknown
}

/** A FileHandle (fs.promises.open's result), recognised by its shape. */
export function asFileHandle(v: unknown): FileHandleLike | null {
  if (v === null || typeof v !== 'object') return null
  const h = v as Partial<FileHandleLike>
  return typeof h.fd === 'number' && typeof h.close === 'function' && typeof h.on === 'function' ? (h as FileHandleLike) : null
}

/** Where a stream's file comes from: fs's path/fd/FileHandle rules. */
export interface StreamTarget {
  fd: number | null
  handle: FileHandleLike | null
  path: string | Buffer | undefined
  flags: string | number | undefined
  mode: number | string | undefined
}

/**
 * fs streams' choice between `options.fd` (a number or a FileHandle, whose
 * descriptor is used and which is closed instead of the bare fd) and a
 * path opened with `flags` (default `defaultFlags`) and `mode`.
 */
export function streamTarget(
  path: unknown,
  opts: { fd?: unknown; flags?: string | number; mode?: number | string },
  defaultFlags: string,
): StreamTarget {
  if (opts.fd == null) {
    return {
      fd: null,
      handle: null,
      path: toPath(path),
      flags: opts.flags === undefined ? defaultFlags : opts.flags,
      mode: opts.mode === undefined ? 0o666 : opts.mode,
    }
  }
  const handle = asFileHandle(opts.fd)
  let fd = handle !== null ? handle.fd : opts.fd
  if (handle === null && typeof fd !== 'number') throw invalidArgType('options.fd', ['number', 'FileHandle'], opts.fd)
  // fs's getValidatedFd takes -0 as 0.
  fd = Object.is(fd, -0) ? 0 : validateInt32(fd, 'fd', 0)
  return { fd: fd as number, handle, path: undefined, flags: undefined, mode: undefined }
}
