// Handing a file's body to a front proxy (Rack::Sendfile's convention):
// the response carries a header naming the file, and an empty body, and
// the proxy (nginx with X-Accel-Redirect, Apache's mod_xsendfile with
// X-Sendfile, lighttpd with X-Lighttpd-Send-File) sends the file itself.
//
// Which header, and how a file's path becomes what the proxy understands,
// come from the options, or, with `xSendfile: true`, from the request as
// Rack reads them: `X-Sendfile-Type` and `X-Accel-Mapping` ("/real/=/uri/",
// several separated by commas), which the proxy sets (and must strip from
// clients' requests). A path no mapping covers is never handed off: the
// file is then served as usual, so an absolute path never leaks.

import type { IncomingMessage } from 'node:http'

export type HandoffType = 'X-Accel-Redirect' | 'X-Sendfile' | 'X-Lighttpd-Send-File'

const TYPES: readonly string[] = ['X-Accel-Redirect', 'X-Sendfile', 'X-Lighttpd-Send-File']

export interface XSendfileOptions {
  /** The header to send; default: the request's X-Sendfile-Type. */
  type?: HandoffType
  /**
   * "/real/prefix/=/proxy/prefix/", comma-separated pairs: the first whose
   * real prefix starts the file's path maps it. Default: the request's
   * X-Accel-Mapping.
   */
  mapping?: string
}

export interface Handoff {
  type: HandoffType | null
  mapping: Array<[string, string]> | null
}

/** The `xSendfile` option: off (null), from the request, or fixed. */
export function handoffOption(v: unknown): Handoff | null {
  if (v === undefined || v === false) return null
  if (v === true) return { type: null, mapping: null }
  if (typeof v !== 'object' || v === null) throw badOption(v)
  const o = v as XSendfileOptions
  if (o.type !== undefined && !TYPES.includes(o.type)) throw badOption(v)
  if (o.mapping !== undefined && typeof o.mapping !== 'string') throw badOption(v)
  const mapping = o.mapping === undefined ? null : parseMapping(o.mapping)
  if (mapping !== null && mapping.length === 0) throw badOption(v)
  return { type: o.type ?? null, mapping }
}

function badOption(v: unknown): TypeError {
  return new TypeError(
    `xSendfile option must be true, false or { type: "X-Accel-Redirect" | "X-Sendfile" | "X-Lighttpd-Send-File", mapping: "/real/=/uri/" }, not ${JSON.stringify(v) ?? String(v)}`,
  )
}

/** "a=b, c=d" as pairs; pairs without '=' or with an empty side are dropped. */
function parseMapping(s: string): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const part of s.split(',')) {
    const i = part.indexOf('=')
    if (i < 0) continue
    const from = part.slice(0, i).trim()
    const to = part.slice(i + 1).trim()
    if (from && to) out.push([from, to])
  }
  return out
}

/**
 * The header (name, value) that hands `file` (an absolute path) to the
 * proxy for `req`, or null: no type asked for, or no mapping covers it.
 * A real prefix covers the path only at a '/' boundary.
 */
export function handoffHeader(h: Handoff, req: Pick<IncomingMessage, 'headers'>, file: string): [HandoffType, string] | null {
  const asked = h.type ?? req.headers['x-sendfile-type']
  if (typeof asked !== 'string' || !TYPES.includes(asked)) return null
  let mapping = h.mapping
  if (mapping === null) {
    const m = req.headers['x-accel-mapping']
    mapping = typeof m === 'string' ? parseMapping(m) : []
  }
  for (const [from, to] of mapping) {
    const covered = file === from || (file.startsWith(from) && (from.endsWith('/') || file[from.length] === '/'))
    if (!covered) continue
    let mapped = to + file.slice(from.length)
    if (to.endsWith('/') && file.slice(from.length).startsWith('/')) mapped = to + file.slice(from.length + 1)
    // A '?' or '#' would be read as the start of a query or fragment, and
    // control characters cannot be in a header: such a file is served as usual.
    if (/[?#\0-\x1f\x7f]/.test(mapped)) return null
    // The path's UTF-8 bytes as the header's bytes (Node writes a header's
    // characters as latin1).
    return [asked as HandoffType, Buffer.from(mapped, 'utf8').toString('latin1')]
  }
  return null
}
