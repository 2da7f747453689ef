/**
 * Pushes a one-layer image to a registry with plain distribution API calls
 * (monolithic blob uploads, then the manifest as `bench/img:v1`), the same
 * way to every server a bench compares (test/bench/gateway.ts,
 * test/bench/pullthrough.ts). Returns the manifest's and config's digests.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'

export async function pushImage (base: string, layer: { path: string, digest: string, size: number }): Promise<{ manifest: string, config: string }> {
  const upload = async (digest: string, body: Buffer | Readable, size: number): Promise<void> => {
    const start = await fetch(`${base}/v2/bench/img/blobs/uploads/`, { method: 'POST' })
    await start.body?.cancel()
    const location = new URL(start.headers.get('location') as string, base)
    location.searchParams.set('digest', digest)
    const res = await fetch(location, { method: 'PUT', body: body instanceof Readable ? Readable.toWeb(body) as ReadableStream : body, headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' }, duplex: 'half' } as RequestInit)
    if (res.status !== 201) throw new Error(`upload to ${base} failed: ${res.status} ${await res.text()}`)
  }
  await upload(layer.digest, createReadStream(layer.path, { highWaterMark: 1 << 20 }), layer.size)
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: {} }))
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`
  await upload(configDigest, config, config.byteLength)
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }]
  })
  const res = await fetch(`${base}/v2/bench/img/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } })
  if (res.status !== 201) throw new Error(`manifest push to ${base} failed: ${res.status} ${await res.text()}`)
  return { manifest: `sha256:${createHash('sha256').update(manifest).digest('hex')}`, config: configDigest }
}
