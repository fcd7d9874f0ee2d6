// The floors of crates/core hold: no module imports, directly or through
// others, a module that imports it back, and none uses a floor above its
// own or reaches past the floor right below (scripts/core-layers.js draws
// the graph from `crate::`/`super::` paths). And the checker itself finds a
// cycle or a break when there is one, in made-up graphs and in a real file.
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const { graph, cycles, floorBreaks } = require('../../../scripts/core-layers.js') as {
  graph: (root?: string) => Map<string, Set<string>>
  cycles: (edges: Map<string, Set<string>>) => string[][]
  floorBreaks: (edges: Map<string, Set<string>>) => string[]
}

test('crates/core has no import cycle', (t) => {
  const edges = graph()
  t.true(edges.size > 30, `${edges.size} modules read`)
  t.true(edges.get('engine')?.has('vocabulary'), 'edges are drawn (engine uses vocabulary)')
  t.deepEqual(cycles(edges), [])
})

test('the checker finds cycles: a made-up graph, and modules that use each other', (t) => {
  const made = new Map([
    ['a', new Set(['b'])],
    ['b', new Set(['c'])],
    ['c', new Set(['a'])],
    ['d', new Set(['a'])],
  ])
  t.deepEqual(cycles(made), [['a', 'b', 'c']])
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-layers-'))
  try {
    fs.mkdirSync(path.join(dir, 'floor'))
    fs.writeFileSync(path.join(dir, 'lib.rs'), 'pub mod top;\npub mod floor;\n')
    fs.writeFileSync(path.join(dir, 'top.rs'), 'use crate::floor::{low::Thing, other};\n')
    fs.writeFileSync(path.join(dir, 'floor', 'mod.rs'), 'pub mod low;\npub mod other;\n')
    fs.writeFileSync(path.join(dir, 'floor', 'low.rs'), '// crate::top in a comment is no use\npub struct Thing;\n')
    fs.writeFileSync(path.join(dir, 'floor', 'other.rs'), 'fn f() { crate::top::g() }\n')
    t.deepEqual(cycles(graph(dir)), [['floor::other', 'top']])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('crates/core keeps its floors', (t) => {
  const edges = graph()
  t.true(edges.get('batch::read_lanes')?.has('engine'), 'a feature uses the engine')
  t.deepEqual(floorBreaks(edges), [])
})

test('the checker finds floor breaks: up, past a floor, sideways into io_uring, and a module on no floor', (t) => {
  const made = new Map([
    ['backend::uring::x', new Set(['http::y', 'vocabulary', 'backend::fallback'])],
    ['stream::z', new Set(['backend::uring', 'engine', 'stats'])],
    ['backend::fallback::w', new Set(['backend::uring::x'])],
    ['engine', new Set(['backend::uring', 'buffer_pool'])],
    ['loose', new Set(['engine'])],
  ])
  t.deepEqual(floorBreaks(made), [
    'backend::fallback::w -> backend::uring::x (the fallback backend uses io_uring)',
    'backend::uring::x -> http::y (backend uses features, a floor above)',
    'loose: on no floor (add it to FLOORS in scripts/core-layers.js)',
    'stream::z -> backend::uring (features reaches backend past engine)',
  ])
})
