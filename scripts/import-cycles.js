#!/usr/bin/env node
// The module graph of crates/core, drawn from its `crate::` paths (in `use`
// lines and in code), and the import cycles in it: each strongly connected
// set of more than one module. Prints the cycles; exits 1 when there is one
// (with --check), so that a test can hold the tree layered.
//
//   node scripts/import-cycles.js [--check] [--dot]
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

if (require.main === module) {
  const edges = graph()
  if (process.argv.includes('--dot')) {
    console.log('digraph core {')
    for (const [from, to] of edges) for (const t of to) console.log(`  "${from}" -> "${t}";`)
    console.log('}')
  }
  const found = cycles(edges)
  for (const c of found) console.log(`cycle: ${c.join(', ')}`)
  console.log(`${edges.size} modules, ${found.length} import cycle(s)`)
  if (process.argv.includes('--check') && found.length) process.exit(1)
}

module.exports = { graph, cycles }
