/**
 * Writes a plain tar file from a list of entries, atomically: the tar goes
 * to a temp file beside dest and is renamed over it when complete. Headers
 * are kiln's deterministic ones (src/oci), so the same entries give the same
 * archive. Used by the oci-archive and docker-archive exporters.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { encodeHeader, padding } from '../oci/layer/tar-header.ts'
import type { TarHeader } from '../oci/index.ts'

export interface TarFileEntry {
  /** Path inside the archive; a directory ends with `/`. */
  name: string
  /** Bytes the data yields; a mismatch aborts the write. */
  size: number
  /** The file's bytes (absent for a directory). */
  data?: Uint8Array | (() => AsyncIterable<Uint8Array>)
}

function header (e: TarFileEntry): TarHeader {
  const dir = e.name.endsWith('/')
  return { name: e.name, type: dir ? 'directory' : 'file', mode: dir ? 0o755 : 0o644, uid: 0, gid: 0, size: dir ? 0 : e.size, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0 }
}

export async function writeTarFile (dest: string, entries: Iterable<TarFileEntry> | AsyncIterable<TarFileEntry>, signal?: AbortSignal): Promise<void> {
  await mkdir(dirname(dest), { recursive: true })
  const tmp = `${dest}.tmp-${randomBytes(6).toString('hex')}`
  const fh = await open(tmp, 'wx', 0o644)
  let ok = false
  try {
    for await (const e of entries) {
      signal?.throwIfAborted()
      await fh.write(encodeHeader(header(e)))
      if (e.name.endsWith('/')) continue
      let written = 0
      const chunks = e.data === undefined ? [] : e.data instanceof Uint8Array ? [e.data] : e.data()
      for await (const chunk of chunks) {
        written += chunk.byteLength
        if (written > e.size) throw new Error(`tar entry ${e.name}: more than the ${e.size} bytes announced`)
        await fh.write(chunk)
        signal?.throwIfAborted()
      }
      if (written !== e.size) throw new Error(`tar entry ${e.name}: ${written} bytes, ${e.size} announced`)
      const pad = padding(e.size)
      if (pad > 0) await fh.write(Buffer.alloc(pad))
    }
    await fh.write(Buffer.alloc(1024)) // two zero blocks end the archive
    await fh.sync()
    ok = true
  } finally {
    await fh.close()
    if (!ok) await rm(tmp, { force: true })
  }
  try {
    await rename(tmp, dest)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
