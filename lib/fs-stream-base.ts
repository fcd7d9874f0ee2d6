// What ReadStream and WriteStream share: both extend the fs class of the
// Node that runs (its constructor, validation, properties and close() are
// the drop-in), and replace only the methods that move bytes, unless the
// caller's options ask fs to do the work. Node's lib/internal/fs/streams.js
// shares its _construct/close/importFd the same way, as functions.

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
