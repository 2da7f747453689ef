/**
 * Build cache export/import against the builder's table (no build run here;
 * test/e2e/export/cache.test.ts runs the builder): records and layers packed
 * as an artifact, written to an OCI layout, fetched and imported into a
 * second store with its step snapshots (whiteouts as overlay char 0/0).
 */
import { lstatSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { BUILD_CACHE_MEDIA_TYPE, createCacheImage, createStepCache, fetchCacheImage, importCacheImage, stepKey } from '../../../src/cache/index.ts'
import { digestHex, openLocalStore } from '../../../src/content/index.ts'
import type { LocalStore } from '../../../src/content/index.ts'
import { createExporter, parseCacheFromSpec, parseCacheToSpec, parseOutputSpec } from '../../../src/export/index.ts'
import { writeLayer } from '../../../src/oci/index.ts'
import type { WrittenLayer } from '../../../src/oci/index.ts'
import { makeImage, tempDirs } from '../export/helpers.ts'

const dirs = tempDirs()
let a: LocalStore
let b: LocalStore
let layers: WrittenLayer[]
const keys = [stepKey('base', 'RUN one'), stepKey('k1', 'RUN two')]

beforeEach(async () => {
  a = await openLocalStore(dirs.make('kiln-cache-a-'))
  b = await openLocalStore(dirs.make('kiln-cache-b-'))
  const enc = new TextEncoder()
  layers = [
    await writeLayer(a.content, [{ type: 'directory', path: 'data', mode: 0o755 }, { type: 'file', path: 'data/one', mode: 0o644, content: enc.encode('1\n') }, { type: 'file', path: 'data/gone', mode: 0o644, content: enc.encode('x\n') }]),
    await writeLayer(a.content, [{ type: 'directory', path: 'data', mode: 0o755 }, { type: 'whiteout', path: 'data/gone' }, { type: 'file', path: 'data/two', mode: 0o644, content: enc.encode('2\n') }])
  ]
  const cache = createStepCache(a.db)
  layers.forEach((l, i) => { cache.put(keys[i] as `sha256:${string}`, { descriptor: { mediaType: l.descriptor.mediaType, digest: l.descriptor.digest, size: l.descriptor.size }, diffId: l.diffId }) })
})
afterEach(() => { a.close(); b.close(); dirs.cleanup() })

describe('build cache', () => {
  it('travels through an OCI layout into another store, with snapshots the builder can stack', async () => {
    const { descriptor, records } = await createCacheImage(a.db, a.content)
    expect(records).toBe(2)
    expect(descriptor.artifactType).toBe(BUILD_CACHE_MEDIA_TYPE)
    const out = join(dirs.make(), 'cache')
    await createExporter().export({ store: a.content, root: descriptor }, parseOutputSpec(`oci:${out}:buildcache`))

    const root = await fetchCacheImage(b.content, `oci:${out}:buildcache`)
    expect(root.digest).toBe(descriptor.digest)
    const snapshots = join(dirs.make(), 'snapshots')
    const r = await importCacheImage(b.db, b.content, root, { snapshotsDir: snapshots })
    expect(r).toEqual({ added: 2, kept: 0, snapshots: { created: 2, present: 0, unsupported: 0 } })
    const cacheB = createStepCache(b.db)
    for (const [i, l] of layers.entries()) {
      expect(cacheB.get(keys[i] as `sha256:${string}`)).toEqual({ descriptor: { mediaType: l.descriptor.mediaType, digest: l.descriptor.digest, size: l.descriptor.size }, diffId: l.diffId })
      expect(await b.content.has(l.descriptor.digest)).toBe(true)
    }
    const second = join(snapshots, digestHex((layers[1] as WrittenLayer).diffId))
    expect(readFileSync(join(second, 'data/two'), 'utf8')).toBe('2\n')
    const wh = lstatSync(join(second, 'data/gone'))
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true)

    // Importing again adds nothing and rewrites nothing.
    expect(await importCacheImage(b.db, b.content, root, { snapshotsDir: snapshots })).toEqual({ added: 0, kept: 2, snapshots: { created: 0, present: 2, unsupported: 0 } })
  })

  it('mode=min keeps only the records of the given image', async () => {
    const img = await makeImage(a.content, 'amd64')
    const none = await createCacheImage(a.db, a.content, { mode: 'min', image: img.manifest })
    expect(none.records).toBe(0)
    createStepCache(a.db).put(stepKey('x', 'RUN img'), { descriptor: { mediaType: img.layer.mediaType, digest: img.layer.digest, size: img.layer.size }, diffId: img.diffId as `sha256:${string}` })
    expect((await createCacheImage(a.db, a.content, { mode: 'min', image: img.manifest })).records).toBe(1)
    await expect(createCacheImage(a.db, a.content, { mode: 'min' })).rejects.toMatchObject({ name: 'CacheImageError' })
  })

  it('refuses an image that is not a cache artifact', async () => {
    const img = await makeImage(a.content, 'amd64')
    await expect(importCacheImage(a.db, a.content, img.manifest)).rejects.toMatchObject({ name: 'CacheImageError' })
  })
})

describe('--cache-to / --cache-from', () => {
  it('reads outputs with a mode, and buildx cache spellings', () => {
    expect(parseCacheToSpec('type=registry,ref=127.0.0.1:5000/cache/app:bc,mode=min')).toEqual({ mode: 'min', output: { type: 'registry', names: ['127.0.0.1:5000/cache/app:bc'], insecure: false } })
    expect(parseCacheToSpec('type=local,dest=/c')).toEqual({ mode: 'max', output: { type: 'oci-layout', dest: '/c', names: ['buildcache'] } })
    expect(parseCacheToSpec('type=static,dest=/srv/site')).toMatchObject({ output: { names: ['cache:buildcache'] } })
    expect(() => parseCacheToSpec('type=static,dest=/srv/site,sif=true')).toThrow(expect.objectContaining({ name: 'OutputSpecInvalidError', keys: ['sif'] }))
    // A cache image has no root filesystem: the outputs that write one refuse it (type=local is buildx's cache spelling of a layout).
    for (const text of ['type=tar,dest=/c.tar', 'sif:/c.sif', './cachedir']) expect(() => parseCacheToSpec(text)).toThrow(expect.objectContaining({ name: 'OutputSpecInvalidError', keys: ['type'] }))
    expect(parseCacheToSpec('oci:/c:v1')).toEqual({ mode: 'max', output: { type: 'oci-layout', dest: '/c', names: ['v1'] } })
    expect(() => parseCacheToSpec('type=local,dest=/c,mode=most')).toThrow(/mode/)
    expect(parseCacheFromSpec('type=registry,ref=h:5000/c:bc')).toBe('docker://h:5000/c:bc')
    expect(parseCacheFromSpec('type=local,src=/c')).toBe('oci:/c:buildcache')
    expect(parseCacheFromSpec('oci:/c:v1')).toBe('oci:/c:v1')
    expect(() => parseCacheFromSpec('type=local,src=/c,colour=red')).toThrow(/colour/)
  })
})
