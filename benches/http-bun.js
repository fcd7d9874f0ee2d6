// The Bun static-file server benches/http.js measures, run by `bun`
// (`npm install --no-save bun` puts one in node_modules/.bin):
// `Bun.serve` answering GET /<file> with `new Response(Bun.file(...))`,
// which sends the file with sendfile(2).
//
//   bun benches/http-bun.js <root>
//
// Writes {"port": N} on a line to stdout once it listens on 127.0.0.1.

const root = process.argv[2]
if (!root) {
  console.error('usage: bun http-bun.js <root>')
  process.exit(2)
}

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch(req) {
    const name = decodeURIComponent(new URL(req.url).pathname).slice(1)
    if (name === '' || name.includes('/') || name.startsWith('.')) return new Response(null, { status: 404 })
    return new Response(Bun.file(`${root}/${name}`))
  },
})
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`)
