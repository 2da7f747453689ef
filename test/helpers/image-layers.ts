/**
 * The layers of an image in an OCI image layout, read back for assertions:
 * each layer blob decompressed (gzip, zstd or plain, told by its magic
 * bytes) and split into entries with tar-stream, an implementation
 * independent of kiln's. A layer's `tar` is the whole uncompressed stream, so
 * a search for bytes in it also covers names, link targets and headers.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { gunzipSync, zstdDecompressSync } from 'node:zlib'
import tar from 'tar-stream'

export interface LayerEntry {
  /** The entry's path, without a leading `./` or `/` or a trailing `/`. */
  name: string
  /** tar-stream's type: file, directory, symlink, link (hardlink)... */
  type: string
  linkname?: string
  /** Numeric owner and permission bits (0o7777) as the tar header says. */
  uid: number
  gid: number
  mode: number
  body: Buffer
}

export interface ImageLayer {
  digest: string
  tar: Buffer
  entries: LayerEntry[]
}

const GZIP = Buffer.from([0x1f, 0x8b])
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])

function uncompressed (blob: Buffer): Buffer {
  if (blob.subarray(0, 2).equals(GZIP)) return gunzipSync(blob)
  if (blob.subarray(0, 4).equals(ZSTD)) return zstdDecompressSync(blob)
  return blob
}

async function entriesOf (bytes: Buffer): Promise<LayerEntry[]> {
  const out: LayerEntry[] = []
  const extract = tar.extract()
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = []
      stream.on('data', (c: unknown) => { chunks.push(c as Buffer) })
      stream.on('end', () => {
        out.push({ name: header.name.replace(/^\.?\//, '').replace(/\/$/, ''), type: header.type ?? 'file', ...(header.linkname != null ? { linkname: header.linkname } : {}), uid: header.uid ?? 0, gid: header.gid ?? 0, mode: (header.mode ?? 0) & 0o7777, body: Buffer.concat(chunks) })
        next()
      })
      stream.resume()
    })
    extract.on('finish', resolve)
    extract.on('error', reject)
  })
  Readable.from([bytes]).pipe(extract)
  await done
  return out
}

/** The layer blobs as stored (compressed), bottom first, of the image the layout's index names `tag` (or of its only image). */
export function readLayoutBlobs (dir: string, tag?: string): Array<{ digest: string, blob: Buffer }> {
  const blob = (digest: string): Buffer => readFileSync(join(dir, 'blobs/sha256', digest.replace(/^sha256:/, '')))
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string, annotations?: Record<string, string> }> }
  const entry = tag === undefined ? index.manifests[0] : index.manifests.find(m => m.annotations?.['org.opencontainers.image.ref.name'] === tag)
  if (entry === undefined) throw new Error(`no image ${tag ?? ''} in the layout at ${dir}`)
  const manifest = JSON.parse(blob(entry.digest).toString('utf8')) as { layers: Array<{ digest: string }> }
  return manifest.layers.map(l => ({ digest: l.digest, blob: blob(l.digest) }))
}

/** The layers, uncompressed and split into entries, bottom first (see readLayoutBlobs). */
export async function readLayoutLayers (dir: string, tag?: string): Promise<ImageLayer[]> {
  const layers: ImageLayer[] = []
  for (const { digest, blob } of readLayoutBlobs(dir, tag)) {
    const bytes = uncompressed(blob)
    layers.push({ digest, tar: bytes, entries: await entriesOf(bytes) })
  }
  return layers
}
