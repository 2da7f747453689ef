/**
 * oci-layout, oci-archive and docker-archive: written from a store holding a
 * two-platform index, read back with src/oci's layout reader and with
 * tar-stream, every blob checked against its digest.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { digestHex, sha256Digest } from '../../../src/content/index.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { createExporter, parseOutputSpec } from '../../../src/export/index.ts'
import type { ExportProgress } from '../../../src/export/index.ts'
import { collectImage } from '../../../src/oci/index.ts'
import { readOciLayout, selectLayoutEntries } from '../../../src/oci/index.ts'
import { makeMultiArch, makeStore, tempDirs } from './helpers.ts'
import type { TestImage } from './helpers.ts'
import { readTarFile } from './tar-read.ts'

const dirs = tempDirs()
let store: ContentStore
let image: Awaited<ReturnType<typeof makeMultiArch>>
beforeEach(async () => {
  store = await makeStore(dirs)
  image = await makeMultiArch(store)
})
afterEach(() => { dirs.cleanup() })

const exporter = createExporter()

describe('oci-layout', () => {
  it('writes every blob of a multi-arch index and names entries by tag', async () => {
    const dest = join(dirs.make(), 'layout')
    const events: ExportProgress[] = []
    const r = await exporter.export({ store, root: image.index }, parseOutputSpec(`type=oci-layout,dest=${dest}`), { tags: ['hpc/app:1.0'], onProgress: e => events.push(e) })
    expect(r).toEqual({ description: `oci:${dest}:1.0`, digest: image.index.digest })
    const index = await readOciLayout(dest)
    const [entry] = selectLayoutEntries(index, '1.0', dest)
    expect(entry?.descriptor.digest).toBe(image.index.digest)
    expect(entry?.descriptor.annotations?.['io.containerd.image.name']).toBe('hpc/app:1.0')
    const blobs = await collectImage(store, image.index)
    expect(blobs.length).toBe(7) // index, 2 manifests, 2 configs, 2 layers
    for (const b of blobs) expect(sha256Digest(readFileSync(join(dest, 'blobs/sha256', digestHex(b.descriptor.digest))))).toBe(b.descriptor.digest)
  })

  it('merges a second export into the same layout, keeping the first tag', async () => {
    const dest = join(dirs.make(), 'layout')
    await exporter.export({ store, root: image.index }, parseOutputSpec(`oci:${dest}:multi`))
    await exporter.export({ store, root: image.arm64.manifest }, parseOutputSpec(`oci:${dest}:arm`))
    const index = await readOciLayout(dest)
    expect(selectLayoutEntries(index, 'multi', dest)[0]?.descriptor.digest).toBe(image.index.digest)
    expect(selectLayoutEntries(index, 'arm', dest)[0]?.descriptor.digest).toBe(image.arm64.manifest.digest)
  })
})

describe('oci-archive', () => {
  it('is a tar of a layout with oci-layout, index.json and every blob', async () => {
    const dest = join(dirs.make(), 'out', 'img.tar')
    const r = await exporter.export({ store, root: image.index }, parseOutputSpec(`type=oci,dest=${dest},name=v2`))
    expect(r.description).toBe(`oci-archive:${dest}:v2`)
    const files = await readTarFile(dest)
    expect(JSON.parse(files.get('oci-layout')?.toString() ?? '')).toEqual({ imageLayoutVersion: '1.0.0' })
    const index = JSON.parse(files.get('index.json')?.toString() ?? '') as { manifests: Array<{ digest: string, annotations: Record<string, string> }> }
    expect(index.manifests).toHaveLength(1)
    expect(index.manifests[0]?.digest).toBe(image.index.digest)
    expect(index.manifests[0]?.annotations['org.opencontainers.image.ref.name']).toBe('v2')
    const blobNames = [...files.keys()].filter(n => n.startsWith('blobs/sha256/'))
    expect(blobNames).toHaveLength(7)
    for (const n of blobNames) expect(sha256Digest(files.get(n) as Buffer)).toBe(`sha256:${n.slice('blobs/sha256/'.length)}`)
    expect([...files.keys()].some(n => n.includes('.tmp-'))).toBe(false)
  })

  it('leaves no file behind when aborted', async () => {
    const dest = join(dirs.make(), 'img.tar')
    const ac = new AbortController()
    ac.abort()
    await expect(exporter.export({ store, root: image.index }, parseOutputSpec(`oci-archive:${dest}`), { signal: ac.signal })).rejects.toThrow()
    expect(existsSync(dest)).toBe(false)
  })
})

describe('docker-archive', () => {
  async function checkArchive (dest: string, want: TestImage, repoTags: string[]): Promise<void> {
    const files = await readTarFile(dest)
    const manifest = JSON.parse(files.get('manifest.json')?.toString() ?? '') as Array<{ Config: string, RepoTags: string[], Layers: string[] }>
    expect(manifest).toHaveLength(1)
    const m = manifest[0] as { Config: string, RepoTags: string[], Layers: string[] }
    expect(m.RepoTags).toEqual(repoTags)
    expect(sha256Digest(files.get(m.Config) as Buffer)).toBe(want.config.digest)
    expect(m.Layers).toHaveLength(1)
    const layer = files.get(m.Layers[0] as string) as Buffer
    // Uncompressed: the tar itself, whose digest is the diffID, equal to the gunzipped blob.
    expect(`sha256:${createHash('sha256').update(layer).digest('hex')}`).toBe(want.diffId)
    expect(layer.equals(gunzipSync(readFileSync(await store.path(want.layer.digest))))).toBe(true)
  }

  it('writes the docker save format for the platform asked for', async () => {
    const dest = join(dirs.make(), 'img.tar')
    const r = await exporter.export({ store, root: image.index }, parseOutputSpec(`type=docker-archive,dest=${dest},name=hpc/app:1,platform=linux/arm64`))
    expect(r.digest).toBe(image.arm64.config.digest)
    await checkArchive(dest, image.arm64, ['hpc/app:1'])
  })

  it('takes a single manifest as it is and tags default to latest', async () => {
    const dest = join(dirs.make(), 'img.tar')
    await exporter.export({ store, root: image.amd64.manifest }, parseOutputSpec(`docker-archive:${dest}`), { tags: ['hpc/app'] })
    await checkArchive(dest, image.amd64, ['hpc/app:latest'])
  })

  it('refuses a platform the index does not have', async () => {
    const dest = join(dirs.make(), 'img.tar')
    await expect(exporter.export({ store, root: image.index }, parseOutputSpec(`type=docker-archive,dest=${dest},platform=linux/ppc64le`)))
      .rejects.toMatchObject({ name: 'PlatformNotFoundError' })
    expect(existsSync(dest)).toBe(false)
  })
})
