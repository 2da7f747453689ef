/**
 * RUN cache mounts per scope (BuildOptions.cacheScope): an agent builds the
 * jobs of several requesters, and a cache mount is a dir that a step writes
 * and a later step reads. One requester's steps must neither read what
 * another's left in a cache (a secret copied there) nor prepare it for them
 * (a wheel, a .deb, a compiler cache), directly or through the step cache:
 * a step that mounts a cache is keyed by the scope too.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cacheMountDir, mountKeyInputs, prepareMounts } from '../../../src/builder/executor/mounts.ts'
import type { BuildScope } from '../../../src/builder/stage.ts'
import type { RunStep } from '../../../src/recipe/ir.ts'

const dirs: string[] = []
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })

function scopeOf (work: string, cacheScope?: string): BuildScope {
  return {
    options: { contextDir: join(work, 'ctx'), ...(cacheScope !== undefined ? { cacheScope } : {}) },
    dirs: { rootfs: join(work, 'rootfs'), snapshots: join(work, 'snapshots'), tmp: work, cacheMounts: join(work, 'cache-mounts') }
  } as unknown as BuildScope
}

const step = (mounts: RunStep['mounts']): RunStep => ({
  op: 'run', command: { form: 'shell', script: 'pip install x' }, shell: ['/bin/sh', '-c'], env: {}, mounts, source: { file: 'Dockerfile', line: 2 }
} as RunStep)

const CACHE = step([{ type: 'cache', target: '/root/.cache/pip', id: '/root/.cache/pip', sharing: 'shared', readOnly: false, mode: 0o755, uid: 0, gid: 0 }])
const FEATURES = { readOnlyMounts: true } as Parameters<typeof prepareMounts>[2]

/** The host dir the step's one cache mount binds. */
async function cacheDirOf (scope: BuildScope, s: RunStep): Promise<string> {
  const prepared = await prepareMounts(scope, s, FEATURES)
  try {
    const m = prepared.mounts[0]
    if (m?.kind !== 'bind') throw new Error('no bind mount')
    return m.source
  } finally {
    await prepared.release()
  }
}

describe('RUN cache mounts per scope', () => {
  it('gives two requesters two dirs for the same id, and the node\'s own builds the dir they always had', async () => {
    const work = mkdtempSync(join(tmpdir(), 'kiln-cache-scope-'))
    dirs.push(work)
    const a = await cacheDirOf(scopeOf(work, 'peer:A'), CACHE)
    const b = await cacheDirOf(scopeOf(work, 'peer:B'), CACHE)
    const own = await cacheDirOf(scopeOf(work), CACHE)
    expect(new Set([a, b, own]).size).toBe(3)
    // A poisoned file left by A is not what B's step sees, nor the node's own builds.
    writeFileSync(join(a, 'wheel.whl'), 'planted by A')
    expect(() => readFileSync(join(b, 'wheel.whl'))).toThrow(/ENOENT/)
    expect(() => readFileSync(join(own, 'wheel.whl'))).toThrow(/ENOENT/)
    // Unscoped builds keep the path of before (the id's hash), so an existing node's caches stay warm.
    expect(own).toBe(cacheMountDir(join(work, 'cache-mounts'), '', '/root/.cache/pip'))
    expect(await cacheDirOf(scopeOf(work, 'peer:A'), CACHE)).toBe(a)
  })

  it('keys a step that mounts a cache by its scope, so one requester cannot put a result in another\'s step cache', async () => {
    const work = mkdtempSync(join(tmpdir(), 'kiln-cache-scope-'))
    dirs.push(work)
    const a = await mountKeyInputs(scopeOf(work, 'peer:A'), CACHE)
    const b = await mountKeyInputs(scopeOf(work, 'peer:B'), CACHE)
    expect(a).not.toEqual(b)
    // The node's own builds, and steps without a cache mount, are keyed as before.
    expect(await mountKeyInputs(scopeOf(work), CACHE)).toEqual([])
    const tmpfs = step([{ type: 'tmpfs', target: '/t' }])
    expect(await mountKeyInputs(scopeOf(work, 'peer:A'), tmpfs)).toEqual(await mountKeyInputs(scopeOf(work, 'peer:B'), tmpfs))
  })
})
