/**
 * Hand-written OCI image layouts for hostile-input tests: one image (index ->
 * manifest -> config + layers) whose layer blobs are given as gzip tars,
 * written as they are, so a test can put in a layer what no image builder
 * would write (a symlink and then a file through it, a hardlink naming a host
 * path). The image is named by the index's `org.opencontainers.image.ref.name`.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { sha256Digest } from '../../src/content/index.ts'

/** The diffID of a gzip layer; a placeholder for layers that are not valid gzip (they fail before it is checked). */
function diffId (layer: Buffer): string {
  try { return sha256Digest(gunzipSync(layer)) } catch { return sha256Digest('not gzip') }
}

/** Writes an OCI layout at `dir` holding one linux/amd64 image named `tag` with the given layer blobs (gzip tars). */
export function writeLayout (dir: string, layers: Buffer[], tag = 'evil'): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true })
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  const put = (bytes: Buffer): { digest: string, size: number } => {
    const digest = sha256Digest(bytes)
    writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes)
    return { digest, size: bytes.length }
  }
  const layerDescs = layers.map(l => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(l) }))
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map(diffId) } })))
  const manifest = put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: layerDescs })))
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }] }))
}
