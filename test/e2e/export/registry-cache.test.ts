/**
 * The build cache through a registry, with the kiln CLI as an unprivileged
 * user: agent A builds the reference recipe with two --output values (an
 * OCI layout and a push to Debian's docker-registry on loopback) and
 * --cache-to the same registry; agent B, with an empty store, builds it
 * with --cache-from that registry: no RUN step runs and the digest is A's.
 */
import { execFile } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { startDockerRegistry } from '../../integration/registry/docker-registry.ts'
import type { DockerRegistry } from '../../integration/registry/docker-registry.ts'
import { haveBench, makeReferenceRecipe } from './reference-recipe.ts'
import type { ReferenceRecipe } from './reference-recipe.ts'

const run = promisify(execFile)
const skopeo = async (...args: string[]): Promise<string> => (await run('skopeo', args, { timeout: 60_000 })).stdout

interface BuildJson {
  digest: string
  steps: number
  cachedSteps: number
  stepReports: Array<{ op: string, cached: boolean }>
  outputs: Array<{ output: string, description: string, digest: string }>
  cacheExports: Array<{ output: string, description: string, records: number }>
}

describe.skipIf(!haveBench() || !haveTools('setpriv', 'busybox', 'umoci', 'mknod', 'docker-registry', 'skopeo'))('build cache shared through a registry (kiln build --cache-to / --cache-from)', () => {
  let u: Unprivileged
  let registry: DockerRegistry
  let recipe: ReferenceRecipe

  const build = (dataDir: string, args: string[]): BuildJson => {
    const buildArgs = Object.entries(recipe.buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`])
    const r = u.kiln(['build', '--json', ...buildArgs, ...args, recipe.context], { dataDir, timeoutMs: 300_000 })
    expect(r.status, r.stderr).toBe(0)
    return JSON.parse(r.stdout) as BuildJson
  }
  const dataDir = (name: string): string => {
    const d = join(u.work, name)
    mkdirSync(d); u.give(d)
    return d
  }
  const runs = (b: BuildJson): boolean[] => b.stepReports.filter(s => s.op === 'run').map(s => s.cached)

  beforeAll(async () => {
    u = makeUnprivileged()
    recipe = makeReferenceRecipe(u.work)
    u.give(u.work)
    registry = await startDockerRegistry()
  }, 180_000)
  afterAll(async () => {
    await registry?.stop()
    u?.cleanup()
  })

  it('B, with an empty store, runs no RUN step and gets A\'s digest', async () => {
    const out = join(u.work, 'out')
    const cacheRef = `${registry.hostPort}/cache/reference:buildcache`
    const a = build(dataDir('data-a'), [
      '--output', `oci:${out}:ref`,
      '--output', `type=registry,name=${registry.hostPort}/bench/reference:1`,
      '--cache-to', `type=registry,ref=${cacheRef},mode=max`
    ])
    expect(runs(a)).toEqual([false, false, false])
    expect(a.outputs.map(o => o.digest)).toEqual([a.digest, a.digest])
    expect(a.cacheExports[0]?.records).toBeGreaterThanOrEqual(4) // three RUN layers and the COPY
    // Both outputs hold the image: skopeo sees the same digest in each.
    expect((JSON.parse(await skopeo('inspect', `oci:${out}:ref`)) as { Digest: string }).Digest).toBe(a.digest)
    expect((JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${registry.hostPort}/bench/reference:1`)) as { Digest: string }).Digest).toBe(a.digest)

    const b = build(dataDir('data-b'), ['--cache-from', `type=registry,ref=${cacheRef}`])
    expect(runs(b)).toEqual([true, true, true])
    expect(b.cachedSteps).toBe(b.steps)
    expect(b.digest).toBe(a.digest)
  })

  it('a cache that cannot be read is a warning, and the build runs every step', () => {
    const d = dataDir('data-c')
    const buildArgs = Object.entries(recipe.buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`])
    const r = u.kiln(['build', '--json', ...buildArgs, '--cache-from', `docker://${registry.hostPort}/cache/absent:none`, recipe.context], { dataDir: d, timeoutMs: 300_000 })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toContain(`--cache-from docker://${registry.hostPort}/cache/absent:none`)
    expect(runs(JSON.parse(r.stdout) as BuildJson)).toEqual([false, false, false])
  })
})
