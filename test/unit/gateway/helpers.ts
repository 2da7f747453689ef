/**
 * A gateway over a real fs content store and sqlite db in a temp dir, and an
 * inject helper that calls it in-process (no socket).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createFsContentStore } from '../../../src/content/fs-store.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { openDb } from '../../../src/db/index.ts'
import type { KilnDb } from '../../../src/db/index.ts'
import { createRefStore } from '../../../src/content/refs.ts'
import type { RefStore } from '../../../src/content/refs.ts'
import { sha256Digest } from '../../../src/content/digest.ts'
import type { Digest } from '../../../src/content/digest.ts'
import { createGateway } from '../../../src/gateway/index.ts'
import type { Gateway, GatewayInit } from '../../../src/gateway/index.ts'

export interface TestGateway {
  gateway: Gateway
  store: ContentStore
  refs: RefStore
  db: KilnDb
  dir: string
  inject: (method: string, url: string, options?: InjectOptions) => Promise<InjectResult>
  cleanup: () => Promise<void>
}

export interface InjectOptions {
  headers?: Record<string, string>
  body?: Uint8Array | string
  /** The client's address, as a socket would give it. */
  remoteAddress?: string
}

export interface InjectResult {
  status: number
  headers: Record<string, string>
  body: Buffer
  json: () => unknown
}

export async function makeGateway (init: Partial<GatewayInit> = {}): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-gw-'))
  const store = await createFsContentStore({ root: join(dir, 'store') })
  const db = openDb(join(dir, 'kiln.db'))
  const refs = createRefStore(db)
  const gateway = createGateway({ store, refs, db, uploadDir: join(dir, 'uploads'), deleteEnabled: true, ...init })
  const inject = async (method: string, url: string, options: InjectOptions = {}): Promise<InjectResult> => {
    const bytes = options.body === undefined ? undefined : Buffer.from(options.body)
    const headers: Record<string, string> = { host: 'registry.test', ...(bytes === undefined ? {} : { 'content-length': String(bytes.byteLength) }) }
    for (const [k, v] of Object.entries(options.headers ?? {})) headers[k.toLowerCase()] = v
    const res = await gateway.handle({
      method,
      url,
      headers,
      body: (async function * () { if (bytes !== undefined && bytes.byteLength > 0) yield bytes })(),
      ...(options.remoteAddress === undefined ? {} : { remoteAddress: options.remoteAddress })
    })
    const chunks: Uint8Array[] = []
    if (res.body instanceof Uint8Array) chunks.push(res.body)
    else if (res.body !== undefined && method !== 'HEAD') for await (const c of res.body) chunks.push(c)
    const body = Buffer.concat(chunks)
    return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) }
  }
  return {
    gateway,
    store,
    refs,
    db,
    dir,
    inject,
    cleanup: async () => {
      await gateway.close()
      db.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

export interface TestImage {
  config: { bytes: Buffer, digest: Digest }
  layer: { bytes: Buffer, digest: Digest }
  manifest: { bytes: Buffer, digest: Digest }
}

export function blob (text: string): { bytes: Buffer, digest: Digest } {
  const bytes = Buffer.from(text)
  return { bytes, digest: sha256Digest(bytes) }
}

/** An OCI image manifest with one config and one layer (not a real tar: the gateway does not look). */
export function testImage (seed = 'a', extra: Record<string, unknown> = {}): TestImage {
  const config = blob(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }))
  const layer = blob(`layer-${seed}`)
  const manifest = blob(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.bytes.byteLength },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.bytes.byteLength }],
    ...extra
  }))
  return { config, layer, manifest }
}

/** Pushes an image's blobs monolithically and its manifest under a reference. */
export async function pushImage (t: TestGateway, repo: string, image: TestImage, reference: string, headers: Record<string, string> = {}): Promise<InjectResult> {
  for (const b of [image.config, image.layer]) {
    const r = await t.inject('POST', `/v2/${repo}/blobs/uploads/?digest=${b.digest}`, { body: b.bytes, headers })
    if (r.status !== 201) throw new Error(`blob push failed: ${r.status} ${r.body.toString()}`)
  }
  return await t.inject('PUT', `/v2/${repo}/manifests/${reference}`, {
    body: image.manifest.bytes,
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...headers }
  })
}
