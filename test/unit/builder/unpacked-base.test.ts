/**
 * unpackedBase makes a base's rootfs once, under a temp name renamed into
 * place. Builds of one agent run at once: two that unpack the same base
 * together must both get the rootfs (they once shared a temp name made from
 * the millisecond, and the second failed with ENOENT; seen in
 * test/e2e/faults/churn.test.ts).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { unpackedBase } from '../../../src/builder/base.ts'
import type { ContentStore } from '../../../src/content/index.ts'

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
})
