import test from 'ava'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { backend, statFiles, stats } from 'uring-fs'

const IS = ['isFile', 'isDirectory', 'isSymbolicLink', 'isBlockDevice', 'isCharacterDevice', 'isFIFO', 'isSocket'] as const

/** What a caller can see of a Stats: its prototype, own fields (in order) and type tests. */
function view(s: fs.Stats): unknown {
  return {
    proto: Object.getPrototypeOf(s) === fs.Stats.prototype,
    keys: Object.keys(s),
    fields: { ...s },
    is: IS.map((m) => s[m]()),
  }
}

function errorView(e: NodeJS.ErrnoException): unknown {
  return { keys: Object.keys(e), parts: [e.code, e.errno, e.syscall, e.path, e.message] }
}

/**
 * About `n` entries: files (some with odd times: fractional, before 1970),
 * directories, symlinks (relative, absolute, dangling, a loop), a socket, a
 * FIFO, and paths that fail: missing, through a file (ENOTDIR), a name too
 * long, the empty path, inside a directory nobody may search (EACCES unless
 * root). Some as Buffers and file: URLs.
 */
async function tree(t: { teardown(fn: () => void): void }, n: number): Promise<Array<string | Buffer | URL>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uring-fs-sf-'))
  const server = net.createServer()
  t.teardown(() => {
    server.close()
    fs.chmodSync(path.join(dir, 'locked'), 0o755)
    fs.rmSync(dir, { recursive: true, force: true })
  })
  let seed = 0x51a7
  const rand = (k: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % k
  }
  const paths: Array<string | Buffer | URL> = []
  fs.symlinkSync('loop-b', path.join(dir, 'loop-a'))
  fs.symlinkSync('loop-a', path.join(dir, 'loop-b'))
  paths.push(path.join(dir, 'loop-a'), path.join(dir, 'x'.repeat(300)), '', '/dev/null', '/', '.', 'package.json')
  fs.mkdirSync(path.join(dir, 'locked'))
  fs.writeFileSync(path.join(dir, 'locked', 'f'), 'x')
  fs.chmodSync(path.join(dir, 'locked'), 0)
  paths.push(path.join(dir, 'locked', 'f'), path.join(dir, 'locked'))
  const sock = path.join(dir, 'sock')
  await new Promise<void>((resolve) => server.listen(sock, resolve))
  paths.push(sock)
  try {
    execFileSync('mkfifo', [path.join(dir, 'fifo')])
    paths.push(path.join(dir, 'fifo'))
  } catch {
    // No mkfifo here: the other kinds still run.
  }
  for (let i = 0; i < n; i++) {
    const p = path.join(dir, `e${i}`)
    switch (rand(14)) {
      case 0:
        fs.mkdirSync(p)
        break
      case 1:
        fs.symlinkSync(`e${rand(i + 1)}`, p)
        break
      case 2:
        fs.symlinkSync(path.join(dir, `dangling-${i}`), p)
        break
      case 3:
        fs.symlinkSync(path.join(dir, `e${rand(i + 1)}`), p)
        break
      case 4:
        fs.writeFileSync(p, 'x')
        paths.push(path.join(p, 'child'))
        break
      case 5:
        paths.push(path.join(dir, `missing-${i}`))
        continue
      case 6:
        fs.writeFileSync(p, Buffer.alloc(rand(10000)))
        fs.utimesSync(p, -1234.5678 - i, 1_700_000_000.123456 + i / 7)
        break
      default:
        fs.writeFileSync(p, Buffer.alloc(rand(3) === 0 ? 0 : rand(100000)))
    }
    const form = rand(20)
    paths.push(form === 0 ? Buffer.from(p) : form === 1 ? pathToFileURL(p) : p)
  }
  return paths
}

