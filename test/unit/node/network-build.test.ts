/**
 * Where the gateway's builds run (src/node/network-build.ts): the runner
 * `gateway.builds` picks per platform (local, network, auto; a local
 * builder that refuses gateway builds), seen through the gateway's build
 * extension itself: each platform's `builder` in the build status and the
 * runner that really built it. A gateway told to build on the network
 * without being on one is refused at start. The network runner itself runs
 * end to end in test/e2e/gateway/network-builds.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { loadConfig } from '../../../src/config/index.ts'
import { openLocalStore, sha256Digest } from '../../../src/content/index.ts'
import type { Digest, LocalStore } from '../../../src/content/index.ts'
import type { BuildJob, BuildRunner } from '../../../src/gateway/index.ts'
import { chooseBuildRunner, jobEventLine, NodeSettingError, startGatewayNode } from '../../../src/node/index.ts'
import type { GatewayBuildMode } from '../../../src/node/index.ts'
import { OCI_MANIFEST } from '../../../src/oci/index.ts'
import { tempDirs } from '../../helpers/temp.ts'

const dirs = tempDirs('kiln-node-netbuild-')
const closers: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
  dirs.cleanup()
})

async function setup (): Promise<{ store: LocalStore, config: Awaited<ReturnType<typeof loadConfig>> }> {
  const dataDir = dirs.make()
  const config = await loadConfig({ env: {}, overrides: { dataDir } })
  const store = await openLocalStore(dataDir)
  closers.push(() => { store.close() })
  return { config, store }
}

/** A runner that records the platforms it was given and stores a distinct manifest for each. */
function recording (name: string, store: LocalStore, refuses?: string): BuildRunner & { built: string[] } {
  const built: string[] = []
  return {
    name,
    built,
    ...(refuses !== undefined ? { refuses } : {}),
    run: async (job: BuildJob, io) => {
      built.push(job.platform)
      io.log(`${name} building ${job.platform}`)
      const config = Buffer.from(JSON.stringify({ architecture: job.platform.split('/')[1], os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, by: name }))
      await store.content.ingest(config, { digest: sha256Digest(config), size: config.byteLength })
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(config), size: config.byteLength }, layers: [] }))
      const digest = sha256Digest(manifest) as Digest
      await store.content.ingest(manifest, { digest, size: manifest.byteLength })
      return { digest, mediaType: OCI_MANIFEST, size: manifest.byteLength }
    }
  }
}

describe('chooseBuildRunner', () => {
  const fake = (name: string, refuses?: string): BuildRunner => ({ name, ...(refuses !== undefined ? { refuses } : {}), run: async () => { throw new Error('not run here') } })

  it('local keeps the local builder, network sends everything out, auto splits by platform', () => {
    const local = fake('local')
    const network = fake('network')
    const pick = (mode: GatewayBuildMode): BuildRunner | undefined => chooseBuildRunner({ mode, local, network, localPlatforms: ['linux/amd64'] })
    expect(pick('local')).toBe(local)
    expect(pick('network')).toBe(network)
    const auto = pick('auto') as BuildRunner
    expect(auto.nameFor?.('linux/amd64')).toBe('local')
    expect(auto.nameFor?.('linux/arm64')).toBe('network')
  })

  it('falls back to what exists: no network means the local builder, no or a refusing local builder means the network', () => {
    const local = fake('local')
    const refusing = fake('local', 'no sandbox isolates build steps')
    const network = fake('network')
    expect(chooseBuildRunner({ mode: 'auto', local, localPlatforms: ['linux/amd64'] })).toBe(local)
    expect(chooseBuildRunner({ mode: 'network', local, localPlatforms: ['linux/amd64'] })).toBe(local)
    expect(chooseBuildRunner({ mode: 'auto', network, localPlatforms: [] })).toBe(network)
    expect(chooseBuildRunner({ mode: 'auto', local: refusing, network, localPlatforms: ['linux/amd64'] })).toBe(network)
    // Told to build locally only, a refusing builder stays: the gateway then refuses builds, saying why.
    expect(chooseBuildRunner({ mode: 'local', local: refusing, network, localPlatforms: ['linux/amd64'] })).toBe(refusing)
    expect(chooseBuildRunner({ mode: 'local', network, localPlatforms: [] })).toBeUndefined()
  })

  it('in auto, a two-platform gateway build runs each platform on its runner and says which', async () => {
    const { store, config } = await setup()
    const local = recording('local', store)
    const network = recording('network', store)
    const { createGateway } = await import('../../../src/gateway/index.ts')
    const gateway = createGateway({
      store: store.content, refs: store.refs, db: store.db, uploadDir: dirs.make(), logger: pino({ level: 'silent' }),
      builder: chooseBuildRunner({ mode: config.gateway.builds, local, network, localPlatforms: ['linux/amd64'] }) as BuildRunner
    })
    closers.push(async () => { await gateway.close() })
    const { url } = await gateway.listen('127.0.0.1', 0)
    const res = await fetch(`${url}/v2/hpc/app/_kiln/builds`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ recipe: { kind: 'dockerfile', text: 'FROM scratch\n' }, platforms: ['linux/amd64', 'linux/arm64'], tag: 'v1' }),
      signal: AbortSignal.timeout(30_000)
    })
    expect(res.status, await res.clone().text()).toBe(202)
    const location = res.headers.get('location') as string
    const log = await (await fetch(`${url}${location}/logs`, { signal: AbortSignal.timeout(30_000) })).text()
    const status = await (await fetch(`${url}${location}`)).json() as { status: string, platforms: Record<string, { builder: string, status: string }> }
    expect(status.status, log).toBe('succeeded')
    expect(config.gateway.builds).toBe('auto')
    expect(status.platforms).toMatchObject({ 'linux/amd64': { builder: 'local' }, 'linux/arm64': { builder: 'network' } })
    expect(local.built).toEqual(['linux/amd64'])
    expect(network.built).toEqual(['linux/arm64'])
    expect(log).toContain('linux/arm64 | building with network')
    expect(log).toContain('network building linux/arm64')
  }, 60_000)
})

describe('startGatewayNode with gateway.builds', () => {
  it('refuses network builds on a gateway that is not on the network, saying what to give', async () => {
    const { store, config } = await setup()
    await expect(startGatewayNode({ config, store, log: pino({ level: 'silent' }), host: '127.0.0.1', port: 0, builds: 'network' }))
      .rejects.toMatchObject({ name: NodeSettingError.name, message: expect.stringMatching(/gateway\.builds is network/), hint: expect.stringMatching(/--bootstrap/) })
  })

  it('names the builder of each job event in the build log', () => {
    expect(jobEventLine({ kind: 'award', platform: 'linux/arm64', builder: '12D3KooWx' })).toBe('awarded to 12D3KooWx')
    expect(jobEventLine({ kind: 'offer', platform: 'linux/arm64', builder: '12D3KooWx', queue: 0 })).toBe('offer from 12D3KooWx (queue 0)')
    expect(jobEventLine({ kind: 'log', platform: 'linux/arm64', builder: '12D3KooWx', seq: 0, lines: ['x'] })).toBeUndefined()
  })
})
