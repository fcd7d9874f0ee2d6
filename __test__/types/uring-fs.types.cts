// Type tests (tsc --strict, through the package's exports map as a
// CommonJS user resolves it): what each call is typed as, and what it must
// refuse. A wrong type fails `npm test` at the type check.
import * as fs from 'node:fs'
import {
  type Backend,
  type PathLike,
  ReadStream,
  WriteStream,
  backend,
  createReadStream,
  createWriteStream,
  fallbackReason,
  readFile,
  readFiles,
  readFilesEach,
  sendFile,
  statFiles,
  stats,
  writeFile,
  writeFiles,
} from 'uring-fs'

/** Compiles only when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function expectType<T>(_value: T): <U>(check: Equal<T, U> extends true ? true : never) => void {
  return () => {}
}

async function check(): Promise<void> {
  // readFile: an encoding gives a string, none a Buffer.
  expectType(await readFile('a.txt'))<Buffer>(true)
  expectType(await readFile('a.txt', 'utf8'))<string>(true)
  expectType(await readFile('a.txt', { encoding: 'utf8' }))<string>(true)
  expectType(await readFile(Buffer.from('a.txt'), { flag: 'r' }))<Buffer>(true)
  expectType(await readFile(new URL('file:///a.txt'), null))<Buffer>(true)
  expectType(await readFile(await fs.promises.open('a.txt')))<Buffer>(true)
  const maybe = Math.random() < 0.5 ? ('utf8' as BufferEncoding) : undefined
  expectType(await readFile('a.txt', { encoding: maybe }))<Buffer | string>(true)
  // @ts-expect-error a path is a string, Buffer or URL
  await readFile(42)
  // @ts-expect-error not an encoding
  await readFile('a.txt', 'utf9')

  await writeFile('a.txt', 'text')
  await writeFile('a.txt', new Uint8Array(2), { flush: true, mode: 0o600 })
  await writeFile('a.txt', ['a', Buffer.from('b')])
  // @ts-expect-error data is text or bytes
  await writeFile('a.txt', 42)

  // readFiles / readFilesEach: the same rule, per file; an Error for a file that failed.
  expectType(await readFiles(['a', 'b']))<Array<Buffer | Error>>(true)
  expectType(await readFiles(['a'], 'latin1'))<Array<string | Error>>(true)
  expectType(await readFiles(['a'], { encoding: 'hex', concurrency: 8 }))<Array<string | Error>>(true)
  const names: string[] = ['a', 'b']
  for await (const [path, result] of readFilesEach(names, { encoding: 'utf8', batch: 2 })) {
    expectType(path)<string>(true)
    expectType(result)<string | Error>(true)
  }
  for await (const [path, result] of readFilesEach([new URL('file:///a')])) {
    expectType(path)<URL>(true)
    expectType(result)<Buffer | Error>(true)
  }
  // @ts-expect-error paths are PathLike
  await readFiles([1, 2])

  expectType(await statFiles(['a'], { lstat: true }))<Array<fs.Stats | Error>>(true)
  expectType(await stats(['a']))<Array<fs.Stats | Error>>(true)
  expectType(stats().ops)<number>(true)
  // @ts-expect-error BigIntStats are not supported
  await statFiles(['a'], { bigint: true })
  expectType(await writeFiles([['a', 'x'], { path: Buffer.from('b'), data: new Uint8Array(1) }]))<Array<Error | undefined>>(true)

  // Streams are fs's streams.
  const r = createReadStream('a.txt', { start: 0, end: 9, highWaterMark: 1024, readAhead: 1 << 20 })
  const rs: fs.ReadStream = r
  expectType(r.bytesRead)<number>(true)
  expectType(r.fd)<number | null>(true)
  const r2 = new ReadStream(null, { fd: 3 })
  const r3 = ReadStream('a.txt', 'utf8')
  const w = createWriteStream('b.txt', { flags: 'a', flush: true })
  const ws: fs.WriteStream = w
  expectType(w.bytesWritten)<number>(true)
  const w2 = WriteStream('b.txt')
  w2.destroySoon()
  createReadStream('a.txt', { fs: { open: fs.open, read: fs.read, close: fs.close } })
  // @ts-expect-error a start is a number
  createReadStream('a.txt', { start: '1' })
  void [rs, r2, r3, ws]

  expectType(backend())<Backend>(true)
  const b: 'io_uring' | 'fallback' | 'node' = backend()
  expectType(fallbackReason())<string | null>(true)
  const p: PathLike = new URL('file:///x')
  void [b, p, sendFile]
}
void check
