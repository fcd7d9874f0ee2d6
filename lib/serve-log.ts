// `uring-fs serve`'s access log: one line per response, as text or JSON
// lines, or none. Lines are gathered and written once per turn of the
// event loop (a write per response cost a system call each under load);
// every worker writes to the same inherited stdout, each write whole lines
// of at most PIPE_BUF bytes, so that lines from several workers never mix.

export interface LogEntry {
  start: bigint
  remote: string
  method: string
  url: string
  status: number
  bytes: number
  /** 'zero-copy', 'aborted' or '-'. */
  how: string
  /** Why a 5xx happened. */
  error?: string
}

/** Whole lines per write: a pipe takes up to PIPE_BUF (4096) bytes at once. */
const CHUNK = 4096

/** URL and method as printed: controls, spaces and quotes percent-encoded. */
export function printable(s: string): string {
  return s.replace(/[\x00-\x20\x7f"]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`)
}

export class AccessLog {
  private pending: string[] = []
  private pendingBytes = 0
  private scheduled = false

  constructor(
    readonly format: 'text' | 'json' | 'off',
    private readonly out: (chunk: string) => void = (chunk) => process.stdout.write(chunk),
  ) {}

  get enabled(): boolean {
    return this.format !== 'off'
  }

  add(e: LogEntry): void {
    if (this.format === 'off') return
    const ms = Number(process.hrtime.bigint() - e.start) / 1e6
    const time = new Date().toISOString()
    const line =
      this.format === 'json'
        ? JSON.stringify({ time, remote: e.remote, method: e.method, url: e.url, status: e.status, bytes: e.bytes, ms: Math.round(ms * 10) / 10, body: e.how, ...(e.error ? { error: e.error } : {}) }) + '\n'
        : `${time} ${e.remote} ${printable(e.method)} ${printable(e.url)} ${e.status} ${e.bytes} ${ms.toFixed(1)}ms ${e.how}${e.error ? ` (${e.error})` : ''}\n`
    this.pending.push(line)
    this.pendingBytes += line.length
    if (this.pendingBytes >= CHUNK) this.flush()
    else if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => this.flush())
    }
  }

  /** Writes what is gathered, in chunks of whole lines. */
  flush(): void {
    this.scheduled = false
    let chunk = ''
    for (const line of this.pending) {
      if (chunk.length > 0 && chunk.length + line.length > CHUNK) {
        this.out(chunk)
        chunk = ''
      }
      chunk += line
    }
    if (chunk) this.out(chunk)
    this.pending = []
    this.pendingBytes = 0
  }
}
