// Child processes of `uring-fs serve` for the CLI specs: spawned the way a
// user runs them (node bin/uring-fs.js serve ...), with the listening line
// parsed, signals sent and the exit awaited, killed on teardown.

import type { ExecutionContext } from 'ava'
import { type ChildProcess, spawn } from 'node:child_process'
import * as path from 'node:path'

import { REPO, sleep } from './helpers'

export const BIN = path.join(REPO, 'bin', 'uring-fs.js')
export const LISTENING = /^uring-fs serving (.+) at (https?:\/\/\S+\/) \(backend: ([a-z_]+)(?:; .*)?\)$/m
/** A response log line: ISO time, remote address, method, url, status, bytes, duration, how. */
export const LOG_LINE = /^\d{4}-\d\d-\d\dT\S+Z \S+ [A-Z]+ \S+ \d{3} \d+ [\d.]+ms \S+/

// ---------------------------------------------------------------------------
// Children

export interface Child {
  proc: ChildProcess
  stdout(): string
  stderr(): string
  /** Settles with the exit code and signal once the child has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export interface Server extends Child {
  /** `http://127.0.0.1:port/`, as printed. */
  url: string
  port: number
  /** The directory as printed. */
  shown: string
  backend: string
}

/** Spawns `node <args>` in the repository with the inherited env (plus `env`); killed on teardown. */
export function spawnNode(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c))
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('error', () => resolve({ code: null, signal: null }))
    // 'close': the exit and the end of its output (all of stdout is in).
    proc.on('close', (code, signal) => resolve({ code, signal }))
  })
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  })
  return { proc, stdout: () => out, stderr: () => err, exited }
}

/** Resolves when `cond()` holds; rejects with `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)
    await sleep(20)
  }
}

/** Waits for the listening line of `child` and parses it. */
export async function listening(child: Child): Promise<Server> {
  let exited = false
  void child.exited.then(() => (exited = true))
  await waitFor(
    () => LISTENING.test(child.stdout()) || exited,
    () => `the listening line; stdout: ${JSON.stringify(child.stdout())}, stderr: ${JSON.stringify(child.stderr())}`,
    15_000,
  )
  const m = LISTENING.exec(child.stdout())
  if (!m) throw new Error(`exited before listening: ${JSON.stringify(await child.exited)}, stderr: ${JSON.stringify(child.stderr())}`)
  const url = new URL(m[2])
  return { ...child, shown: m[1], url: m[2], port: Number(url.port), backend: m[3] }
}

/** `uring-fs serve <dir> --port 0 --host 127.0.0.1 [flags]`, listening. */
export async function serveDir(t: ExecutionContext, dir: string, port = '0', flags: string[] = []): Promise<Server> {
  return listening(spawnNode(t, [BIN, 'serve', dir, '--port', port, '--host', '127.0.0.1', ...flags]))
}

/** Sends `signal` and waits (up to `limitMs`) for the exit: the exit and the ms it took. */
export async function signalAndWait(
  child: Child,
  signal: NodeJS.Signals,
  limitMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number } | null> {
  const sent = Date.now()
  child.proc.kill(signal)
  const timeout = sleep(limitMs).then(() => null)
  const res = await Promise.race([child.exited, timeout])
  return res === null ? null : { ...res, ms: Date.now() - sent }
}

/** The response log lines in `stdout` (neither the listening line nor `uring-fs: ...` messages). */
export function logLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => LOG_LINE.test(l))
}

