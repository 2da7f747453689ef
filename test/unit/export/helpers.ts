/**
 * Test images for the exporters: single-layer images built with src/oci's
 * layer writer for a platform, and a two-platform index over them, in a
 * fresh content store under a temp dir.
 */
import { join } from 'node:path'
import { tempDirs as makeTempDirs } from '../../helpers/temp.ts'
import type { TempDirs } from '../../helpers/temp.ts'
import { createFsContentStore } from '../../../src/content/index.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, encodeJson, writeLayer } from '../../../src/oci/index.ts'
import type { Descriptor } from '../../../src/oci/index.ts'

export type { TempDirs } from '../../helpers/temp.ts'

export function tempDirs (): TempDirs {
  return makeTempDirs('kiln-export-')
}

export async function makeStore (dirs: TempDirs): Promise<ContentStore> {
  return await createFsContentStore({ root: join(dirs.make('kiln-export-store-'), 'store') })
}

async function putJson (store: ContentStore, mediaType: string, value: unknown, extra: Partial<Descriptor> = {}): Promise<Descriptor> {
  const bytes = encodeJson(value)
  const info = await store.ingest(bytes)
  return { mediaType, digest: info.digest, size: info.size, ...extra }
}

export interface TestImage {
  manifest: Descriptor
  config: Descriptor
  layer: Descriptor
  diffId: string
  /** What the layer's one file says. */
  content: string
}

/** One image: a gzip layer holding /hello.txt (and /etc/), for the platform. */
export async function makeImage (store: ContentStore, arch: string, content = `hello from ${arch}\n`): Promise<TestImage> {
  const layer = await writeLayer(store, [
    { type: 'directory', path: 'etc', mode: 0o755 },
    { type: 'file', path: 'hello.txt', mode: 0o644, content: new TextEncoder().encode(content) }
  ], { compression: 'gzip', sourceDateEpoch: 0 })
  const config = await putJson(store, OCI_CONFIG, {
    architecture: arch,
    os: 'linux',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created_by: 'kiln test' }]
  })
  const manifest = await putJson(store, OCI_MANIFEST, { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer.descriptor] })
  return { manifest, config, layer: layer.descriptor, diffId: layer.diffId, content }
}

/** linux/amd64 and linux/arm64 images and an index over them. */
export async function makeMultiArch (store: ContentStore): Promise<{ index: Descriptor, amd64: TestImage, arm64: TestImage }> {
  const amd64 = await makeImage(store, 'amd64')
  const arm64 = await makeImage(store, 'arm64')
  const index = await putJson(store, OCI_INDEX, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { ...amd64.manifest, platform: { os: 'linux', architecture: 'amd64' } },
      { ...arm64.manifest, platform: { os: 'linux', architecture: 'arm64' } }
    ]
  })
  return { index, amd64, arm64 }
}
