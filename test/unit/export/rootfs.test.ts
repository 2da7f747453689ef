/**
 * type=local and type=tar: the root filesystem of an image, from a store
 * holding a two-platform index (test images of ./helpers.ts): one tree for a
 * single-platform image or a platform= choice, one subdirectory per
 * platform for an index, a tar read back with tar-stream, with the owners
 * and modes the image's layers give.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ContentStore } from '../../../src/content/index.ts'
import { createExporter, parseOutputSpec } from '../../../src/export/index.ts'
import { OCI_CONFIG, OCI_MANIFEST, encodeJson, writeLayer } from '../../../src/oci/index.ts'
import type { Descriptor, LayerEntry } from '../../../src/oci/index.ts'
import { makeMultiArch, makeStore, tempDirs } from './helpers.ts'
import { readTarFile, readTarHeaders } from './tar-read.ts'

const dirs = tempDirs()
let store: ContentStore
let image: Awaited<ReturnType<typeof makeMultiArch>>
beforeEach(async () => {
  store = await makeStore(dirs)
  image = await makeMultiArch(store)
})
afterEach(() => { dirs.cleanup() })

const exporter = createExporter()

/** A two-layer image: owners and a setuid bit in the first, a whiteout and an opaque directory in the second. */
async function layeredImage (): Promise<Descriptor> {
  const text = (s: string): Uint8Array => new TextEncoder().encode(s)
  const layers = [
    [
      { type: 'directory', path: 'etc', mode: 0o755 },
      { type: 'file', path: 'etc/shadow', mode: 0o640, uid: 0, gid: 42, content: text('secret\n') },
      { type: 'directory', path: 'home/user', mode: 0o700, uid: 1000, gid: 1000 },
      { type: 'file', path: 'home/user/notes', mode: 0o600, uid: 1000, gid: 1000, content: text('mine\n') },
      { type: 'file', path: 'bin/su', mode: 0o4755, content: text('su\n') },
      { type: 'file', path: 'tmp/gone', mode: 0o644, content: text('x') },
      { type: 'directory', path: 'cache', mode: 0o755 },
      { type: 'file', path: 'cache/old', mode: 0o644, uid: 7, gid: 7, content: text('old') }
    ],
    [
      { type: 'whiteout', path: 'tmp/gone' },
      { type: 'opaque', path: 'cache' },
      { type: 'file', path: 'cache/new', mode: 0o644, uid: 8, gid: 8, content: text('new') }
    ]
  ] satisfies LayerEntry[][]
  const written = []
  for (const entries of layers) written.push(await writeLayer(store, entries, { compression: 'gzip' }))
  const config = encodeJson({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: written.map(l => l.diffId) } })
  const c = await store.ingest(config)
  const manifest = encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: c.digest, size: c.size }, layers: written.map(l => l.descriptor) })
  const m = await store.ingest(manifest)
  return { mediaType: OCI_MANIFEST, digest: m.digest, size: m.size }
}

describe('type=local', () => {
  it('unpacks a single-platform image as its root filesystem', async () => {
    const dest = join(dirs.make(), 'rootfs')
    const r = await exporter.export({ store, root: image.arm64.manifest }, parseOutputSpec(`type=local,dest=${dest}`))
    expect(r).toEqual({ description: `local:${dest}`, digest: image.arm64.manifest.digest })
    expect(readdirSync(dest).sort()).toEqual(['etc', 'hello.txt'])
    expect(readFileSync(join(dest, 'hello.txt'), 'utf8')).toBe(image.arm64.content)
  })

  it('lays an index out one directory per platform, or one platform\'s tree with platform=', async () => {
    const all = join(dirs.make(), 'all')
    await exporter.export({ store, root: image.index }, parseOutputSpec(`type=local,dest=${all}`))
    expect(readdirSync(all).sort()).toEqual(['linux_amd64', 'linux_arm64'])
    expect(readFileSync(join(all, 'linux_amd64', 'hello.txt'), 'utf8')).toBe(image.amd64.content)
    expect(readFileSync(join(all, 'linux_arm64', 'hello.txt'), 'utf8')).toBe(image.arm64.content)
    const arm = join(dirs.make(), 'arm')
    await exporter.export({ store, root: image.index }, parseOutputSpec(`type=local,dest=${arm},platform=linux/arm64`))
    expect(readFileSync(join(arm, 'hello.txt'), 'utf8')).toBe(image.arm64.content)
  })

  it('refuses a directory that is not empty, and leaves it as it was', async () => {
    const dest = dirs.make()
    writeFileSync(join(dest, 'mine.txt'), 'keep')
    await expect(exporter.export({ store, root: image.amd64.manifest }, parseOutputSpec(`type=local,dest=${dest}`)))
      .rejects.toMatchObject({ name: 'ExportUnsupportedError', message: expect.stringMatching(/is not empty/) })
    expect(readdirSync(dest)).toEqual(['mine.txt'])
  })
})

