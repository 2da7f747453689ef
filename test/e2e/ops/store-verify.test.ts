/**
 * `kiln store verify` over a store damaged on purpose: a blob whose bytes
 * were changed on disk, a ref and a build-cache row naming blobs that are
 * gone, an image whose layer is gone (named: a problem; unnamed: counted
 * only). Checked in JSON and text, then repaired, then clean.
 */
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStepCache } from '../../../src/cache/index.ts'
import { openLocalStore } from '../../../src/content/index.ts'
import type { Digest } from '../../../src/content/index.ts'
import { runKiln } from '../../helpers/cli.ts'

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const missing = (c: string): Digest => `sha256:${c.repeat(64)}` as Digest

interface Report {
  blobs: number
  hashed: number
  problems: Array<{ kind: string, digest: string, repaired: boolean, table?: string, what?: string, missing?: string[], keptBy?: string[] }>
  unreferencedIncomplete: number
  quarantine?: string
}

describe('kiln store verify', () => {
  let dir: string
  const env = (): NodeJS.ProcessEnv => ({ KILN_DATA_DIR: dir, KILN_CONFIG: '' })
  const d: Record<string, Digest> = {}

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-store-verify-'))
    const s = await openLocalStore(dir)
    const ingest = async (text: string): Promise<{ digest: Digest, size: number }> => await s.content.ingest(Buffer.from(text))
    const config = await ingest('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
    const layer = await ingest('L'.repeat(4000))
    const bad = await ingest('B'.repeat(4000))
    const image = (layers: Array<{ digest: Digest, size: number }>): string => JSON.stringify({
      schemaVersion: 2, mediaType: MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map(l => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l }))
    })
    const whole = await ingest(image([layer]))
    const broken = await ingest(image([{ digest: missing('b'), size: 10 }]))
    const unnamed = await ingest(image([{ digest: missing('c'), size: 10 }]))
    s.refs.set('site/app', 'v1', { digest: whole.digest, mediaType: MANIFEST, size: whole.size })
    s.refs.set('site/broken', 'v1', { digest: broken.digest, mediaType: MANIFEST, size: broken.size })
    s.refs.set('site/gone', 'v1', { digest: missing('a'), mediaType: MANIFEST, size: 10 })
    createStepCache(s.db).put(missing('e'), { descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: missing('e'), size: 1 }, diffId: missing('f') })
    // The disk changes a blob's bytes behind the store's back.
    const badPath = await s.content.path(bad.digest)
    await chmod(badPath, 0o600)
    await writeFile(badPath, 'X'.repeat(4000))
    Object.assign(d, { whole: whole.digest, broken: broken.digest, unnamed: unnamed.digest, bad: bad.digest })
    s.close()
  })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('reports each kind of damage, repairs what it can, and is clean after', { timeout: 240_000 }, async () => {
    const check = await runKiln(['store', 'verify', '--json'], { env: env() })
    expect(check.code, check.stderr).toBe(4)
    const r = JSON.parse(check.stdout) as Report
    expect(r.blobs).toBe(6)
    expect(r.hashed).toBe(6)
    expect(r.unreferencedIncomplete).toBe(1)
    const kinds = r.problems.map(p => `${p.kind} ${p.table ?? ''} ${p.digest}`).sort()
    expect(kinds).toEqual([
      `corrupt-blob  ${d.bad as string}`,
      `dangling-row build cache ${missing('e')}`,
      `dangling-row refs ${missing('a')}`,
      `incomplete-image  ${d.broken as string}`
    ].sort())
    expect(r.problems.find(p => p.kind === 'incomplete-image')).toMatchObject({ missing: [missing('b')], keptBy: ['site/broken:v1'] })
    expect(r.problems.every(p => !p.repaired)).toBe(true)

    const text = await runKiln(['store', 'verify'], { env: env() })
    expect(text.code).toBe(4)
    expect(text.stdout).toMatch(/WRONG: blob sha256:[0-9a-f]{64} holds bytes of sha256:/)
    expect(text.stdout).toMatch(/refs: site\/gone:v1 names/)
    expect(text.stdout).toMatch(/image .* \(kept by site\/broken:v1\) lacks 1 blob/)
    expect(text.stderr).toMatch(/--repair/)

    const repair = await runKiln(['store', 'verify', '--repair', '--json'], { env: env() })
    const rr = JSON.parse(repair.stdout) as Report
    // What cannot be repaired here (an image missing a layer) still fails the run.
    expect(repair.code).toBe(4)
    expect(rr.problems.filter(p => !p.repaired).map(p => p.kind)).toEqual(['incomplete-image'])
    expect(rr.quarantine).toBeDefined()
    expect((await readdir(rr.quarantine as string)).length).toBe(1)

    const after = await runKiln(['store', 'verify', '--json'], { env: env() })
    const ra = JSON.parse(after.stdout) as Report
    expect(ra.blobs).toBe(5)
    expect(ra.problems.map(p => p.kind)).toEqual(['incomplete-image'])
    const rm1 = await runKiln(['image', 'rm', 'site/broken:v1'], { env: env() })
    expect(rm1.code, rm1.stderr).toBe(0)
    const clean = await runKiln(['store', 'verify', '--quick'], { env: env() })
    expect(clean.code, clean.stderr + clean.stdout).toBe(0)
    expect(clean.stdout).toMatch(/no problems; 2 unnamed incomplete image/)
  })

  it('refuses a sample fraction outside (0, 1]', { timeout: 60_000 }, async () => {
    const r = await runKiln(['store', 'verify', '--quick', '3'], { env: env() })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/fraction/)
  })
})
