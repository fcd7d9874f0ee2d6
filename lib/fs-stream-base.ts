// What ReadStream and WriteStream share: both extend the fs class of the
// Node that runs (its constructor, validation, properties and close() are
// the drop-in), and replace only the methods that move bytes, unless the
// caller's options ask fs to do the work. Node's lib/internal/fs/streams.js
// shares its _construct/close/importFd the same way, as functions.

import fs = require('node:fs')
import { isMainThread } from 'node:worker_threads'
import { engine } from './native'
import { systemError } from './errors'

/**
 * Makes `ctor` inherit from fs's stream class `parent` as fs's own classes
 * inherit (prototype and statics), so that `instanceof parent` holds and
 * `ctor.call(this, ...)` works from a subclass built the old way.
 */
export function inheritFsStream(ctor: { prototype: object }, parent: { prototype: object }): void {
  Object.setPrototypeOf(ctor.prototype, parent.prototype)
  Object.setPrototypeOf(ctor, parent)
}

type AnyMethod = (this: unknown, ...args: never[]) => unknown

/** One of fs's stream methods, to call on our stream where fs does the work. */
export function nodeStreamMethod<F extends AnyMethod = (...args: any[]) => void>(ctor: { prototype: unknown }, name: string): F {
  const method = (ctor.prototype as Record<string, unknown>)[name]
  if (typeof method !== 'function') throw new Error(`fs stream has no ${name}()`)
  return method as F
}

/**
 * Whether fs must do a stream's I/O, as the options ask: a custom `fs`
 * (called exactly as fs calls it), or a FileHandle as `fd` (read, written
 * and closed through the handle, as fs does). fs copies the options with
 * for-in, inherited properties included, and takes `options.fs || fs`.
 */
export function fsDoesTheWork(options: unknown): boolean {
  if (options === null || typeof options !== 'object') return false
  const o = options as Record<string, unknown>
  for (const key in o) {
    if (key === 'fs' && o[key]) return true
    if (key === 'fd' && o[key] !== null && typeof o[key] === 'object') return true
  }
  return false
}

/** fs's own open() of a stream class, taken before anyone can patch it. */
export function fsOpenOf(ctor: { prototype: unknown }): unknown {
  return (ctor.prototype as { open?: unknown }).open
}

/**
 * Whether the stream's open() is not fs's own: fs then calls it (its
 * backwards compatibility for code that patched it) and waits for its
 * 'open' event. Node 20 to 24 have a deprecated no-op as fs's own; 26 has
 * none.
 */
export function openIsPatched(stream: unknown, fsOpen: unknown): boolean {
  return (stream as { open?: unknown }).open !== fsOpen
}

/**
 * Whether the stream's I/O is the engine's: set by the constructor (false
 * where fs must do the work), never set when the constructor threw first.
 */
export const kEngine = Symbol('kEngine')

type Callback = (error?: Error | null) => void

/**
 * The part of both streams' `_construct` that opens nothing through the
 * engine. True when it has settled construction (called `callback`, or
 * handed it to fs's own `_construct`); false when the engine is to open.
 *
 * - The constructor threw after Node's stream constructor had scheduled
 *   this (an encoding only setDefaultEncoding rejects): nobody has the
 *   stream. fs opens the file anyway and never closes it; open nothing.
 * - Already closed before construction (a signal that was already
 *   aborted): open nothing. fs opens after its 'close' (a write stream's
 *   open creating or truncating the file) and never closes that
 *   descriptor. (A destroy() called before this waits for construction:
 *   that opens, as fs does, and _destroy closes.)
 * - fs does the I/O (a custom `fs`, a FileHandle, or an open() patched by
 *   the caller, which fs calls and waits for): fs's own `_construct`.
 */
export function constructedWithoutEngine(
  stream: { [kEngine]?: boolean; closed: boolean },
  fsOpen: unknown,
  fsConstruct: (this: unknown, callback: Callback) => void,
  callback: Callback,
): boolean {
  if (stream[kEngine] === undefined || stream.closed) {
    callback()
    return true
  }
  if (stream[kEngine] && openIsPatched(stream, fsOpen)) stream[kEngine] = false
  if (!stream[kEngine]) {
    fsConstruct.call(stream, callback)
    return true
  }
  return false
}

/** fs's own symbol for a stream's fs functions (`options.fs || fs`); null on a Node without it. */
function kFsOf(stream: object): symbol | null {
  return Object.getOwnPropertySymbols(stream).find((s) => s.description === 'kFs') ?? null
}

/**
 * Hands the stream's descriptor, about to be closed by fs's own _destroy,
 * from the environment that would close it at its end to whoever closes it
 * now; call right before fs's _destroy.
 *
 * On the main thread fs's close takes it. In a worker, Node counts the
 * descriptors fs opened there and warns when fs's close closes one it did
 * not open ("File descriptor N closed but not opened in unmanaged mode"),
 * which every stream would then print: a descriptor the engine opened is
 * closed by the engine instead, still from fs's own _destroy (its order,
 * its fsync first for `flush`, which error wins), through the stream's fs
 * functions, which become fs's with the engine's close for this stream.
 */
export function handOverFd(stream: { fd: unknown }): void {
  const fd = stream.fd
  if (typeof fd !== 'number' || !engine().releaseFd(fd) || isMainThread) return
  const kFs = kFsOf(stream)
  const own = kFs === null ? undefined : (stream as unknown as Record<symbol, unknown>)[kFs as symbol]
  if (own !== fs) return // a custom fs: fs does the I/O and the closing
  const close = (n: number, cb: (err: Error | null) => void): void => {
    engine().close(n).then((r) => cb(r < 0 ? systemError(r, 'close') : null), cb)
  }
  ;(stream as unknown as Record<symbol, unknown>)[kFs as symbol] = Object.assign(Object.create(fs), { close })
}
