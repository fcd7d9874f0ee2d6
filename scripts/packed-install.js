#!/usr/bin/env node
// The package as users get it: `npm pack` of the main package and of this
// platform's binary package (npm/<platform>, the binary copied in, as the
// release does), installed from the tarballs into a fresh project outside
// the repository, with no Rust on PATH. There: CommonJS `require`, ES module
// `import`, and `tsc --strict` on a file using the types; then the same
// project with the binary package removed, where `require` must give a
// working package on the JavaScript fallback (backend 'node', one warning
// naming the binary). Also checks the tarball sizes the README promises.
//
//   node scripts/packed-install.js [--keep]
'use strict'
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.join(__dirname, '..')
const keep = process.argv.includes('--keep')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
/** The main tarball's size limit (README), and the binary package's. */
const MAX_MAIN = 120 * 1024
const MAX_BINARY = 2 * 1024 * 1024

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', shell: process.platform === 'win32', ...opts })
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`)
  }
  return r
}

function pack(dir, into) {
  const out = run(npm, ['pack', '--json', '--pack-destination', into, '--ignore-scripts'], { cwd: dir }).stdout
  const [info] = JSON.parse(out.slice(out.indexOf('[')))
  return { file: path.join(into, info.filename), size: info.size, files: info.files.map((f) => f.path) }
}

/** A PATH without cargo/rustc: every directory that holds them is left out. */
function pathWithoutRust() {
  return (process.env.PATH || '')
    .split(path.delimiter)
    .filter((d) => !['cargo', 'rustc'].some((b) => fs.existsSync(path.join(d, b))))
    .concat(path.dirname(process.execPath))
    .join(path.delimiter)
}

const platform = (() => {
  const { platformName } = require(path.join(root, 'lib', 'native.js'))
  return platformName()
})()

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-packed-'))
try {
  // The main package: what `files` lets through, and small.
  const main = pack(root, work)
  console.log(`main package: ${main.size} bytes, ${main.files.length} files`)
  if (main.size > MAX_MAIN) throw new Error(`the main tarball is ${main.size} bytes (limit ${MAX_MAIN})`)
  for (const f of main.files) {
    if (/^(example|crates|__test__|benches|target|npm)\//.test(f) || f.endsWith('.node') || f.endsWith('.ts') && !f.endsWith('.d.ts')) {
      throw new Error(`the main tarball ships ${f}`)
    }
  }
  for (const must of ['index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'LICENSE', 'README.md', 'package.json']) {
    if (!main.files.includes(must)) throw new Error(`the main tarball lacks ${must}`)
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  for (const hook of ['preinstall', 'install', 'postinstall']) {
    if (manifest.scripts?.[hook]) throw new Error(`the package has an ${hook} hook`)
  }

  // This platform's binary package, with the binary the build made.
  const npmDir = path.join(root, 'npm', platform)
  const binary = path.join(root, `uring-fs.${platform}.node`)
  let binaryPkg = null
  if (fs.existsSync(npmDir) && fs.existsSync(binary)) {
    const stage = path.join(work, 'binary-package')
    fs.cpSync(npmDir, stage, { recursive: true })
    fs.copyFileSync(binary, path.join(stage, path.basename(binary)))
    // The version the main package asks for (napi prepublish writes it into
    // optionalDependencies at release; here the versions are the same).
    binaryPkg = pack(stage, work)
    console.log(`${platform} package: ${binaryPkg.size} bytes`)
    if (binaryPkg.size > MAX_BINARY) throw new Error(`the ${platform} tarball is ${binaryPkg.size} bytes (limit ${MAX_BINARY})`)
  } else {
    console.log(`no binary for ${platform} here: only the JavaScript fallback is tried`)
  }

  // A fresh project, outside the repository, no Rust on PATH.
  const app = path.join(work, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, version: '1.0.0' }))
  const env = { ...process.env, PATH: pathWithoutRust(), npm_config_audit: 'false', npm_config_fund: 'false' }
  delete env.URING_FS_BACKEND
  delete env.NODE_PATH
  const tarballs = [main.file, ...(binaryPkg ? [binaryPkg.file] : [])]
  run(npm, ['install', '--no-package-lock', ...tarballs], { cwd: app, env })
  if (fs.existsSync(path.join(app, 'node_modules', 'uring-fs', 'crates'))) throw new Error('sources were installed')

  fs.writeFileSync(path.join(app, 'a.txt'), 'hello from a packed install\n')
  fs.writeFileSync(
    path.join(app, 'check.cjs'),
    `const assert = require('node:assert')
