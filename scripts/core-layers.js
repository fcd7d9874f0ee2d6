#!/usr/bin/env node
// The module graph of crates/core, drawn from its `crate::` paths (in `use`
// lines and in code), checked two ways, so that a test can hold the tree
// layered:
//
// - import cycles: each strongly connected set of more than one module;
// - floors (crates/core/README.md draws them): every module is on one of
//   FLOORS, and uses only its own floor, the floor right below, and the
//   ground (the vocabulary every floor speaks). A feature never reaches a
//   backend past the engine; the fallback backend never uses io_uring's.
//
// Prints what it finds; exits 1 when it finds anything (with --check).
//
//   node scripts/core-layers.js [--check] [--dot]
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..', 'crates', 'core', 'src')

/** Module name for a source file: `uring/loop_ring.rs` -> `uring::loop_ring`. */
function moduleOf(rel) {
  const parts = rel.replace(/\.rs$/, '').split(path.sep)
  if (parts[parts.length - 1] === 'mod') parts.pop()
  if (parts.length === 1 && parts[0] === 'lib') return 'crate'
  return parts.join('::')
}

function sources(dir, rel = '') {
  const out = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const r = path.join(rel, e.name)
    if (e.isDirectory()) out.push(...sources(path.join(dir, e.name), r))
    else if (e.name.endsWith('.rs')) out.push(r)
  }
  return out
}

/** Drops comments (line and block) and string literals: only code names modules. */
function code(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
}

/**
 * Every module a file refers to: `crate::a::b::Item` is `a::b` when that is
 * a module, else `a`. Groups (`use crate::{a, b::c}`) are expanded.
 */
function references(text, modules) {
  const refs = new Set()
  const add = (segments) => {
    for (let n = segments.length; n > 0; n--) {
      const m = segments.slice(0, n).join('::')
      if (modules.has(m)) {
        refs.add(m)
        return
      }
    }
  }
  const expand = (prefix, body) => {
    // Split the top level of a `{ ... }` group on commas.
    let depth = 0
    let start = 0
    const items = []
    for (let i = 0; i < body.length; i++) {
      if (body[i] === '{') depth++
      else if (body[i] === '}') depth--
      else if (body[i] === ',' && depth === 0) {
        items.push(body.slice(start, i))
        start = i + 1
      }
    }
    items.push(body.slice(start))
    for (const raw of items) {
      const item = raw.trim()
      if (!item) continue
      const g = item.match(/^([\w:]*?)(?:::)?\{([\s\S]*)\}$/)
      if (g) expand([...prefix, ...g[1].split('::').filter(Boolean)], g[2])
      else add([...prefix, ...item.split(/\s+as\s+/)[0].split('::').filter((s) => s && s !== 'self')])
    }
  }
  const src = code(text)
  for (const m of src.matchAll(/crate::((?:\w+::)*)\{([^;]*?)\}\s*;/g)) expand(m[1].split('::').filter(Boolean), m[2])
  for (const m of src.matchAll(/crate((?:::\w+)+)/g)) add(m[1].split('::').filter(Boolean))
  for (const m of src.matchAll(/super((?:::\w+)+)/g)) refs.add(`super${m[1]}`)
  return refs
}

function graph(dir = root) {
  const files = sources(dir)
  const modules = new Set(files.map(moduleOf))
  const edges = new Map()
  for (const f of files) {
    const from = moduleOf(f)
    const text = fs.readFileSync(path.join(dir, f), 'utf8')
    const to = new Set()
    for (const r of references(text, modules)) {
      let target = r
      if (r.startsWith('super')) {
        // super:: from `a::b` is `a`; resolve the rest as from the crate.
        const parent = from.split('::').slice(0, -1)
        const rest = r.split('::').slice(1)
        target = null
        for (let n = rest.length; n >= 0 && !target; n--) {
          const m = [...parent, ...rest.slice(0, n)].join('::')
          if (modules.has(m)) target = m
        }
        if (!target) continue
      }
      if (target !== from && target !== 'crate') to.add(target)
    }
    edges.set(from, to)
  }
  return edges
}

/** Tarjan's strongly connected components. */
function cycles(edges) {
  let index = 0
  const idx = new Map()
  const low = new Map()
  const stack = []
  const on = new Set()
  const out = []
  const visit = (v) => {
    idx.set(v, index)
    low.set(v, index++)
    stack.push(v)
    on.add(v)
    for (const w of edges.get(v) || []) {
      if (!idx.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v), low.get(w)))
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)))
    }
    if (low.get(v) === idx.get(v)) {
      const scc = []
      let w
      do {
        w = stack.pop()
        on.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1) out.push(scc.sort())
    }
  }
  for (const v of [...edges.keys()].sort()) if (!idx.has(v)) visit(v)
  return out
}

/** The floors, ground up, and the top-level modules on each. */
const FLOORS = [
  ['ground', ['vocabulary', 'op_error', 'fd_stat', 'owned_fds', 'stats', 'buffer_pool', 'write_source']],
  ['backend', ['backend']],
  ['engine', ['engine']],
  ['features', ['stream', 'whole_file', 'batch', 'http']],
]

/** The floor index of module `m` (by its first segment), or -1. */
function floorOf(m) {
  const top = m.split('::')[0]
  return FLOORS.findIndex(([, tops]) => tops.includes(top))
}

/**
 * Every edge that breaks the floors, as `from -> to (why)`: a module on no
 * floor, an edge up, an edge down past the floor right below (other than to
 * the ground), and the fallback backend using io_uring's.
 */
function floorBreaks(edges) {
  const out = []
  for (const [from, tos] of edges) {
    // lib.rs declares the modules and re-exports the public API.
    if (from === 'crate') continue
    const a = floorOf(from)
    if (a < 0) {
      out.push(`${from}: on no floor (add it to FLOORS in scripts/core-layers.js)`)
      continue
    }
    for (const to of tos) {
      const b = floorOf(to)
      if (b < 0) continue
      let why = null
      if (b > a) why = `${FLOORS[a][0]} uses ${FLOORS[b][0]}, a floor above`
      else if (b < a - 1 && b !== 0) why = `${FLOORS[a][0]} reaches ${FLOORS[b][0]} past ${FLOORS[a - 1][0]}`
      else if (from.startsWith('backend::fallback') && to.startsWith('backend::uring')) {
        why = 'the fallback backend uses io_uring'
      }
      if (why) out.push(`${from} -> ${to} (${why})`)
    }
  }
  return out.sort()
}

if (require.main === module) {
  const edges = graph()
  if (process.argv.includes('--dot')) {
    console.log('digraph core {')
    for (const [from, to] of edges) for (const t of to) console.log(`  "${from}" -> "${t}";`)
    console.log('}')
  }
  const found = cycles(edges)
  for (const c of found) console.log(`cycle: ${c.join(', ')}`)
  const breaks = floorBreaks(edges)
  for (const b of breaks) console.log(`floor: ${b}`)
  console.log(`${edges.size} modules, ${found.length} import cycle(s), ${breaks.length} floor break(s)`)
  if (process.argv.includes('--check') && (found.length || breaks.length)) process.exit(1)
}

module.exports = { graph, cycles, floorBreaks, FLOORS }
