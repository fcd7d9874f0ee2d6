// A worker process of `uring-fs serve` (forked by serve-cluster's primary):
// one server with the settings the primary put in its environment. It
// tells the primary when it listens or cannot, and stops gracefully when
// the primary asks, on SIGINT/SIGTERM (a terminal's Ctrl-C reaches every
// process of the group), or when the primary is gone.

import { backend, fallbackReason } from '../index'
import { startServer } from './serve-app'
import { decodeSettings } from './serve-options'

function send(message: object): void {
  if (process.connected) process.send?.(message)
}

const settings = decodeSettings(process.env.URING_FS_SERVE ?? '')
let signals = 0
const stop = startServer(settings, {
  listening(port) {
    const reason = fallbackReason()
    send({ cmd: 'uring-fs:ready', port, backend: backend(), reason })
  },
  fatal(message) {
    // EX_CONFIG: the primary does not start another. Exit once the message
    // is handed to the channel (an exit right after send() can lose it).
    if (!process.connected || process.send === undefined) process.exit(78)
    process.send({ cmd: 'uring-fs:fatal', message }, () => process.exit(78))
  },
  say(message) {
    process.stdout.write(`uring-fs: worker ${process.pid}: ${message}\n`)
  },
  warn(message) {
    process.stderr.write(`uring-fs: worker ${process.pid}: ${message}\n`)
  },
  stopped() {
    process.exit(0)
  },
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // The first is the terminal's or the primary's; a second one means now.
    if (++signals > 1) process.exit(1)
    stop(signal)
  })
}
process.on('message', (m: { cmd?: string; why?: string }) => {
  if (m?.cmd === 'uring-fs:stop') stop(m.why ?? 'asked to stop')
})
process.on('disconnect', () => stop('the primary is gone'))
