// `uring-fs serve`'s page for a directory without index.html: its entries
// (only what a request for them would serve: regular files and
// directories, symlinks that stay beneath the root, dotfiles only when
// they are served), sorted, with sizes and dates, a parent link, readable
// on a phone, no script. Every name is HTML-escaped in the text and
// percent-encoded in the link.

import { promises as fsp, type Stats } from 'node:fs'
import { join, sep } from 'node:path'
import { escapeHtml } from './send-file'
import type { Dotfiles } from './serve-options'

export interface ListingTarget {
  /** The directory's real path. */
  dir: string
  /** The decoded URL path, ending in '/'. */
  shown: string
}

function beneath(realRoot: string, real: string): boolean {
  return real === realRoot || real.startsWith(realRoot === sep ? sep : realRoot + sep)
}

/**
 * The directory to list for `pathname`, or null to leave the request to
 * sendFile. Only a path ending in '/' whose decoded form sendFile would take
 * as it is (no '..', no part sendFile hides, no NUL), naming a directory
 * whose real path is beneath the root's and which has no index.html, is
 * listed.
 */
export async function listingTarget(root: string, realRoot: string, pathname: string, dotfiles: Dotfiles): Promise<ListingTarget | null> {
  if (!pathname.endsWith('/')) return null
  let p: string
  try {
    p = decodeURIComponent(pathname)
  } catch {
    return null
  }
  if (p.includes('\0') || p.includes('\\')) return null
  const parts = p.split('/')
  if (parts.some((part) => part === '..' || (dotfiles !== 'allow' && part.length > 1 && part[0] === '.'))) return null
  try {
    const real = await fsp.realpath(join(root, p))
    if (!beneath(realRoot, real)) return null
    if (!(await fsp.stat(real)).isDirectory()) return null
    try {
      await fsp.lstat(join(real, 'index.html'))
      return null // sendFile serves it (or answers for it)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return null
    }
    return { dir: real, shown: p }
  } catch {
    return null
  }
}

interface Row {
  name: string
  isDir: boolean
  size: number
  mtime: Date
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' })

function byName(a: Row, b: Row): number {
  return Number(b.isDir) - Number(a.isDir) || collator.compare(a.name, b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function humanSize(bytes: number): string {
  let n = bytes
  let u = 0
  while (n >= 1024 && u < UNITS.length - 1) {
    n /= 1024
    u++
  }
  return u === 0 ? `${n} B` : `${n < 10 ? n.toFixed(1) : Math.round(n)} ${UNITS[u]}`
}

/** '2026-12-06 01:23' in UTC: the same for every reader of the page. */
function shortDate(d: Date): string {
  return d.toISOString().slice(0, 16).replace('T', ' ')
}

async function rowOf(dir: string, realRoot: string, name: string, dotfiles: Dotfiles): Promise<Row | null> {
  if (name[0] === '.' && dotfiles !== 'allow') return null // sendFile answers 404 or 403
  const full = join(dir, name)
  let st: Stats
  try {
    st = await fsp.lstat(full)
    if (st.isSymbolicLink()) {
      // sendFile answers 404 for a link out of the root: leave those out.
      const to = await fsp.realpath(full)
      if (!beneath(realRoot, to)) return null
      st = await fsp.stat(to)
    }
  } catch {
    return null // gone meanwhile, or a dangling link
  }
  // FIFOs, sockets and devices are never served (404): not listed.
  if (!st.isFile() && !st.isDirectory()) return null
  return { name, isDir: st.isDirectory(), size: st.size, mtime: st.mtime }
}

const STYLE = `body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;padding:1em;max-width:60em;color:#222;background:#fff}
h1{font-size:1.2em;word-break:break-all}
table{width:100%;border-collapse:collapse}
th,td{padding:.35em .5em;text-align:left;border-bottom:1px solid #e5e5e5}
td.n{word-break:break-all}
td.s,th.s{text-align:right;white-space:nowrap}
td.d{white-space:nowrap;color:#555}
a{color:#0645ad;text-decoration:none}
a:hover{text-decoration:underline}
@media (max-width:36em){td.d,th.d{display:none}}
@media (prefers-color-scheme:dark){body{color:#ddd;background:#111}a{color:#8ab4f8}td.d{color:#aaa}th,td{border-color:#333}}`

/** The listing page of `target`. */
export async function listingPage(target: ListingTarget, realRoot: string, dotfiles: Dotfiles): Promise<string> {
  const names = await fsp.readdir(target.dir)
  const rows = (await Promise.all(names.map((n) => rowOf(target.dir, realRoot, n, dotfiles)))).filter((r): r is Row => r !== null)
  rows.sort(byName)
  const lines: string[] = []
  if (target.shown !== '/') lines.push('<tr><td class="n"><a href="../">../</a></td><td class="s"></td><td class="d"></td></tr>')
  for (const r of rows) {
    const slash = r.isDir ? '/' : ''
    const size = r.isDir ? '-' : `<span title="${r.size} bytes">${humanSize(r.size)}</span>`
    lines.push(
      `<tr><td class="n"><a href="./${encodeURIComponent(r.name)}${slash}">${escapeHtml(r.name)}${slash}</a></td><td class="s">${size}</td><td class="d"><time datetime="${r.mtime.toISOString()}">${shortDate(r.mtime)}</time></td></tr>`,
    )
  }
  const title = `Index of ${escapeHtml(target.shown)}`
  const count = `${rows.length} ${rows.length === 1 ? 'entry' : 'entries'}`
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
${STYLE}
</style>
</head>
<body>
<h1>${title}</h1>
<table>
<thead><tr><th>Name</th><th class="s">Size</th><th class="d">Modified (UTC)</th></tr></thead>
<tbody>
${lines.join('\n')}
</tbody>
</table>
<p>${count}</p>
</body>
</html>
`
}
