// Bun's own ways of reading files, run by `bun` for benches/read-stream.js
// and benches/small-files.js (the bun of benches/lib/bun.js), which compare
// them with uring-fs in the same run. Each does one untimed pass first (JIT,
// allocator), then the timed one, and prints one line of JSON.
//
//   bun benches/bun-reads.js stream <file>
//       Bun.file(file).stream() read to its end: {"gibs", "cpuPerGiB", "chunk"}
//       (Bun picks the chunk size; the median chunk is reported)
//   bun benches/bun-reads.js files <list> <concurrency>
//       Bun.file(p).arrayBuffer() for every path of <list> (one per line),
//       Promise.all over batches of <concurrency>: {"filesPerSec"}

const [mode, arg, conc] = process.argv.slice(2)

const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e3
}

async function streamPass(file) {
  let n = 0
  const sizes = []
  for await (const chunk of Bun.file(file).stream()) {
    n += chunk.length
    if (sizes.length < 1000) sizes.push(chunk.length)
  }
  sizes.sort((a, b) => a - b)
  return { n, chunk: sizes[sizes.length >> 1] ?? 0 }
}

async function filesPass(paths, c) {
  for (let i = 0; i < paths.length; i += c) {
    await Promise.all(paths.slice(i, i + c).map((p) => Bun.file(p).arrayBuffer()))
  }
}

async function main() {
  if (mode === 'stream') {
    await streamPass(arg)
    Bun.gc(true)
    const c0 = cpuMs()
    const t0 = Bun.nanoseconds()
    const { n, chunk } = await streamPass(arg)
    const secs = (Bun.nanoseconds() - t0) / 1e9
    const gib = n / 2 ** 30
    console.log(JSON.stringify({ gibs: gib / secs, cpuPerGiB: (cpuMs() - c0) / gib, chunk }))
  } else if (mode === 'files') {
    const paths = (await Bun.file(arg).text()).split('\n').filter(Boolean)
    const c = Number(conc)
    await filesPass(paths, c)
    Bun.gc(true)
    const t0 = Bun.nanoseconds()
    await filesPass(paths, c)
    console.log(JSON.stringify({ filesPerSec: paths.length / ((Bun.nanoseconds() - t0) / 1e9) }))
  } else {
    console.error('usage: bun bun-reads.js stream <file> | files <list> <concurrency>')
    process.exit(2)
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
