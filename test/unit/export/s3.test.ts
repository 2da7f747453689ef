/**
 * type=s3 through the real AWS SDK v3 client against s3rver, an independent
 * S3-compatible fake server (npm, in-process, loopback). What this proves:
 * kiln's requests (signed PutObject with Content-Type, HeadObject for
 * incremental updates, GetObject for the sidecar, prefix and path-style
 * addressing) work against an S3 implementation that is not ours. What it
 * does not prove: AWS, MinIO or Ceph behaviour, multipart, or website
 * hosting in front of a real client; there is no S3 server in Debian to do
 * that with.
 */
import { createRequire } from 'node:module'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { createExporter, parseOutputSpec } from '../../../src/export/index.ts'
import type { ExportProgress } from '../../../src/export/index.ts'
import { freePort } from '../../e2e/export/nginx.ts'
import { makeImage, makeMultiArch, makeStore, tempDirs } from './helpers.ts'

interface S3rverInstance { run: () => Promise<unknown>, close: () => Promise<unknown> }
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor

const dirs = tempDirs()
let store: ContentStore
let image: Awaited<ReturnType<typeof makeMultiArch>>
let server: S3rverInstance
let endpoint: string
const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }

beforeAll(async () => {
  store = await makeStore(dirs)
  image = await makeMultiArch(store)
  const port = await freePort()
  server = new S3rver({ address: '127.0.0.1', port, silent: true, directory: dirs.make('kiln-s3rver-'), configureBuckets: [{ name: 'site' }] })
  await server.run()
  endpoint = `http://127.0.0.1:${port}`
})
afterAll(async () => {
  await server?.close()
  dirs.cleanup()
})

async function get (path: string): Promise<Response> {
  return await fetch(`${endpoint}/site/reg/${path}`)
}

describe('s3 exporter', () => {
  it('uploads the static site layout with a Content-Type on every object', async () => {
    const spec = parseOutputSpec(`type=s3,bucket=site,prefix=reg,endpoint_url=${endpoint},use_path_style=true,name=hpc/app:1.0`)
    const r = await createExporter({ env }).export({ store, root: image.index }, spec)
    expect(r).toEqual({ description: 's3://site/reg (hpc/app:1.0)', digest: image.index.digest })
    const tag = await get('v2/hpc/app/manifests/1.0')
    expect(tag.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json')
    expect(sha256Digest(new Uint8Array(await tag.arrayBuffer()))).toBe(image.index.digest)
    const byDigest = await get(`v2/hpc/app/manifests/${image.arm64.manifest.digest}`)
    expect(byDigest.headers.get('content-type')).toBe('application/vnd.oci.image.manifest.v1+json')
    await byDigest.body?.cancel()
    const layer = await get(`v2/hpc/app/blobs/${image.arm64.layer.digest}`)
    expect(sha256Digest(new Uint8Array(await layer.arrayBuffer()))).toBe(image.arm64.layer.digest)
    const list = await get('v2/hpc/app/tags/list')
    expect(list.headers.get('content-type')).toBe('application/json')
    expect(await list.json()).toEqual({ name: 'hpc/app', tags: ['1.0'] })
    expect(await (await get('v2/index.json')).json()).toEqual({})
  })

  it('updates incrementally: only the new image is uploaded, tags/list grows', async () => {
    const extra = await makeImage(store, 'amd64', 'another\n')
    const events: ExportProgress[] = []
    const spec = parseOutputSpec(`type=s3,bucket=site,prefix=reg,endpoint_url=${endpoint},use_path_style=true`)
    await createExporter({ env }).export({ store, root: extra.manifest }, spec, { tags: ['hpc/app:2.0'], onProgress: e => events.push(e) })
    const uploaded = events.filter(e => e.event === 'blob' || e.event === 'manifest').map(e => e.digest)
    // The new config, layer and manifest; nothing of the first image.
    expect(uploaded.sort()).toEqual([extra.config.digest, extra.layer.digest, extra.manifest.digest].sort())
    expect(await (await get('v2/hpc/app/tags/list')).json()).toEqual({ name: 'hpc/app', tags: ['1.0', '2.0'] })
  })

  it('reports refused credentials as ObjectStoreError', async () => {
    const spec = parseOutputSpec(`type=s3,bucket=site,endpoint_url=${endpoint},use_path_style=true,name=a:1,access_key_id=nobody,secret_access_key=wrong`)
    await expect(createExporter({ env: {} }).export({ store, root: image.amd64.manifest }, spec)).rejects.toMatchObject({ name: 'ObjectStoreError' })
  })
})
