// The native binding (crates/node, loaded by the generated binding.js).
// Every module of lib/ takes the engine's functions from here.

export * from '../binding'

/** Whether the native binary loaded (the engine is there to use). */
export function nativeLoaded(): boolean {
  return true
}
