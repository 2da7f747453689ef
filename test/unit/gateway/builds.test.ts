/**
 * The build extension with a fake runner: JSON and tar submissions, status,
 * live logs (text and SSE), the result tagged in the repository (an index
 * for several platforms), failures, build on push of a recipe artifact, and
 * a gateway without a builder answering UNSUPPORTED.
 */
import { describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/digest.ts'
import type { Digest } from '../../../src/content/digest.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { ANNOTATION_PLATFORMS, ANNOTATION_TAG, RECIPE_ARTIFACT_TYPE, RECIPE_LAYER_TYPE } from '../../../src/gateway/index.ts'
import type { BuildJob, BuildRunner } from '../../../src/gateway/index.ts'
import { tarOf } from '../../e2e/gateway/fixtures.ts'
import { blob, makeGateway } from './helpers.ts'
import type { TestGateway } from './helpers.ts'

/** Stores a tiny image per job; `gate` holds every build until released. */
function fakeRunner (store: () => ContentStore, seen: BuildJob[], gate?: Promise<void>): BuildRunner {
  return {
    name: 'fake',
    run: async (job, io) => {
      seen.push(job)
      io.step(1, 2)
      io.log(`RUN for ${job.platform}`)
      await gate
      if (job.recipe.text.includes('FAIL')) throw Object.assign(new Error('step 2 failed'), { line: 2 })
      io.step(2, 2)
      const config = Buffer.from(JSON.stringify({ architecture: job.platform.split('/')[1], os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }))
      await store().ingest(config)
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(config), size: config.byteLength }, layers: [] }))
      const digest = sha256Digest(manifest)
      await store().ingest(manifest, { digest })
      return { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: manifest.byteLength }
    }
  }
}

