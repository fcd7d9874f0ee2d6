// Precompressed variants of a served file (`app.js.br`, `app.js.zst`,
// `app.js.gz` beside `app.js`): which encodings a server offers, and which
// of them a request accepts, best first (q-values, `identity;q=0` and `*`
// as negotiator reads Accept-Encoding). Serving the chosen variant is
// send-file.ts's: it is a file like any other, opened beneath the root.

import type { IncomingMessage } from 'node:http'
import Negotiator from 'negotiator'

export type Encoding = 'br' | 'zstd' | 'gzip'

/** The file name suffix of each encoding's variant. */
export const SUFFIX: Readonly<Record<Encoding, string>> = { br: '.br', zstd: '.zst', gzip: '.gz' }

/** `precompressed: true`: every encoding, in the order ties are broken. */
const ALL: readonly Encoding[] = ['br', 'zstd', 'gzip']

/**
 * The `precompressed` option as a list of encodings in the server's order
 * of preference: `true` is every one (br, zstd, gzip), absent or false
 * none. Anything else is a TypeError.
 */
export function encodingsOption(v: unknown): Encoding[] {
  if (v === undefined || v === false) return []
  if (v === true) return [...ALL]
  const bad = (): TypeError =>
    new TypeError(`precompressed option must be true, false or an array of "br", "zstd", "gzip", not ${JSON.stringify(v) ?? String(v)}`)
  if (!Array.isArray(v)) throw bad()
  for (const e of v) if (!(ALL as readonly unknown[]).includes(e)) throw bad()
  return [...new Set(v as Encoding[])]
}

/**
 * The encodings of `offered` (plus 'identity') that `req` accepts, best
 * first: a variant is served only for those before 'identity'.
 */
export function accepted(req: Pick<IncomingMessage, 'headers'>, offered: readonly Encoding[]): string[] {
  if (req.headers['accept-encoding'] === undefined) return ['identity']
  const available = [...offered, 'identity']
  return new Negotiator(req).encodings(available, { preferred: available })
}
