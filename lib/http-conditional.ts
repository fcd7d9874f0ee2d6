// Conditional-request and range-validity checks for sendFile, with the
// semantics of the `send` package (RFC 9110 as `send` reads it), so that a
// server switching from `send` answers every client exactly as before.
// Freshness itself (If-None-Match / If-Modified-Since) is the `fresh`
// package, as in `send`.

import type { IncomingHttpHeaders, OutgoingHttpHeader } from 'node:http'
import fresh from 'fresh'

export interface Validators {
  etag: string | undefined
  lastModified: string | undefined
}

/** A header value as one string (arrays joined as HTTP folds them). */
function one(v: OutgoingHttpHeader | string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined
  return Array.isArray(v) ? v.join(', ') : String(v)
}

export function validatorsOf(getHeader: (name: string) => OutgoingHttpHeader | undefined): Validators {
  return { etag: one(getHeader('ETag')), lastModified: one(getHeader('Last-Modified')) }
}

/** An HTTP date in ms, or NaN. */
export function parseHttpDate(date: string | undefined): number {
  const t = date ? Date.parse(date) : NaN
  return typeof t === 'number' ? t : NaN
}

/** A comma-separated token list (an If-Match value) without blanks. */
export function parseTokenList(str: string): string[] {
  const list: string[] = []
  let start = 0
  let end = 0
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i)
    if (c === 0x20) {
      if (start === end) start = end = i + 1
    } else if (c === 0x2c) {
      if (start !== end) list.push(str.substring(start, end))
      start = end = i + 1
    } else {
      end = i + 1
    }
  }
  if (start !== end) list.push(str.substring(start, end))
  return list
}

export function isConditional(h: IncomingHttpHeaders): boolean {
  return Boolean(h['if-match'] || h['if-unmodified-since'] || h['if-none-match'] || h['if-modified-since'])
}

/** If-Match / If-Unmodified-Since not met: 412. */
export function isPreconditionFailure(h: IncomingHttpHeaders, v: Validators): boolean {
  const match = h['if-match']
  if (match) {
    const etag = v.etag
    return !etag || (match !== '*' && parseTokenList(match).every((m) => m !== etag && m !== 'W/' + etag && 'W/' + m !== etag))
  }
  const unmodifiedSince = parseHttpDate(h['if-unmodified-since'])
  if (!Number.isNaN(unmodifiedSince)) {
    const lastModified = parseHttpDate(v.lastModified)
    return Number.isNaN(lastModified) || lastModified > unmodifiedSince
  }
  return false
}

/** If-None-Match / If-Modified-Since met: 304. */
export function isFresh(h: IncomingHttpHeaders, v: Validators): boolean {
  return fresh(h, { etag: v.etag, 'last-modified': v.lastModified })
}

/** If-Range absent or still matching: the Range header applies. */
export function isRangeFresh(h: IncomingHttpHeaders, v: Validators): boolean {
  const ifRange = one(h['if-range'])
  if (!ifRange) return true
  if (ifRange.includes('"')) return Boolean(v.etag && ifRange.includes(v.etag))
  return parseHttpDate(v.lastModified) <= parseHttpDate(ifRange)
}
