/**
 * type=s3 end to end: kiln writes a static registry site into a bucket of
 * s3rver (an independent S3-API server, in this process, on loopback) with
 * the AWS SDK; skopeo pulls from the bucket's website endpoint over plain
 * HTTP, with no server configuration, as from a registry; the objects are
 * read back and verified through the same SDK.
 *
 * How skopeo reaches the bucket: s3rver serves a bucket virtual-host style
 * (the Host header names the bucket) and as a static website when the bucket
 * has a website configuration (index document `index.html`, which answers
 * GET /v2/). So that the bucket's host name needs no DNS entry, skopeo is
 * given `HTTP_PROXY=` s3rver's own address: Go then sends
 * `GET http://registry.test:PORT/v2/...` to s3rver, with `Host:
 * registry.test:PORT`. Objects come back with the Content-Type kiln stored;
 * S3 cannot send `Docker-Content-Digest` (only `x-amz-meta-*` headers), and
 * skopeo needs none: it hashes what it gets.
 */
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/index.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { createExporter, parseOutputSpec } from '../../../src/export/index.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeMultiArch, makeStore, tempDirs } from '../../unit/export/helpers.ts'
import { freePort } from './nginx.ts'

interface S3rverInstance { run: () => Promise<unknown>, close: () => Promise<unknown> }
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor

const BUCKET = 'registry.test'
const WEBSITE = '<WebsiteConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IndexDocument><Suffix>index.html</Suffix></IndexDocument></WebsiteConfiguration>'
const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }
const run = promisify(execFile)

describe.skipIf(!haveTools('skopeo'))('s3 exporter: a bucket that skopeo pulls from', () => {
  const dirs = tempDirs()
  let store: ContentStore
  let image: Awaited<ReturnType<typeof makeMultiArch>>
  let server: S3rverInstance
  let port: number
  let endpoint: string

  const skopeo = async (...args: string[]): Promise<string> => (await run('skopeo', args, {
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dirs.make('kiln-skopeo-home-'), HTTP_PROXY: endpoint, http_proxy: endpoint, NO_PROXY: '', no_proxy: '' }
  })).stdout
  const ref = (rest: string): string => `docker://${BUCKET}:${port}/${rest}`

  beforeAll(async () => {
    store = await makeStore(dirs)
    image = await makeMultiArch(store)
    port = await freePort()
    endpoint = `http://127.0.0.1:${port}`
    server = new S3rver({ address: '127.0.0.1', port, silent: true, directory: dirs.make('kiln-s3rver-'), configureBuckets: [{ name: BUCKET, configs: [WEBSITE] }] })
    await server.run()
  })
  afterAll(async () => {
    await server?.close()
    dirs.cleanup()
  })

  it('skopeo inspects and copies the multi-arch image by tag and by digest; the SDK reads back every object intact', async () => {
    const spec = parseOutputSpec(`type=s3,bucket=${BUCKET},endpoint_url=${endpoint},use_path_style=true,name=hpc/app:1.0`)
    const r = await createExporter({ env }).export({ store, root: image.index }, spec)
    expect(r.digest).toBe(image.index.digest)

    // Through the website endpoint, as a registry client.
    const raw = await skopeo('inspect', '--tls-verify=false', '--raw', ref('hpc/app:1.0'))
    expect(sha256Digest(new TextEncoder().encode(raw))).toBe(image.index.digest)
    const arm = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--override-arch', 'arm64', ref(`hpc/app@${image.index.digest}`))) as { Digest: string, Architecture: string, Layers: string[] }
    expect(arm).toMatchObject({ Digest: image.index.digest, Architecture: 'arm64', Layers: [image.arm64.layer.digest] })
    const out = join(dirs.make(), 'copy')
    await skopeo('copy', '--src-tls-verify=false', '--all', ref('hpc/app:1.0'), `oci:${out}:1.0`)
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
    expect(index.manifests.map(m => m.digest)).toEqual([image.index.digest])
    for (const d of [image.amd64.layer.digest, image.arm64.layer.digest, image.arm64.config.digest]) {
      expect(sha256Digest(readFileSync(join(out, 'blobs/sha256', d.slice(7))))).toBe(d)
    }

    // Back through the API: every content-addressed object hashes to its name, with the right Content-Type.
    const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } })
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }))
      const keys = (listed.Contents ?? []).map(o => o.Key ?? '')
      const addressed = keys.filter(k => /\/(blobs|manifests)\/sha256:[a-f0-9]{64}$/.test(k))
      expect(addressed.length).toBe(7) // index, 2 manifests, 2 configs, 2 layers
      for (const key of addressed) {
        const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
        const bytes = await got.Body?.transformToByteArray() ?? new Uint8Array()
        expect(sha256Digest(bytes), key).toBe(key.slice(key.lastIndexOf('/') + 1))
        const type = key.includes('/blobs/') ? 'application/octet-stream' : key.endsWith(image.index.digest) ? image.index.mediaType : image.arm64.manifest.mediaType
        expect(got.ContentType, key).toBe(type)
      }
      const tag = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'v2/hpc/app/manifests/1.0' }))
      expect(tag.ContentType).toBe(image.index.mediaType)
      expect(sha256Digest(await tag.Body?.transformToByteArray() ?? new Uint8Array())).toBe(image.index.digest)
    } finally {
      client.destroy()
    }
  }, 120_000)
})