describe('type=tar', () => {
  it('writes the root filesystem as a tar, the same bytes each time', async () => {
    const out = dirs.make()
    const a = join(out, 'a.tar')
    const r = await exporter.export({ store, root: image.index }, parseOutputSpec(`type=tar,dest=${a},platform=linux/amd64`))
    expect(r).toEqual({ description: `tar:${a}`, digest: image.index.digest })
    const files = await readTarFile(a)
    expect([...files.keys()]).toEqual(['hello.txt'])
    expect(files.get('hello.txt')?.toString()).toBe(image.amd64.content)
    const b = join(out, 'b.tar')
    await exporter.export({ store, root: image.index }, parseOutputSpec(`type=tar,dest=${b},platform=linux/amd64`))
    expect(readFileSync(b).equals(readFileSync(a))).toBe(true)
    expect(readdirSync(out).sort()).toEqual(['a.tar', 'b.tar'])
  })

  it('puts each platform of an index under its own directory, and replaces the file', async () => {
    const dest = join(dirs.make(), 'sub', 'all.tar')
    mkdirSync(join(dest, '..'), { recursive: true })
    writeFileSync(dest, 'old')
    await exporter.export({ store, root: image.index }, parseOutputSpec(`type=tar,dest=${dest}`))
    const files = await readTarFile(dest)
    expect(files.get('linux_amd64/hello.txt')?.toString()).toBe(image.amd64.content)
    expect(files.get('linux_arm64/hello.txt')?.toString()).toBe(image.arm64.content)
  })

  it('keeps the image\'s owners and modes, setuid bits included, after whiteouts and opaque directories', async () => {
    const root = await layeredImage()
    const dest = join(dirs.make(), 'rootfs.tar')
    await exporter.export({ store, root }, parseOutputSpec(`type=tar,dest=${dest}`))
    const headers = await readTarHeaders(dest)
    expect(headers.get('etc/shadow')).toEqual({ type: 'file', uid: 0, gid: 42, mode: 0o640 })
    expect(headers.get('home/user')).toEqual({ type: 'directory', uid: 1000, gid: 1000, mode: 0o700 })
    expect(headers.get('home/user/notes')).toMatchObject({ uid: 1000, gid: 1000, mode: 0o600 })
    expect(headers.get('bin/su')).toMatchObject({ uid: 0, gid: 0, mode: 0o4755 })
    expect(headers.get('cache/new')).toMatchObject({ uid: 8, gid: 8 })
    expect(headers.has('cache/old')).toBe(false)
    expect(headers.has('tmp/gone')).toBe(false)
    // The local tree of the same image is the exporting user's, setuid stripped (as kiln image unpack).
    const local = join(dirs.make(), 'rootfs')
    await exporter.export({ store, root }, parseOutputSpec(`type=local,dest=${local}`))
    expect(readFileSync(join(local, 'cache', 'new'), 'utf8')).toBe('new')
    expect(readdirSync(join(local, 'cache'))).toEqual(['new'])
  })
})
