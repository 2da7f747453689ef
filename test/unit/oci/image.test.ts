import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { digestHex, sha256Digest } from '../../../src/content/index.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import {
  OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST, collectImage, encodeJson, exportImage, importImage, parseImageRef,
  readOciLayout, unpackImage, walkImage
} from '../../../src/oci/index.ts'
import type { Descriptor } from '../../../src/oci/index.ts'
import { blobCount, buildTar, makeImage, makeStore, snapshot, tempDirs } from './helpers.ts'

const dirs = tempDirs()
afterEach(() => { dirs.cleanup() })

const EXPECTED_ROOTFS = { c: 'file:755:c-x', dir: 'dir:755', 'dir/b': 'file:600:b' }

async function unpacked (store: ContentStore, d: Descriptor): Promise<Record<string, string>> {
  const out = dirs.make()
  await unpackImage(store, d, out)
  return snapshot(out)
}

async function errorOf (p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try { await p } catch (err) { return err as Error & Record<string, unknown> }
  throw new Error('expected a rejection')
}

describe('graph', () => {
  it('walks every blob once, parents first, and names what references a missing blob', async () => {
    const store = await makeStore(dirs)
    const img = await makeImage(store)
    const walked = await collectImage(store, img.manifest)
    expect(walked.map(w => w.descriptor.digest)).toEqual([img.manifest.digest, img.config.digest, ...img.layers.map(l => l.digest)])
    await store.delete(img.layers[1]?.digest as `sha256:${string}`)
    const err = await errorOf(collectImage(store, img.manifest))
    expect(err.name).toBe('BlobMissingError')
    expect(err.digest).toBe(img.layers[1]?.digest)
    expect(err.message).toContain(img.manifest.digest)
  })
})

