#!/usr/bin/env node
// The charts and the README's performance section, drawn from a results
// file of benches/run.js (the newest one in benches/results when none is
// given).
//
//   node benches/charts.mjs [benches/results/<id>.json] [--no-readme]
//
// Charts are Vega-Lite specifications rendered to SVG by Vega itself,
// headless (no browser, no canvas: SVG text is measured by Vega's own
// estimate). Why Vega-Lite: a chart is a small declarative object (data,
// marks, encodings), faceting by case with an independent scale per unit
// is one line, and Vega renders it to SVG in Node without a DOM; Observable
// Plot would need a DOM shim for the same. One SVG per benchmark goes to
// benches/results/charts/<bench>.svg: a bar per variant and case (the
// median), a rule from the minimum to the maximum of the rounds, uring-fs
// in one colour, the baselines in another, the limits (fio, the in-memory
// server) in a third, and each baseline labelled with uring-fs's ratio to
// it. The README's section between `<!-- bench:start -->` and
// `<!-- bench:end -->` is rewritten with the charts and a table.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as vega from 'vega'
import * as vl from 'vega-lite'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const REPO = path.join(HERE, '..')
const RESULTS = path.join(HERE, 'results')
const CHARTS = path.join(RESULTS, 'charts')

const TITLES = {
  'read-stream': 'Read streams: a cached file read through createReadStream',
  'write-stream': 'Write streams, readFile and writeFile',
  'small-files': 'Many small files read at once (readFiles) against fs',
  http: 'Static files over HTTP (keep-alive, wrk)',
  sweeps: 'How cost grows with file size, file count, concurrent streams and connections',
}
const ROLE_COLOURS = { subject: '#d9480f', baseline: '#4c6ef5', limit: '#868e96' }

/** The newest results file, by name (they start with the date). */
function newest() {
  const files = fs.readdirSync(RESULTS).filter((f) => f.endsWith('.json')).sort()
  if (!files.length) throw new Error(`no results file in ${RESULTS}: run npm run bench first`)
  return path.join(RESULTS, files[files.length - 1])
}

const fmt = (x, unit) =>
  unit === 'GiB/s' ? `${x.toFixed(2)} GiB/s` : `${Math.round(x).toLocaleString('en-US')} ${unit}`

/** The pass of benches/run.js that measured `r` (its Node, and backend when several were run). */
const runOf = (r) => r.run ?? r.node

/** The rows of one bench's chart: one per variant and case, with the ratio label. */
function rows(records) {
  const out = []
  // With several passes (Nodes, backends), every case names its pass.
  const several = new Set(records.map(runOf)).size > 1
  for (const r of records) {
    const subject = records.find((s) => s.case === r.case && runOf(s) === runOf(r) && s.role === 'subject')
    const ratio = subject && r !== subject && r.role !== 'subject' ? subject.median / r.median : null
    out.push({
      case: several ? `${r.case} (Node ${runOf(r)})` : r.case,
      variant: r.variant,
      role: r.role,
      unit: r.unit,
      median: r.median,
      min: r.min,
      max: r.max,
      label: ratio === null ? fmt(r.median, r.unit) : `${fmt(r.median, r.unit)}: uring-fs ${ratio.toFixed(2)}x`,
    })
  }
  return out
}

/** A Vega-Lite chart of one bench: faceted by case, each with its own x scale. */
function spec(bench, data, subtitle) {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: TITLES[bench] ?? bench, subtitle, anchor: 'start', fontSize: 15, subtitleFontSize: 11 },
    data: { values: data },
    facet: { row: { field: 'case', type: 'nominal', sort: [...new Set(data.map((d) => d.case))], header: { labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelFontSize: 12, labelFontWeight: 'bold', title: null, labelOrient: 'top' } } },
    spec: {
      width: 430,
      height: { step: 20 },
      layer: [
        {
          mark: { type: 'bar', height: 14 },
          encoding: {
            y: { field: 'variant', type: 'nominal', sort: null, title: null, axis: { labelLimit: 200 } },
            x: { field: 'median', type: 'quantitative', title: 'median of the rounds (unit at the right of each bar)', axis: { format: ',~r', grid: true } },
            color: {
              field: 'role',
              type: 'nominal',
              scale: { domain: Object.keys(ROLE_COLOURS), range: Object.values(ROLE_COLOURS) },
              legend: { title: null, orient: 'top', labelLimit: 300, labelExpr: "{subject: 'uring-fs', baseline: 'baseline', limit: 'limit (fio, in-memory server)'}[datum.label]" },
            },
          },
        },
        {
          mark: { type: 'rule', color: '#212529' },
          encoding: { y: { field: 'variant', type: 'nominal', sort: null }, x: { field: 'min', type: 'quantitative' }, x2: { field: 'max' } },
        },
        {
          mark: { type: 'text', align: 'left', dx: 4, fontSize: 10 },
          encoding: { y: { field: 'variant', type: 'nominal', sort: null }, x: { field: 'max', type: 'quantitative' }, text: { field: 'label' } },
        },
      ],
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    config: { view: { stroke: null }, font: 'DejaVu Sans, Helvetica, Arial, sans-serif' },
  }
}

