import test from 'ava'
import { readFileSync } from 'node:fs'
import { createReadStream, backend } from '../index'

test('reads package.json like fs', async (t) => {
  const chunks: Buffer[] = []
  for await (const c of createReadStream('package.json')) chunks.push(c as Buffer)
  t.deepEqual(Buffer.concat(chunks), readFileSync('package.json'))
  t.is(backend(), process.env.URING_FS_BACKEND === 'fallback' ? 'fallback' : 'io_uring')
})