describe('OCI layout and oci-archive', () => {
  it('round-trips through a layout with digests unchanged, and merges into an existing layout', async () => {
    const a = await makeStore(dirs)
    const img = await makeImage(a)
    const other = await makeImage(a, 'y')
    const layout = join(dirs.make(), 'layout')
    await exportImage(a, img.manifest, { format: 'oci-layout', dest: layout, refName: 'v1' })
    await exportImage(a, other.manifest, { format: 'oci-layout', dest: layout, refName: 'v2' })
    await exportImage(a, img.manifest, { format: 'oci-layout', dest: layout, refName: 'v2' })
    const index = await readOciLayout(layout)
    expect(index.manifests.map(d => [d.annotations?.['org.opencontainers.image.ref.name'], d.digest])).toEqual([['v1', img.manifest.digest], ['v2', img.manifest.digest]])
    // The store keeps blobs private (0400); a layout is for others to read.
    expect((await stat(await a.path(img.manifest.digest))).mode & 0o777).toBe(0o400)
    expect((await stat(join(layout, 'blobs', 'sha256', img.manifest.digest.slice(7)))).mode & 0o777).toBe(0o444)

    const b = await makeStore(dirs)
    const roots = await importImage(b, parseImageRef(`oci:${layout}:v1`))
    expect(roots).toHaveLength(1)
    expect(roots[0]?.refName).toBe('v1')
    expect(roots[0]?.descriptor.digest).toBe(img.manifest.digest)
    expect(await unpacked(b, img.manifest)).toEqual(EXPECTED_ROOTFS)
    expect(await blobCount(b)).toBe(4)
  })

  it('round-trips through an oci-archive; the archive is deterministic', async () => {
    const a = await makeStore(dirs)
    const img = await makeImage(a)
    const d = dirs.make()
    await exportImage(a, img.manifest, { format: 'oci-archive', dest: join(d, '1.tar'), refName: 'latest' })
    await exportImage(a, img.manifest, { format: 'oci-archive', dest: join(d, '2.tar'), refName: 'latest' })
    expect(sha256Digest(readFileSync(join(d, '1.tar')))).toBe(sha256Digest(readFileSync(join(d, '2.tar'))))
    const b = await makeStore(dirs)
    const roots = await importImage(b, parseImageRef(`oci-archive:${join(d, '1.tar')}:latest`))
    expect(roots[0]?.descriptor.digest).toBe(img.manifest.digest)
    expect(await unpacked(b, img.manifest)).toEqual(EXPECTED_ROOTFS)
    expect(await errorOf(importImage(b, parseImageRef(`oci-archive:${join(d, '1.tar')}:nope`)))).toMatchObject({ name: 'ImageNotFoundError' })
    writeFileSync(join(d, '1.tar.gz'), gzipSync(readFileSync(join(d, '1.tar'))))
    expect(await errorOf(importImage(b, parseImageRef(`oci-archive:${join(d, '1.tar.gz')}`)))).toMatchObject({ name: 'ArchiveInvalidError', message: expect.stringMatching(/gzip-compressed/) })
    writeFileSync(join(d, 'junk.tar'), Buffer.alloc(1000, 7))
    expect(await errorOf(importImage(b, parseImageRef(`oci-archive:${join(d, 'junk.tar')}`)))).toMatchObject({ name: 'ArchiveInvalidError' })
  })

  it('reports progress: an export its bytes written, an import each blob stored with its size', async () => {
    const a = await makeStore(dirs)
    const img = await makeImage(a)
    const d = dirs.make()
    const written: number[] = []
    await exportImage(a, img.manifest, { format: 'oci-archive', dest: join(d, 'p.tar'), refName: 'latest', onProgress: n => { written.push(n) } })
    expect(written.length).toBeGreaterThan(0)
    expect([...written].sort((x, y) => x - y)).toEqual(written)
    expect(written.at(-1)).toBe((await stat(join(d, 'p.tar'))).size)
    const layoutWritten: number[] = []
    await exportImage(a, img.manifest, { format: 'oci-layout', dest: join(d, 'layout'), onProgress: n => { layoutWritten.push(n) } })
    const sizes = [img.manifest, img.config, ...img.layers].map(x => x.size)
    expect(layoutWritten.at(-1)).toBe(sizes.reduce((x, y) => x + y, 0))

    const b = await makeStore(dirs)
    const stored = new Map<string, number>()
    const last = new Map<string, number>()
    await importImage(b, parseImageRef(`oci-archive:${join(d, 'p.tar')}:latest`), {
      onProgress: (desc, bytes) => { expect(bytes).toBeLessThanOrEqual(desc.size); last.set(desc.digest, bytes) },
      onBlob: (desc, status) => { if (status === 'stored') stored.set(desc.digest, desc.size) }
    })
    expect(stored).toEqual(new Map([img.manifest, img.config, ...img.layers].map(x => [x.digest, x.size])))
    // The last report of each blob is all of it.
    expect(last).toEqual(stored)
  })

  it('unpacks the right platform of an index', async () => {
    const store = await makeStore(dirs)
    const amd = await makeImage(store, 'x', { os: 'linux', architecture: 'amd64' })
    const arm = await makeImage(store, 'arm', { os: 'linux', architecture: 'arm64' })
    const bytes = encodeJson({
      schemaVersion: 2, mediaType: OCI_INDEX,
      manifests: [{ ...amd.manifest, platform: { os: 'linux', architecture: 'amd64' } }, { ...arm.manifest, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }]
    })
    const info = await store.ingest(bytes)
    const index = { mediaType: OCI_INDEX, digest: info.digest, size: info.size }
    const out = dirs.make()
    const r = await unpackImage(store, index, out, { platform: { os: 'linux', architecture: 'aarch64' } })
    expect(r.descriptor.digest).toBe(arm.manifest.digest)
    expect(readFileSync(join(out, 'c'), 'utf8')).toBe('c-arm')
    let n = 0
    for await (const _ of walkImage(store, index)) n++
    expect(n).toBe(1 + 2 * 4)
  })

  it('refuses a layer whose content does not match the config diffID', async () => {
    const store = await makeStore(dirs)
    const img = await makeImage(store)
    const configBytes = encodeJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Digest('x'), sha256Digest('y')] } })
    const c = await store.ingest(configBytes)
    const m = await store.ingest(encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: c.digest, size: c.size }, layers: img.layers }))
    const err = await errorOf(unpackImage(store, { mediaType: OCI_MANIFEST, digest: m.digest, size: m.size }, dirs.make()))
    expect(err.name).toBe('DiffIdMismatchError')
  })
})