const fs = require('node:fs')
const u = require('uring-fs')
const want = fs.readFileSync('a.txt')
;(async () => {
  assert.deepStrictEqual(await u.readFile('a.txt'), want)
  assert.strictEqual(await u.readFile('a.txt', 'utf8'), want.toString())
  const chunks = []
  for await (const c of u.createReadStream('a.txt', { highWaterMark: 7 })) chunks.push(c)
  assert.deepStrictEqual(Buffer.concat(chunks), want)
  await new Promise((resolve, reject) => u.createWriteStream('b.txt').on('error', reject).on('close', resolve).end('written'))
  assert.strictEqual(fs.readFileSync('b.txt', 'utf8'), 'written')
  const [one, missing] = await u.readFiles(['a.txt', 'missing.txt'])
  assert.deepStrictEqual(one, want)
  assert.strictEqual(missing.code, 'ENOENT')
  assert.ok(u.createReadStream('a.txt').destroy() instanceof fs.ReadStream)
  console.log(JSON.stringify({ backend: u.backend(), reason: u.fallbackReason() }))
})().catch((e) => { console.error(e); process.exit(1) })
`,
  )
  fs.writeFileSync(
    path.join(app, 'check.mjs'),
    `import assert from 'node:assert'
import { readFile, backend } from 'uring-fs'
import pkg from 'uring-fs'
assert.strictEqual(typeof pkg.createReadStream, 'function')
assert.strictEqual(await readFile('a.txt', 'utf8'), 'hello from a packed install\\n')
console.log(JSON.stringify({ esm: backend() }))
`,
  )
  fs.writeFileSync(
    path.join(app, 'check.ts'),
    `import { readFile, createReadStream, readFiles } from 'uring-fs'
async function main(): Promise<void> {
  const text: string = await readFile('a.txt', 'utf8')
  const bytes: Buffer = await readFile('a.txt')
  const all: Array<string | Error> = await readFiles(['a.txt'], 'utf8')
  createReadStream('a.txt', { start: 0 }).destroy()
  void [text, bytes, all]
}
void main
`,
  )
  fs.writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: 'node16', moduleResolution: 'node16', target: 'ES2022', types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')] },
      files: ['check.ts'],
    }),
  )

  const node = (file, extraEnv = {}) => run(process.execPath, [file], { cwd: app, env: { ...env, ...extraEnv } })
  const cjs = node('check.cjs')
  const out = JSON.parse(cjs.stdout.trim().split('\n').pop())
  console.log('require:', out)
  if (binaryPkg && out.backend === 'node') throw new Error(`the binary did not load: ${out.reason}`)
  if (binaryPkg && /URING_FS_NO_NATIVE/.test(cjs.stderr)) throw new Error('a warning with the binary installed')
  console.log('import:', node('check.mjs').stdout.trim())
  // tsc from the repository's devDependencies, on the installed package's types only.
  run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { cwd: app, env })
  console.log('tsc --strict: ok')

  // The CLI as installed (its bin link, its worker script): serves a.txt, stops on SIGTERM.
  fs.writeFileSync(
    path.join(app, 'check-serve.cjs'),
    `const { spawn } = require('node:child_process')
const assert = require('node:assert')
const fs = require('node:fs')
const child = spawn('node_modules/.bin/uring-fs', ['serve', '.', '--port', '0', '--workers', '1', '--log', 'off'], { stdio: ['ignore', 'pipe', 'inherit'] })
let out = ''
const timer = setTimeout(() => { child.kill('SIGKILL'); console.error('no listening line: ' + out); process.exit(1) }, 15000)
child.stdout.on('data', async (c) => {
  out += c
  const m = /at (http:\\/\\/\\S+\\/) /.exec(out)
  if (!m || child.asked) return
  child.asked = true
  const body = Buffer.from(await (await fetch(m[1] + 'a.txt')).arrayBuffer())
  assert.ok(body.equals(fs.readFileSync('a.txt')), 'the served bytes')
  child.kill('SIGTERM')
})
child.on('exit', (code) => {
  clearTimeout(timer)
  assert.strictEqual(code, 0, 'exit code after SIGTERM')
  console.log('uring-fs serve: ok')
})
`,
  )
  console.log(node('check-serve.cjs').stdout.trim())

  // The binary package taken away: the JavaScript fallback, one warning.
  if (binaryPkg) {
    fs.rmSync(path.join(app, 'node_modules', `uring-fs-${platform}`), { recursive: true, force: true })
    const bare = node('check.cjs')
    const got = JSON.parse(bare.stdout.trim().split('\n').pop())
    console.log('without the binary:', got)
    if (got.backend !== 'node') throw new Error(`backend ${got.backend} without the binary`)
    if (!got.reason.includes(`uring-fs-${platform}`)) throw new Error(`the reason does not name the binary: ${got.reason}`)
    const warnings = bare.stderr.match(/URING_FS_NO_NATIVE/g) || []
    if (warnings.length !== 1) throw new Error(`${warnings.length} warnings without the binary:\n${bare.stderr}`)
    console.log('import without the binary:', node('check.mjs').stdout.trim())
  }
  console.log('packed install: ok')
} finally {
  if (keep) console.log(`kept ${work}`)
  else fs.rmSync(work, { recursive: true, force: true })
}
