// The ES module entry: the CommonJS package (index.js), export by export.
import pkg from './index.js'

export const {
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
} = pkg
export default pkg