async function waitDone (t: TestGateway, location: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const s = (await t.inject('GET', location)).json() as Record<string, unknown>
    if (s.status !== 'queued' && s.status !== 'building') return s
    if (Date.now() > deadline) throw new Error('build did not end')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe('build extension', () => {
  it('builds a JSON request for two platforms into a tagged index, with status and logs', async () => {
    const seen: BuildJob[] = []
    let release: () => void = () => {}
    const gate = new Promise<void>(resolve => { release = resolve })
    const box: { t?: TestGateway } = {}
    const t = await makeGateway({ builder: fakeRunner(() => (box.t as TestGateway).store, seen, gate) })
    box.t = t
    try {
      const r = await t.inject('POST', '/v2/hpc/app/_kiln/builds', {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ recipe: { kind: 'dockerfile', text: 'FROM scratch\n' }, platforms: ['linux/amd64', 'linux/arm64'], tag: 'v1', buildArgs: { A: 'b' } })
      })
      expect(r.status).toBe(202)
      const location = r.headers.location as string
      expect(location).toMatch(/^\/v2\/hpc\/app\/_kiln\/builds\/[0-9a-f-]{36}$/)
      // A live log reader started before the end sees lines as they come and ends with the build.
      const logs = t.inject('GET', `${location}/logs`)
      const sse = t.inject('GET', `${location}/logs`, { headers: { accept: 'text/event-stream' } })
      expect(((await t.inject('GET', location)).json() as { status: string }).status).toBe('building')
      release()
      const status = await waitDone(t, location) as { status: string, result: { digest: Digest, mediaType: string, tag: string }, platforms: Record<string, { status: string, digest: string }> }
      expect(status.status).toBe('succeeded')
      expect(status.result).toMatchObject({ mediaType: 'application/vnd.oci.image.index.v1+json', tag: 'v1' })
      expect(Object.values(status.platforms).map(p => p.status)).toEqual(['succeeded', 'succeeded'])
      const text = (await logs).body.toString()
      expect(text).toContain('linux/amd64 1| RUN for linux/amd64')
      expect(text).toContain(`done | ${status.result.digest} tagged hpc/app:v1`)
      const events = (await sse).body.toString()
      expect(events).toContain('event: log\ndata: linux/arm64 1| RUN for linux/arm64')
      expect(events).toContain('event: end')
      expect(seen.map(j => j.platform)).toEqual(['linux/amd64', 'linux/arm64'])
      expect(seen[0]?.buildArgs).toEqual({ A: 'b' })
      // The result is an ordinary image of the repository.
      const index = await t.inject('GET', '/v2/hpc/app/manifests/v1', { headers: { accept: 'application/vnd.oci.image.index.v1+json' } })
      expect(index.status).toBe(200)
      expect(index.headers['docker-content-digest']).toBe(status.result.digest)
      const child = (index.json() as { manifests: Array<{ digest: string, platform: { architecture: string } }> }).manifests[1]
      expect(child?.platform.architecture).toBe('arm64')
      expect((await t.inject('GET', `/v2/hpc/app/manifests/${child?.digest ?? ''}`)).status).toBe(200)
      await expect(t.inject('GET', '/v2/hpc/app/_kiln/builds').then(x => x.json())).resolves.toMatchObject({ builds: [{ status: 'succeeded', tag: 'v1' }] })
    } finally { await t.cleanup() }
  })

  it('takes a context tar as the body with the recipe inside it, and reports failures', async () => {
    const seen: BuildJob[] = []
    const box: { t?: TestGateway } = {}
    const t = await makeGateway({ builder: fakeRunner(() => (box.t as TestGateway).store, seen) })
    box.t = t
    try {
      const tar = tarOf('Dockerfile', Buffer.from('FROM scratch\nFAIL\n'))
      const r = await t.inject('POST', '/v2/ci/x/_kiln/builds?platform=linux/amd64&tag=t', { headers: { 'content-type': 'application/x-tar' }, body: tar })
      expect(r.status).toBe(202)
      const status = await waitDone(t, r.headers.location as string)
      expect(status).toMatchObject({ status: 'failed', error: { message: 'step 2 failed', platform: 'linux/amd64', detail: { line: 2 } } })
      expect(seen[0]?.context).toBe(sha256Digest(tar))
      expect(t.refs.find('ci/x', 't')).toBeUndefined()
      const noRecipe = await t.inject('POST', '/v2/ci/x/_kiln/builds?platform=linux/amd64&file=Nope', { headers: { 'content-type': 'application/x-tar' }, body: tar })
      expect(noRecipe.status).toBe(400)
      expect(noRecipe.json()).toMatchObject({ errors: [{ code: 'MANIFEST_INVALID' }] })
    } finally { await t.cleanup() }
  })

  it('refuses bad requests with OCI errors and answers UNSUPPORTED without a builder', async () => {
    const box: { t?: TestGateway } = {}
    const t = await makeGateway({ builder: fakeRunner(() => (box.t as TestGateway).store, []) })
    box.t = t
    try {
      const post = async (body: unknown): Promise<{ status: number, json: () => unknown }> => await t.inject('POST', '/v2/a/_kiln/builds', { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      expect((await post({ recipe: { kind: 'dockerfile', text: 'FROM x' }, platforms: [] })).status).toBe(400)
      expect((await post({ recipe: { kind: 'make', text: 'x' }, platforms: ['linux/amd64'] })).status).toBe(400)
      const missing = await post({ recipe: { kind: 'dockerfile', text: 'FROM x' }, platforms: ['linux/amd64'], context: blob('absent').digest })
      expect(missing.json()).toMatchObject({ errors: [{ code: 'BLOB_UNKNOWN' }] })
      expect((await t.inject('GET', '/v2/a/_kiln/builds/00000000-0000-0000-0000-000000000000')).status).toBe(404)
    } finally { await t.cleanup() }
    const plain = await makeGateway()
    try {
      const r = await plain.inject('POST', '/v2/a/_kiln/builds', { headers: { 'content-type': 'application/json' }, body: '{}' })
      expect(r.status).toBe(405)
    } finally { await plain.cleanup() }
  })

  it('refuses every build, saying why, when its runner refuses builds (a sandbox that cannot isolate steps)', async () => {
    const seen: BuildJob[] = []
    const box: { t?: TestGateway } = {}
    const refuses = 'the proot sandbox cannot isolate build steps from kiln'
    const t = await makeGateway({ builder: { ...fakeRunner(() => (box.t as TestGateway).store, seen), refuses } })
    box.t = t
    try {
      const r = await t.inject('POST', '/v2/hpc/app/_kiln/builds', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ recipe: { kind: 'dockerfile', text: 'FROM scratch\n' }, platforms: ['linux/amd64'] }) })
      expect(r.status).toBe(405)
      expect(r.json()).toMatchObject({ errors: [{ code: 'UNSUPPORTED', message: `this gateway builds nothing: ${refuses}` }] })
      expect((await t.inject('GET', '/v2/hpc/app/_kiln/builds')).json()).toEqual({ builds: [] })
      expect(seen).toEqual([])
    } finally { await t.cleanup() }
  })

  it('starts a build when a recipe artifact is pushed', async () => {
    const seen: BuildJob[] = []
    const box: { t?: TestGateway } = {}
    const t = await makeGateway({ builder: fakeRunner(() => (box.t as TestGateway).store, seen) })
    box.t = t
    try {
      const recipe = blob('FROM scratch\n')
      const config = blob('{}')
      for (const b of [recipe, config]) expect((await t.inject('POST', `/v2/hpc/r/blobs/uploads/?digest=${b.digest}`, { body: b.bytes })).status).toBe(201)
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: RECIPE_ARTIFACT_TYPE,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: config.digest, size: config.bytes.byteLength },
        layers: [{ mediaType: RECIPE_LAYER_TYPE, digest: recipe.digest, size: recipe.bytes.byteLength }],
        annotations: { [ANNOTATION_PLATFORMS]: 'linux/amd64', [ANNOTATION_TAG]: 'built' }
      })
      const put = await t.inject('PUT', '/v2/hpc/r/manifests/request', { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest })
      expect(put.status).toBe(201)
      const location = put.headers['kiln-build'] as string
      expect(location).toMatch(/_kiln\/builds\//)
      expect(await waitDone(t, location)).toMatchObject({ status: 'succeeded', result: { tag: 'built' } })
      expect(seen[0]?.recipe.text).toBe('FROM scratch\n')
      expect((await t.inject('GET', '/v2/hpc/r/manifests/built')).status).toBe(200)
    } finally { await t.cleanup() }
  })
})
