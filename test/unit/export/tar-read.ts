/** Reads a tar file with tar-stream (an implementation independent of kiln's writer) into a map of path -> bytes. */
import { createReadStream } from 'node:fs'
import tar from 'tar-stream'

export async function readTarFile (path: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  const extract = tar.extract()
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = []
      stream.on('data', (c: unknown) => { chunks.push(c as Buffer) })
      stream.on('end', () => { if (header.type === 'file') out.set(header.name, Buffer.concat(chunks)); next() })
      stream.resume()
    })
    extract.on('finish', resolve)
    extract.on('error', reject)
  })
  createReadStream(path).pipe(extract)
  await done
  return out
}
