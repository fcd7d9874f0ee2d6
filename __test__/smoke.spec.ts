import test from 'ava'
import { readFileSync } from 'node:fs'
import { createReadStream, backend } from 'uring-fs'
import { AUTO_BACKEND } from './helpers'

test('reads package.json like fs', async (t) => {
  const chunks: Buffer[] = []
  for await (const c of createReadStream('package.json')) chunks.push(c as Buffer)
  t.deepEqual(Buffer.concat(chunks), readFileSync('package.json'))
  const forced = process.env.URING_FS_BACKEND
  t.is(backend(), forced === 'fallback' || forced === 'node' ? forced : AUTO_BACKEND)
})
