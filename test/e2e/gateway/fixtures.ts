/**
 * Test images for the gateway e2e tests: an OCI layout holding a
 * multi-platform index (one small real tar layer per platform), written
 * without external tools so the digests are known up front.
 */
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'

export interface LayoutImage {
  /** Digest of the index the layout's tag names. */
  index: string
  /** Digest of each platform's manifest, in platform order. */
  manifests: string[]
  /** Every blob written (index, manifests, configs, layers). */
  blobs: string[]
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** A one-file ustar archive (512-byte header, data padded to 512, two zero blocks). */
export function tarOf (name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512)
  header.write(name, 0, 100, 'utf8')
  header.write('0000644\0', 100)
  header.write('0000000\0', 108)
  header.write('0000000\0', 116)
  header.write(content.byteLength.toString(8).padStart(11, '0') + '\0', 124)
  header.write('00000000000\0', 136)
  header.write('        ', 148)
  header.write('0', 156)
  header.write('ustar\0', 257)
  header.write('00', 263)
  let sum = 0
  for (const b of header) sum += b
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  const pad = Buffer.alloc((512 - (content.byteLength % 512)) % 512)
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)])
}

export async function writeMultiArchLayout (dir: string, tag: string, platforms: Array<{ os: string, architecture: string }>, seed = 'kiln'): Promise<LayoutImage> {
  const blobsDir = join(dir, 'blobs', 'sha256')
  await mkdir(blobsDir, { recursive: true })
  const blobs: string[] = []
  const put = async (bytes: Buffer): Promise<string> => {
    const d = sha(bytes)
    await writeFile(join(blobsDir, d.slice(7)), bytes)
    blobs.push(d)
    return d
  }
  const manifests: Array<{ mediaType: string, digest: string, size: number, platform: { os: string, architecture: string } }> = []
  for (const p of platforms) {
    // gzip: clients copy it as it is (an uncompressed layer would be compressed on push, changing digests).
    const layer = gzipSync(tarOf(`hello-${p.architecture}.txt`, Buffer.from(`${seed} ${p.os}/${p.architecture}\n`)))
    const layerDigest = await put(layer)
    const config = Buffer.from(JSON.stringify({ architecture: p.architecture, os: p.os, rootfs: { type: 'layers', diff_ids: [sha(gunzipSync(layer))] }, config: {} }))
    const configDigest = await put(config)
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.byteLength }]
    }))
    manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: await put(manifest), size: manifest.byteLength, platform: p })
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }))
  const indexDigest = await put(index)
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: index.byteLength, annotations: { 'org.opencontainers.image.ref.name': tag } }]
  }))
  return { index: indexDigest, manifests: manifests.map(m => m.digest), blobs }
}