/** Vega-Lite's warnings about facets with independent scales, which this layout means to have. */
const quiet = { level: () => quiet, error: (...m) => console.error(...m), warn: () => quiet, info: () => quiet, debug: () => quiet }

const SWEEP_TITLES = {
  size: 'one file read whole, by its size (bytes)',
  files: 'N files of 4 KiB read at once (readFiles), by N',
  streams: 'N read streams at once, by N',
  connections: 'N keep-alive connections (wrk -t1 -cN), by N',
}
/** What the 99th percentile of each sweep times. */
const P99_OF = { streams: "one stream's time from creation to its end", connections: "a request's latency" }

/**
 * The sweeps: one line chart per sweep and API, log-log, the median with a
 * rule from the minimum to the maximum; for the streams also the 99th
 * percentile of one stream's time.
 */
function sweepSpec(records, subtitle) {
  const data = records.map((r) => ({
    panel: `${r.params.api}: ${SWEEP_TITLES[r.params.sweep] ?? r.params.sweep} (${r.unit})`,
    x: r.params.x,
    variant: r.variant,
    median: r.median,
    min: r.min,
    max: r.max,
    p99: r.extra?.p99Ms ?? null,
    sweep: r.params.sweep,
  }))
  const panels = [...new Set(data.map((d) => d.panel))]
  const line = (field, title) => ({
    width: 420,
    height: 200,
    layer: [
      {
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'x', type: 'quantitative', scale: { type: 'log' }, title: null, axis: { format: ',~s' } },
          y: { field, type: 'quantitative', scale: { type: 'log' }, title, axis: { format: ',~r' } },
          color: { field: 'variant', type: 'nominal', title: null, legend: { orient: 'top', labelLimit: 300 } },
        },
      },
      ...(field === 'median'
        ? [{ mark: { type: 'rule' }, encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' }, color: { field: 'variant', type: 'nominal' } } }]
        : []),
    ],
  })
  const rows = []
  for (const panel of panels) {
    const values = data.filter((d) => d.panel === panel)
    rows.push({ title: { text: panel, anchor: 'start', fontSize: 12 }, data: { values }, ...line('median', 'median of the rounds') })
    if (values.some((d) => d.p99 !== null)) {
      const of = P99_OF[values[0].sweep] ?? 'one operation'
      rows.push({ title: { text: `${panel.split(':')[0]}: 99th percentile of ${of} (ms), by N`, anchor: 'start', fontSize: 12 }, data: { values }, ...line('p99', 'ms') })
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'How cost grows: uring-fs against its baselines as the work grows', subtitle, anchor: 'start', fontSize: 15, subtitleFontSize: 11 },
    vconcat: rows,
    resolve: { scale: { color: 'shared' } },
    config: { view: { stroke: null }, font: 'DejaVu Sans, Helvetica, Arial, sans-serif' },
  }
}

async function render(vlSpec) {
  const view = new vega.View(vega.parse(vl.compile(vlSpec, { logger: quiet }).spec), { renderer: 'none' })
  return view.toSVG()
}