for (const lstat of [false, true]) {
  const name = lstat ? 'lstat' : 'stat'
  test.serial(`statFiles${lstat ? ' (lstat)' : ''}: every field and error equals fs.${name}`, async (t) => {
    t.log(`backend: ${backend()}`)
    const paths = await tree(t, 2000)
    const before = stats()
    const got = await statFiles(paths, { lstat })
    const after = stats()
    t.is(got.length, paths.length)
    const kinds = new Set<string>()
    for (let i = 0; i < paths.length; i++) {
      const p = paths[i]
      let expected: fs.Stats | NodeJS.ErrnoException
      try {
        expected = lstat ? fs.lstatSync(p) : fs.statSync(p)
      } catch {
        expected = await (lstat ? fs.promises.lstat(p) : fs.promises.stat(p)).then(
          () => t.fail(`${String(p)}: sync failed, promise did not`) as never,
          (e: NodeJS.ErrnoException) => e,
        )
      }
      const g = got[i]
      if (expected instanceof Error) {
        kinds.add(expected.code ?? '')
        t.true(g instanceof Error, `${String(p)}: an error like fs`)
        t.deepEqual(errorView(g as NodeJS.ErrnoException), errorView(expected), String(p))
      } else {
        kinds.add(IS.find((m) => expected[m]()) ?? '')
        t.true(g instanceof fs.Stats, `${String(p)}: a Stats like fs`)
        t.deepEqual(view(g as fs.Stats), view(expected), String(p))
      }
    }
    const want = ['isFile', 'isDirectory', 'isSocket', 'isCharacterDevice', 'ENOENT', 'ENOTDIR', 'ENAMETOOLONG']
    want.push(lstat ? 'isSymbolicLink' : 'ELOOP')
    for (const k of want) t.true(kinds.has(k), `covered: ${k}`)
    if (backend() === 'io_uring') {
      // Many paths share each submission.
      const ops = after.ops - before.ops
      const enters = after.enters - before.enters
      t.true(ops >= paths.length, `${ops} ops for ${paths.length} paths`)
      t.log(`${ops} ops in ${enters} enters`)
      t.true(ops >= 32 * enters, `${ops} ops in ${enters} enters`)
    }
  })
}

test('statFiles: any concurrency gives the same, in order', async (t) => {
  const paths = await tree(t, 200)
  const base = (await statFiles(paths, { concurrency: 1 })).map((r) => (r instanceof Error ? r.message : view(r)))
  for (const concurrency of [2, 7, 1000, 2 ** 40]) {
    const got = await statFiles(paths, { concurrency })
    t.deepEqual(
      got.map((r) => (r instanceof Error ? r.message : view(r))),
      base,
      `concurrency ${concurrency}`,
    )
  }
})

test('statFiles: bad arguments throw like fs', async (t) => {
  await t.throwsAsync(() => statFiles(42 as unknown as string[]), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(() => statFiles('package.json' as unknown as string[]), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(() => statFiles([123] as never), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(() => statFiles(['a\u0000b']), { code: 'ERR_INVALID_ARG_VALUE' })
  await t.throwsAsync(() => statFiles(['package.json'], { concurrency: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(() => statFiles(['package.json'], { concurrency: 1.5 }), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(() => statFiles(['package.json'], { lstat: 1 as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(() => statFiles(['package.json'], 7 as never), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(() => statFiles(['package.json'], { bigint: true } as never), { code: 'ERR_INVALID_ARG_VALUE' })
  t.deepEqual(await statFiles([]), [])
  // Any iterable; bigint: false is the default.
  const got = await statFiles(new Set(['package.json']), { bigint: false })
  t.deepEqual(view(got[0] as fs.Stats), view(fs.statSync('package.json')))
})

test('stats() is the engine counters; stats(paths), deprecated, is statFiles with one DeprecationWarning', async (t) => {
  const counters = stats()
  t.is(typeof counters.ops, 'number')
  t.is(typeof counters.enters, 'number')
  const warnings: Error[] = []
  const onWarning = (w: Error) => warnings.push(w)
  process.on('warning', onWarning)
  try {
    const file = path.resolve('package.json')
    const [pkg, missing] = await stats([file, file + '.missing'])
    await stats([file])
    await new Promise((resolve) => setImmediate(resolve))
    if (pkg instanceof Error) return t.fail(`stat of ${file}: ${pkg.message}`)
    t.true(pkg.isFile())
    t.is(pkg.size, fs.statSync(file).size)
    t.true(missing instanceof Error)
    t.is((missing as NodeJS.ErrnoException).code, 'ENOENT')
    const ours = warnings.filter((w) => (w as NodeJS.ErrnoException).code === 'URING_FS_DEP_STATS_PATHS')
    t.is(ours.length, 1)
    t.is(ours[0].name, 'DeprecationWarning')
    t.regex(ours[0].message, /statFiles/)
  } finally {
    process.off('warning', onWarning)
  }
})
