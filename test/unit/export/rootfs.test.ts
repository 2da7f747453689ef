/**
 * type=local and type=tar: the root filesystem of an image, from a store
 * holding a two-platform index (test images of ./helpers.ts): one tree for a
 * single-platform image or a platform= choice, one subdirectory per
 * platform for an index, a tar read back with tar-stream.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ContentStore } from '../../../src/content/index.ts'
import { createExporter, parseOutputSpec } from '../../../src/export/index.ts'
import { makeMultiArch, makeStore, tempDirs } from './helpers.ts'
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
})