/** The README section: the charts, a table, how to reproduce, the notes. */
function readmeSection(result, charts) {
  const m = result.machine
  const lines = []
  lines.push(`Measured ${result.date.slice(0, 10)} with \`npm run bench${result.mode === 'quick' ? ' -- --quick' : ''}\` (${result.mode} mode) on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, ${m.filesystem ?? 'unknown'} temp dir; Node ${result.nodes.join(', ')}; backend ${(result.backends?.length ? result.backends : [result.backend]).join(", ")}. Every ratio compares figures of the same run. Results: [\`${path.relative(REPO, result.file)}\`](${path.relative(REPO, result.file)}).`)
  if (result.mode === 'quick') {
    lines.push('')
    lines.push('A quick run: one or two rounds of each case and smaller files, to check the figures are where they were; the full mode (`npm run bench`, five rounds) gives the figures to quote.')
  }
  lines.push('')
  lines.push('| case | uring-fs | best baseline | uring-fs / it | limit | Node (backend) |')
  lines.push('|---|---|---|---|---|---|')
  const cases = new Map()
  for (const r of result.records) {
    if (r.bench === 'sweeps') continue // drawn, not tabled
    const key = `${r.bench}\u0000${r.case}\u0000${runOf(r)}`
    if (!cases.has(key)) cases.set(key, [])
    cases.get(key).push(r)
  }
  for (const rs of cases.values()) {
    const subject = rs.find((r) => r.role === 'subject' && !/uring-fs-2|readFilesEach/.test(r.variant)) ?? rs.find((r) => r.role === 'subject')
    if (!subject) continue
    const better = (a, b) => (subject.higher ? a.median > b.median : a.median < b.median)
    const baselines = rs.filter((r) => r.role === 'baseline')
    const best = baselines.reduce((a, b) => (a === null || better(b, a) ? b : a), null)
    const limit = rs.find((r) => r.role === 'limit')
    lines.push(
      `| ${rs[0].case} | ${fmt(subject.median, subject.unit)} | ${best ? `${best.variant}: ${fmt(best.median, best.unit)}` : '-'} | ${best ? `${(subject.median / best.median).toFixed(2)}x` : '-'} | ${limit ? `${limit.variant}: ${fmt(limit.median, limit.unit)}` : '-'} | ${runOf(subject)} |`,
    )
  }
  lines.push('')
  for (const c of charts) lines.push(`![${TITLES[c.bench] ?? c.bench}](${path.relative(REPO, c.file)})`, '')
  return lines.join('\n')
}

async function main() {
  const args = process.argv.slice(2)
  const file = args.find((a) => !a.startsWith('--')) ?? newest()
  const result = JSON.parse(fs.readFileSync(file, 'utf8'))
  result.file = file
  fs.mkdirSync(CHARTS, { recursive: true })
  const m = result.machine
  const about = `${result.date.slice(0, 10)}, Node ${result.nodes.join(', ')}, ${m.cores} cores (${m.cpu}), ${result.mode} mode`
  const subtitle = `${about}; bar: median, rule: min to max of the rounds`
  const sweepSubtitle = `${about}; point: median, rule: min to max of the rounds; log-log`
  const runs = new Set(result.records.map(runOf)).size
  const charts = []
  for (const bench of [...new Set(result.records.map((r) => r.bench))]) {
    const out = path.join(CHARTS, `${bench}.svg`)
    const records = result.records.filter((r) => r.bench === bench)
    // The sweeps of the first pass only (the Node running run.js): one line
    // per variant stays readable; the other passes are in the results file.
    const first = records.length ? runOf(records[0]) : null
    const svg = await render(
      bench === 'sweeps'
        ? sweepSpec(records.filter((r) => runOf(r) === first), `${sweepSubtitle}${first !== result.nodes[0] || runs > 1 ? `; Node ${first}` : ''}`)
        : spec(bench, rows(records), subtitle),
    )
    fs.writeFileSync(out, svg)
    charts.push({ bench, file: out })
    console.log(`chart: ${path.relative(REPO, out)}`)
  }
  if (args.includes('--no-readme')) return
  const readme = path.join(REPO, 'README.md')
  const text = fs.readFileSync(readme, 'utf8')
  const start = '<!-- bench:start -->'
  const end = '<!-- bench:end -->'
  const a = text.indexOf(start)
  const b = text.indexOf(end)
  if (a < 0 || b < a) throw new Error(`README.md has no ${start} ... ${end} section`)
  fs.writeFileSync(readme, text.slice(0, a + start.length) + '\n' + readmeSection(result, charts) + '\n' + text.slice(b))
  console.log('README.md: the performance section rewritten from ' + path.relative(REPO, file))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
