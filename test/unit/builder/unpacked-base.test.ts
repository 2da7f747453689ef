/**
 * unpackedBase makes a base's rootfs once, under a temp name renamed into
 * place. Builds of one agent run at once: two that unpack the same base
 * together must both get the rootfs (they once shared a temp name made from
 * the millisecond, and the second failed with ENOENT; seen in
 * test/e2e/faults/churn.test.ts). The unpack also gives the layers' owners
 * summaries, from the headers it reads, so a RUN on the base reads no
 * layer again.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { unpackedBase } from '../../../src/builder/base.ts'
import { layerOwners, tarOwners } from '../../../src/builder/owner-ledger.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { makeImage, makeStore, tempDirs } from '../oci/helpers.ts'

describe('unpackedBase', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-unpacked-base-'))
  afterAll(() => { vi.restoreAllMocks(); rmSync(dir, { recursive: true, force: true }) })

  it('unpacks scratch for 200 builds at once, in one millisecond, into one dir with no temp dir left', async () => {
    vi.spyOn(Date, 'now').mockReturnValue(1_796_209_612_009)
    const cache = join(dir, 'rootfs')
    // scratch has no layers: the store is never read.
    const got = await Promise.all(Array.from({ length: 200 }, async () => await unpackedBase({} as ContentStore, {}, cache)))
    vi.restoreAllMocks()
    expect(new Set(got).size).toBe(1)
    expect(statSync(got[0] as string).isDirectory()).toBe(true)
    expect(statSync(got[0] as string).mode & 0o777).toBe(0o755)
    expect(readdirSync(cache)).toEqual([`scratch-${process.getuid?.() ?? 0}`])
  })

  it('remembers each layer\'s owners summary from the headers it extracts: asking for it reads no layer again', async () => {
    const dirs = tempDirs()
    try {
      const store = await makeStore(dirs)
      const image = await makeImage(store, 'owners')
      const expected = await Promise.all(image.layers.map(async l => await tarOwners(store.read(l.digest))))
      const reads: string[] = []
      const counted = new Proxy(store, { get: (t, k) => k === 'read' ? (d: string, o?: object) => { reads.push(d); return t.read(d as never, o) } : Reflect.get(t, k) })
      await unpackedBase(counted, { descriptor: image.manifest, manifestDigest: image.manifest.digest }, join(dir, 'owners'))
      const layerReads = reads.length
      expect(layerReads).toBe(image.layers.length)
      const got = await Promise.all(image.layers.map(async l => await layerOwners(counted, l.digest)))
      expect(reads.length).toBe(layerReads)
      expect(got).toEqual(expected)
    } finally {
      dirs.cleanup()
    }
  })
})
