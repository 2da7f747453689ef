/** Reads tar files with tar-stream (an implementation independent of kiln's writer). */
import { createReadStream } from 'node:fs'
import tar from 'tar-stream'
import type { Header } from 'tar-stream'

/** Calls `onEntry` with each header and the entry's bytes, in order. */
async function eachEntry (path: string, onEntry: (header: Header, bytes: Buffer) => void): Promise<void> {
  const extract = tar.extract()
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = []
      stream.on('data', (c: unknown) => { chunks.push(c as Buffer) })
      stream.on('end', () => { onEntry(header, Buffer.concat(chunks)); next() })
      stream.resume()
    })
    extract.on('finish', resolve)
    extract.on('error', reject)
  })
  createReadStream(path).pipe(extract)
  await done
}

/** The regular files of a tar file: path -> bytes. */
export async function readTarFile (path: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  await eachEntry(path, (h, bytes) => { if (h.type === 'file') out.set(h.name, bytes) })
  return out
}

/** Every header of a tar file: name (without a trailing slash) -> type, uid, gid, permission bits. */
export async function readTarHeaders (path: string): Promise<Map<string, { type: string, uid: number, gid: number, mode: number }>> {
  const out = new Map<string, { type: string, uid: number, gid: number, mode: number }>()
  await eachEntry(path, (h) => { out.set(h.name.replace(/\/$/, ''), { type: h.type ?? 'file', uid: h.uid ?? 0, gid: h.gid ?? 0, mode: (h.mode ?? 0) & 0o7777 }) })
  return out
}
