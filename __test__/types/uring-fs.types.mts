// Type tests for an ES module user: named imports and the default import
// resolve through the exports map too.
import uringFs, { readFile, backend } from 'uring-fs'

const text: string = await readFile('a.txt', 'utf8')
const bytes: Buffer = await uringFs.readFile('a.txt')
const which: 'io_uring' | 'fallback' | 'node' = backend()
void [text, bytes, which]
