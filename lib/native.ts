// The native binding (crates/node, loaded by the generated binding.js), or
// null where none loads: then every API of the package runs on node:fs (the
// JavaScript fallback, backend 'node'). Every module of lib/ takes the
// engine from here and never imports binding.js itself, so that a missing
// or broken binary is a fallback, never a throw at require.
//
// URING_FS_BACKEND=node skips the binary on purpose (no warning); a binary
// that does not load gives one warning, once, naming what was looked for.

import type * as Binding from '../binding'

export type NativeBinding = typeof Binding

interface Loaded {
  binding: NativeBinding | null
  /** Why the binding is null. */
  reason: string | null
}

/**
 * The platform name napi-rs gives the binary this process needs: the file
 * `uring-fs.<name>.node` or the package `uring-fs-<name>`.
 */
export function platformName(): string {
  const { platform, arch } = process
  if (platform === 'linux') {
    const report = process.report?.getReport?.() as { header?: { glibcVersionRuntime?: string } } | undefined
    const abi = arch === 'arm' ? 'gnueabihf' : report && !report.header?.glibcVersionRuntime ? 'musl' : 'gnu'
    return `linux-${arch}-${abi}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

/**
 * The first line of each reason the loader gave: napi-rs chains them as
 * `cause` (the last attempt first); the native attempts come first here.
 */
function causes(err: unknown): string {
  const list: string[] = []
  for (let e = (err as { cause?: unknown }).cause; e && list.length < 16; e = (e as { cause?: unknown }).cause) {
    list.unshift(String((e as Error).message ?? e).split('\n')[0])
  }
  if (list.length === 0) list.push(String((err as Error)?.message ?? err).split('\n')[0])
  return list.filter((m, i) => m && list.indexOf(m) === i && !/wasi/i.test(m)).join('; ')
}

function load(): Loaded {
  if (process.env.URING_FS_BACKEND === 'node') {
    return { binding: null, reason: 'URING_FS_BACKEND=node: the native binary was not loaded' }
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return { binding: require('../binding') as NativeBinding, reason: null }
  } catch (err) {
    const name = platformName()
    const reason = `no native binary loaded for ${name} (looked for uring-fs.${name}.node and the package uring-fs-${name}): ${causes(err)}`
    process.emitWarning(`uring-fs: ${reason}. Every API works on node:fs instead (backend 'node').`, {
      code: 'URING_FS_NO_NATIVE',
    })
    return { binding: null, reason }
  }
}

const loaded = load()

/** The engine, or null on the JavaScript fallback. */
export const native: NativeBinding | null = loaded.binding

/** Whether the native binary loaded (the engine is there to use). */
export function nativeLoaded(): boolean {
  return native !== null
}

/** Why there is no native binary, or null when there is. */
export function noNativeReason(): string | null {
  return loaded.reason
}

/** The engine, where a caller has checked `native` already (a programming error otherwise). */
export function engine(): NativeBinding {
  if (native === null) throw new Error('uring-fs: the native engine is not loaded')
  return native
}
