/**
 * Writes layer entries as a deterministic gzip tar layer into the content
 * store: entries in the given (sorted) order, owners 0:0 without names,
 * mtimes clamped to SOURCE_DATE_EPOCH, no device nodes. Same entries and
 * content, same bytes, on any node.
 *
 * TODO(oci): src/oci/layer/write.ts (the shared deterministic writer) had
 * not landed when this was written; switch to it once it has, so that one
 * writer serves both modules.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { PassThrough } from 'node:stream'
import { createGzip } from 'node:zlib'
import tar from 'tar-stream'
import type { Header as TarHeader, Pack } from 'tar-stream'
import type { ContentStore, Digest } from '../content/index.ts'
import { GZIP_LEVEL, OCI_LAYER_TAR_GZIP } from '../oci/index.ts'
import type { LayerEntry } from './entries.ts'

export interface WrittenLayer {
  descriptor: { mediaType: string, digest: Digest, size: number }
  diffId: Digest
}

const WHITEOUT = '.wh.'
const OPAQUE = '.wh..wh..opq'

function whiteoutName (path: string): string {
  const slash = path.lastIndexOf('/')
  return slash < 0 ? `${WHITEOUT}${path}` : `${path.slice(0, slash + 1)}${WHITEOUT}${path.slice(slash + 1)}`
}

async function packEntries (pack: Pack, entries: LayerEntry[], epochMs: number): Promise<void> {
  const clamp = (ms: number): Date => new Date(Math.floor(Math.min(ms, epochMs) / 1000) * 1000)
  const base = { uid: 0, gid: 0, uname: '', gname: '' }
  const add = async (header: Partial<TarHeader> & Pick<TarHeader, 'name'>, body?: string): Promise<void> => {
    await new Promise<void>((resolve, reject) => { pack.entry(header, body ?? '', err => { if (err != null) reject(err); else resolve() }) })
  }
  for (const e of entries) {
    switch (e.type) {
      case 'dir': await add({ ...base, name: `${e.path}/`, type: 'directory', mode: e.mode, mtime: clamp(e.mtimeMs) }); break
      case 'symlink': await add({ ...base, name: e.path, type: 'symlink', mode: 0o777, linkname: e.target, mtime: clamp(e.mtimeMs) }); break
      case 'whiteout': await add({ ...base, name: whiteoutName(e.path), type: 'file', mode: 0o644, mtime: new Date(0) }); break
      case 'opaque': await add({ ...base, name: `${e.path}/${OPAQUE}`, type: 'file', mode: 0o644, mtime: new Date(0) }); break
      case 'file': {
        const sink = pack.entry({ ...base, name: e.path, type: 'file', mode: e.mode, size: e.size, mtime: clamp(e.mtimeMs) })
        await pipeline(createReadStream(e.source), sink)
        break
      }
    }
  }
  pack.finalize()
}

/** Tars, gzips and ingests the entries; returns the blob descriptor and the diffID. */
export async function writeLayer (store: ContentStore, entries: LayerEntry[], sourceDateEpoch: number): Promise<WrittenLayer> {
  const pack = tar.pack()
  const tarHash = createHash('sha256')
  const gzip = createGzip({ level: GZIP_LEVEL })
  const hashing = new PassThrough()
  hashing.on('data', (c: Buffer) => tarHash.update(c))
  const packing = packEntries(pack, entries, sourceDateEpoch * 1000)
  const piping = pipeline(pack, hashing, gzip)
  const [info] = await Promise.all([store.ingest(gzip), packing, piping])
  return {
    descriptor: { mediaType: OCI_LAYER_TAR_GZIP, digest: info.digest, size: info.size },
    diffId: `sha256:${tarHash.digest('hex')}`
  }
}
