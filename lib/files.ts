// readFile / writeFile: the fs/promises helpers, each one native call (open,
// size from statx, read or batch write, close on the engine's runtime) and
// one crossing back.

import { readFile as nativeReadFile, writeFile as nativeWriteFile } from '../binding'
import { invalidArgType, systemError } from './errors'
import { getOptions, stringToFlags, parseFileMode, toPath, validateBoolean } from './validate'

export interface ReadFileOptions {
  encoding?: BufferEncoding | null
  flag?: string | number
  signal?: AbortSignal
}

export interface WriteFileOptions {
  encoding?: BufferEncoding | null
  mode?: number | string
  flag?: string | number
  flush?: boolean
  signal?: AbortSignal
}

function abortError(signal: AbortSignal): Error {
  const err = new Error('The operation was aborted') as Error & { code: string; cause?: unknown }
  err.name = 'AbortError'
  err.code = 'ABORT_ERR'
  err.cause = signal.reason
  return err
}

function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (signal === null || typeof signal !== 'object' || !('aborted' in signal)) {
    throw invalidArgType('options.signal', 'AbortSignal', signal)
  }
  return signal as AbortSignal
}

/** fs.promises.readFile: the whole file as a Buffer, or a string with `encoding`. */
export async function readFile(path: unknown, options?: ReadFileOptions | BufferEncoding | null): Promise<Buffer | string> {
  const opts = getOptions<ReadFileOptions>(options)
  const p = toPath(path)
  const signal = checkSignal(opts.signal)
  const flags = stringToFlags(opts.flag ?? 'r', 'flag')
  if (signal?.aborted) throw abortError(signal)
  const res = await nativeReadFile(Buffer.from(p), flags)
  if (signal?.aborted) throw abortError(signal)
  if (!Buffer.isBuffer(res)) {
    throw systemError(res.errno, res.syscall, res.syscall === 'open' ? p : undefined)
  }
  const enc = opts.encoding
  return enc && enc !== ('buffer' as BufferEncoding) ? res.toString(enc) : res
}

function toChunks(data: unknown, encoding: BufferEncoding): Buffer[] | null {
  if (typeof data === 'string') return [Buffer.from(data, encoding)]
  if (Buffer.isBuffer(data)) return [data]
  if (ArrayBuffer.isView(data)) return [Buffer.from(data.buffer, data.byteOffset, data.byteLength)]
  return null
}

/**
 * fs.promises.writeFile: string, Buffer, TypedArray, DataView, or an
 * (async) iterable of those, written as one batch; with `flush`, fsynced
 * before the promise resolves.
 */
export async function writeFile(path: unknown, data: unknown, options?: WriteFileOptions | BufferEncoding | null): Promise<void> {
  const opts = getOptions<WriteFileOptions>(options)
  const p = toPath(path)
  const signal = checkSignal(opts.signal)
  const encoding = (opts.encoding ?? 'utf8') as BufferEncoding
  const flags = stringToFlags(opts.flag ?? 'w', 'flag')
  const mode = parseFileMode(opts.mode, 'mode', 0o666)
  const flush = opts.flush == null ? false : validateBoolean(opts.flush, 'options.flush')
  let chunks = toChunks(data, encoding)
  if (chunks === null) {
    const iterable = data as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown } | null
    if (iterable == null || (typeof iterable[Symbol.iterator] !== 'function' && typeof iterable[Symbol.asyncIterator] !== 'function')) {
      throw invalidArgType('data', ['string', 'Buffer', 'TypedArray', 'DataView'], data)
    }
    chunks = []
    for await (const piece of data as AsyncIterable<unknown>) {
      if (signal?.aborted) throw abortError(signal)
      const c = toChunks(piece, encoding)
      if (c === null) throw invalidArgType('data', ['string', 'Buffer', 'TypedArray', 'DataView'], piece)
      chunks.push(...c)
    }
  }
  if (signal?.aborted) throw abortError(signal)
  const res = await nativeWriteFile(Buffer.from(p), chunks, flags, mode, flush)
  if (res.errno !== 0) throw systemError(res.errno, res.syscall, res.syscall === 'open' ? p : undefined)
}