describe('import refuses bad sources and leaves the store as it was', () => {
  async function layoutWith (mutate: (layout: string, img: Awaited<ReturnType<typeof makeImage>>) => void): Promise<string> {
    const a = await makeStore(dirs)
    const img = await makeImage(a)
    const layout = join(dirs.make(), 'layout')
    await exportImage(a, img.manifest, { format: 'oci-layout', dest: layout, refName: 't' })
    mutate(layout, img)
    return layout
  }
  const blobPath = (layout: string, d: Descriptor): string => join(layout, 'blobs', 'sha256', digestHex(d.digest))
  const setIndexTo = (layout: string, d: Descriptor): void => {
    writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...d, annotations: { 'org.opencontainers.image.ref.name': 't' } }] }))
  }
  const rawBlob = (layout: string, bytes: Uint8Array, mediaType = OCI_MANIFEST): Descriptor => {
    const d = { mediaType, digest: sha256Digest(bytes), size: bytes.byteLength }
    writeFileSync(blobPath(layout, d), bytes)
    return d
  }

  it.each([
    ['wrong digest (layer content changed)', 'DigestMismatchError', (l: string, img: Awaited<ReturnType<typeof makeImage>>) => {
      const p = blobPath(l, img.layers[1] as Descriptor)
      const bytes = readFileSync(p)
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff
      rmSync(p)
      writeFileSync(p, bytes)
    }],
    ['wrong size', 'SizeMismatchError', (l: string, img: Awaited<ReturnType<typeof makeImage>>) => {
      const p = blobPath(l, img.layers[0] as Descriptor)
      const bytes = readFileSync(p)
      rmSync(p)
      writeFileSync(p, Buffer.concat([bytes, Buffer.from('extra')]))
    }],
    ['manifest not JSON', 'ManifestInvalidError', (l: string) => { setIndexTo(l, rawBlob(l, new TextEncoder().encode('{"schemaVersion": 2, oops'))) }],
    ['manifest bytes tampered', 'ManifestInvalidError', (l: string, img: Awaited<ReturnType<typeof makeImage>>) => {
      const p = blobPath(l, img.manifest)
      const text = readFileSync(p, 'utf8').replace('"schemaVersion":2', '"schemaVersion": 2')
      rmSync(p)
      writeFileSync(p, text)
      setIndexTo(l, { ...img.manifest, size: Buffer.byteLength(text) })
    }],
    ['manifest referencing a missing blob', 'BlobMissingError', (l: string, img: Awaited<ReturnType<typeof makeImage>>) => {
      const missing = { mediaType: OCI_LAYER_TAR, digest: sha256Digest('not there'), size: 9 }
      setIndexTo(l, rawBlob(l, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: img.config, layers: [...img.layers, missing] })))
    }],
    ['no oci-layout file', 'LayoutInvalidError', (l: string) => { rmSync(join(l, 'oci-layout')) }],
    ['index.json a manifest', 'LayoutInvalidError', (l: string, img: Awaited<ReturnType<typeof makeImage>>) => { writeFileSync(join(l, 'index.json'), readFileSync(blobPath(l, img.manifest))) }]
  ])('%s', async (_name, errorName, mutate) => {
    const layout = await layoutWith(mutate)
    const store = await makeStore(dirs)
    const err = await errorOf(importImage(store, parseImageRef(`oci:${layout}:t`)))
    expect(err.name).toBe(errorName)
    if (errorName === 'BlobMissingError') expect(err.message).toMatch(/referenced by root application\/vnd\.oci\.image\.manifest\.v1\+json sha256:/)
    expect(await blobCount(store)).toBe(0)
  })
})

describe('docker-archive', () => {
  async function dockerArchive (opts: { badDiffId?: boolean } = {}): Promise<{ file: string, diffIds: string[] }> {
    const l1 = await buildTar([{ name: 'etc/hello', body: 'hello' }, { name: 'bin/', type: 'directory' }])
    const l2 = await buildTar([{ name: 'etc/.wh.hello', body: '' }, { name: 'bin/tool', body: 'tool', mode: 0o755 }])
    const diffIds = [sha256Digest(l1), opts.badDiffId === true ? sha256Digest('wrong') : sha256Digest(l2)]
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/tool'] }, rootfs: { type: 'layers', diff_ids: diffIds } })
    const configName = `${digestHex(sha256Digest(config))}.json`
    const tar = await buildTar([
      { name: 'manifest.json', body: JSON.stringify([{ Config: configName, RepoTags: ['example.com/app:1', 'app:latest'], Layers: ['l1/layer.tar', 'l2/layer.tar'] }]) },
      { name: configName, body: config },
      { name: 'l1/layer.tar', body: l1 },
      { name: 'l0/layer.tar', body: l2 },
      { name: 'l2/layer.tar', type: 'symlink', linkname: '../l0/layer.tar' }
    ])
    const file = join(dirs.make(), 'docker.tar')
    writeFileSync(file, tar)
    return { file, diffIds }
  }

  it('imports a docker save tarball as an OCI image with correct diff_ids', async () => {
    const { file, diffIds } = await dockerArchive()
    const store = await makeStore(dirs)
    const roots = await importImage(store, parseImageRef(`docker-archive:${file}`))
    expect(roots.map(r => r.refName)).toEqual(['example.com/app:1', 'app:latest'])
    const root = roots[0]?.descriptor as Descriptor
    const walked = await collectImage(store, root)
    expect(walked.filter(w => w.role === 'layer').map(w => [w.descriptor.digest, w.descriptor.mediaType])).toEqual(diffIds.map(d => [d, OCI_LAYER_TAR]))
    const out = dirs.make()
    await unpackImage(store, root, out)
    expect(snapshot(out)).toEqual({ bin: 'dir:755', 'bin/tool': 'file:755:tool', etc: 'dir:755' })

    const byName = await importImage(await makeStore(dirs), parseImageRef(`docker-archive:${file}:app`))
    expect(byName[0]?.descriptor.digest).toBe(root.digest)
    const byIndex = await importImage(await makeStore(dirs), parseImageRef(`docker-archive:${file}:@0`))
    expect(byIndex[0]?.descriptor.digest).toBe(root.digest)
    expect(await errorOf(importImage(await makeStore(dirs), parseImageRef(`docker-archive:${file}:other`)))).toMatchObject({ name: 'ImageNotFoundError' })
  })

  it('refuses a layer that does not match its diff_id, storing nothing', async () => {
    const { file } = await dockerArchive({ badDiffId: true })
    const store = await makeStore(dirs)
    expect(await errorOf(importImage(store, parseImageRef(`docker-archive:${file}`)))).toMatchObject({ name: 'DigestMismatchError' })
    expect(await blobCount(store)).toBe(0)
  })
})
