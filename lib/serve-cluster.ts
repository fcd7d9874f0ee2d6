// `uring-fs serve`'s primary process: forks the workers (node:cluster; the
// primary accepts connections and hands them round-robin to the workers,
// the one scheme Node has on every version we support), starts another
// when one dies (at once if it had run a while, else after a back-off that
// doubles up to 10 s), prints the listening line once, and on
// SIGINT/SIGTERM asks every worker to stop gracefully, then exits 0. A
// second signal ends everything at once. The workers write the access log
// to the stdout they inherit: one stream.

import cluster, { type Worker } from 'node:cluster'
import { isAbsolute, join, relative, resolve } from 'node:path'
import { SHUTDOWN_GRACE_MS } from './serve-app'
import { encodeSettings, type ServeSettings } from './serve-options'

/** A worker that ran this long before dying is started again at once. */
const STABLE_MS = 10_000
const MAX_BACKOFF_MS = 10_000
/** The exit code of a worker that cannot serve at all (serve-worker). */
const EX_CONFIG = 78

interface Ready {
  cmd: 'uring-fs:ready'
  port: number
  backend: string
  reason: string | null
}

interface Fatal {
  cmd: 'uring-fs:fatal'
  message: string
}

function shownDir(dir: string): string {
  const root = resolve(dir)
  const rel = relative(process.cwd(), root)
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? root : rel
}

export function runPrimary(s: ServeSettings): void {
  cluster.setupPrimary({ exec: join(__dirname, 'serve-worker.js'), args: [], silent: false })
  const env = { URING_FS_SERVE: encodeSettings(s) }
  const startedAt = new Map<number, number>()
  let announced = false
  let fatalSaid = false
  let stopping = false
  let exitCode = 0
  let backoff = 0

  // cluster.workers still holds a worker while its 'exit' is emitted (it is
  // removed after): isDead() is already true then.
  const alive = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead())

  function say(line: string): void {
    process.stdout.write(`uring-fs: ${line}\n`)
  }

  function fork(): void {
    const w = cluster.fork(env)
    startedAt.set(w.id, Date.now())
    // A message to a worker that just died (cluster's own, such as a listen
    // error answered to every worker) fails with EPIPE: its 'exit' follows,
    // which is what counts. Unheard, that error would end the primary.
    w.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_IPC_CHANNEL_CLOSED') process.stderr.write(`uring-fs: worker ${w.process.pid}: ${err.message}\n`)
    })
    w.on('message', (m: Ready | Fatal) => {
      if (m?.cmd === 'uring-fs:ready' && !announced) {
        announced = true
        const host = s.host.includes(':') ? `[${s.host}]` : s.host
        const scheme = s.cert !== null ? 'https' : 'http'
        const notes = [`backend: ${m.backend}`, ...(m.reason ? [m.reason] : []), `${s.workers} worker${s.workers === 1 ? '' : 's'}`]
        process.stdout.write(`uring-fs serving ${shownDir(s.dir)} at ${scheme}://${host}:${m.port}/ (${notes.join('; ')})\n`)
      } else if (m?.cmd === 'uring-fs:fatal' && !fatalSaid) {
        fatalSaid = true
        process.stderr.write(`uring-fs: ${m.message}\n`)
        exitCode = 1
        stopping = true
        for (const other of alive()) other.process.kill('SIGKILL')
      }
    })
  }

  cluster.on('exit', (w, code, signal) => {
    const lived = Date.now() - (startedAt.get(w.id) ?? Date.now())
    startedAt.delete(w.id)
    if (stopping || code === EX_CONFIG) {
      if (code === EX_CONFIG && !stopping) {
        stopping = true
        exitCode = 1
        for (const other of alive()) other.process.kill('SIGKILL')
      }
      if (alive().length === 0) finish()
      return
    }
    backoff = lived >= STABLE_MS ? 0 : Math.min(Math.max(backoff * 2, 100), MAX_BACKOFF_MS)
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`
    process.stderr.write(`uring-fs: worker ${w.process.pid} ${how}; starting another${backoff ? ` in ${backoff} ms` : ''}\n`)
    setTimeout(() => {
      if (!stopping) fork()
    }, backoff)
  })

  /** Every worker is gone: exit, once a failed worker's message (which may come after its exit) is printed. */
  function finish(): void {
    if (exitCode === 0 || fatalSaid) process.exit(exitCode)
    const waited = Date.now()
    const check = setInterval(() => {
      if (!fatalSaid && Date.now() - waited < 1000) return
      clearInterval(check)
      if (!fatalSaid) process.stderr.write('uring-fs: a worker could not start serving\n')
      process.exit(exitCode)
    }, 10)
  }

  function shutdown(signal: NodeJS.Signals): void {
    if (stopping) {
      process.stderr.write(`uring-fs: ${signal} again, exiting now\n`)
      for (const w of alive()) w.process.kill('SIGKILL')
      process.exit(1)
    }
    stopping = true
    const workers = alive()
    say(`${signal}, closing (${workers.length} worker${workers.length === 1 ? '' : 's'})`)
    if (workers.length === 0) process.exit(0)
    for (const w of workers) if (w.isConnected()) w.send({ cmd: 'uring-fs:stop', why: signal })
    // The workers cut what is left after the grace period; past that, they are stuck.
    setTimeout(() => {
      for (const w of alive()) w.process.kill('SIGKILL')
      process.exit(0)
    }, SHUTDOWN_GRACE_MS + 3000).unref()
  }
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGTERM', () => shutdown('SIGTERM'))

  for (let i = 0; i < s.workers; i++) fork()
}
