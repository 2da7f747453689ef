import { gzipSync } from 'node:zlib'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { BasePin } from '../../../protocols/job.ts'
import { createNetworkBaseSource, pinPlan } from '../../../agent/jobs/index.ts'
import type { NetworkBaseSourceInit } from '../../../agent/jobs/index.ts'
import { createLeases, openLocalStore } from '../../../src/content/index.ts'
import type { Digest, Leases, LocalStore } from '../../../src/content/index.ts'
import { importImage, parseImageRef, parseManifestBytes } from '../../../src/oci/index.ts'
import type { Descriptor } from '../../../src/oci/index.ts'
import { parseRecipe } from '../../../src/recipe/index.ts'
import type { RegistryClient } from '../../../src/registry/index.ts'
import { NoProvidersError } from '../../../src/transfer/errors.ts'
import { writeLayout } from '../../helpers/oci-layout.ts'
import { tempDirs } from '../../helpers/temp.ts'

const temp = tempDirs('kiln-base-source-')
const REQUESTER = '12D3KooWRequesterPeerIdForTheseTests'
let mine: LocalStore
let elsewhere: LocalStore
let leases: Leases
let image: Descriptor
let blobs: Digest[]
let pin: BasePin
/** Each pull: its root and the providers it was pointed at. */
let pulls: Array<{ root: Digest, providers: string[] }>

/** A pull that finds the graph in `elsewhere` (a peer), or nobody. */
const pull: NetworkBaseSourceInit['pull'] = async (root, options) => {
  pulls.push({ root, providers: options.providers })
  if (!await elsewhere.content.has(root)) throw new NoProvidersError(`no provider of ${root}`)
  const parsed = parseManifestBytes(await elsewhere.content.readBytes(root))
  if (parsed.kind !== 'manifest') throw new Error('not a manifest')
  for (const d of [root, parsed.value.config.digest, ...parsed.value.layers.map(l => l.digest)]) {
    options.hold(d)
    await mine.content.ingest(await elsewhere.content.readBytes(d), { digest: d })
  }
}

beforeEach(async () => {
  pulls = []
  const layout = temp.make()
  writeLayout(layout, [gzipSync(Buffer.from('the base layer'))], 'base')
  mine = await openLocalStore(temp.make())
  elsewhere = await openLocalStore(temp.make())
  leases = createLeases(mine.db)
  image = (await importImage(elsewhere.content, parseImageRef(`oci:${layout}:base`)))[0]?.descriptor as Descriptor
  const parsed = parseManifestBytes(await elsewhere.content.readBytes(image.digest))
  if (parsed.kind !== 'manifest') throw new Error('not a manifest')
  blobs = [image.digest, parsed.value.config.digest, ...parsed.value.layers.map(l => l.digest)]
  pin = { ref: 'registry.example/site/base:1', platform: 'linux/amd64', digest: image.digest, mediaType: image.mediaType, size: image.size }
})
afterEach(() => {
  mine.close()
  elsewhere.close()
  temp.cleanup()
})

describe('the agent\'s base source', () => {
  it('pulls a pinned base it lacks, asking the requester first, and holds every blob of it until released', async () => {
    const source = createNetworkBaseSource({ store: mine.content, refs: mine.refs, pull, leases })
    const held = await source.open([pin, { ...pin, ref: 'another/name' }], REQUESTER, AbortSignal.timeout(10_000))
    expect(pulls).toEqual([{ root: image.digest, providers: [REQUESTER] }])
    for (const d of blobs) expect(await mine.content.has(d)).toBe(true)
    expect([...leases.held()].sort()).toEqual([...blobs].sort())
    held.release()
    expect(leases.held().size).toBe(0)
  })

  it('does not fetch a base the store already holds whole, and still holds it', async () => {
    for (const d of blobs) await mine.content.ingest(await elsewhere.content.readBytes(d), { digest: d })
    const held = await createNetworkBaseSource({ store: mine.content, refs: mine.refs, pull, leases }).open([pin], REQUESTER, AbortSignal.timeout(10_000))
    expect(pulls).toEqual([])
    expect([...leases.held()].sort()).toEqual([...blobs].sort())
    held.release()
  })

  it('fails naming the ref and the digest when nobody provides the base, and holds nothing', async () => {
    const missing = { ...pin, digest: `sha256:${'d'.repeat(64)}` }
    await expect(createNetworkBaseSource({ store: mine.content, refs: mine.refs, pull, leases }).open([missing], REQUESTER, AbortSignal.timeout(10_000)))
      .rejects.toMatchObject({ name: 'BaseUnavailableError', ref: pin.ref, digest: missing.digest, message: expect.stringMatching(new RegExp(`^base registry\\.example/site/base:1 pinned to ${missing.digest} \\(linux/amd64\\): no peer provides it`)) })
    expect(leases.held().size).toBe(0)
  })

  it('asks the registry the ref names, by digest, only when allowed and no peer has it', async () => {
    const asked: string[] = []
    const client = {
      registry: 'registry.example',
      getManifest: async (repository: string, reference: string) => {
        asked.push(`${repository}@${reference}`)
        return { bytes: await elsewhere.content.readBytes(reference as Digest), digest: reference as Digest, mediaType: image.mediaType }
      },
      fetchBlob: async (_repository: string, expected: { digest: Digest }, store: LocalStore['content']) => await store.ingest(await elsewhere.content.readBytes(expected.digest), { digest: expected.digest })
    } as unknown as RegistryClient
    const nobody: NetworkBaseSourceInit['pull'] = async (root) => { throw new NoProvidersError(`no provider of ${root}`) }
    await expect(createNetworkBaseSource({ store: mine.content, refs: mine.refs, pull: nobody, registryClient: () => client }).open([pin], REQUESTER, AbortSignal.timeout(10_000)))
      .rejects.toMatchObject({ name: 'BaseUnavailableError' })
    expect(asked).toEqual([])
    const held = await createNetworkBaseSource({ store: mine.content, refs: mine.refs, pull: nobody, registries: true, registryClient: () => client, leases }).open([pin], REQUESTER, AbortSignal.timeout(10_000))
    expect(asked).toEqual([`site/base@${image.digest}`])
    for (const d of blobs) expect(await mine.content.has(d)).toBe(true)
    expect([...leases.held()].sort()).toEqual([...blobs].sort())
    held.release()
  })
})

describe('a job plan with pinned bases', () => {
  const digest = `sha256:${'e'.repeat(64)}`
  const parse = (text: string): ReturnType<typeof parseRecipe> => parseRecipe(text, { filename: 'Dockerfile', platform: 'linux/amd64' })
  const pinned = (ref: string): BasePin => ({ ref, platform: 'linux/amd64', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 500 })

  it('builds pinned refs from their digests and takes unpinned local names from the store', () => {
    const plan = pinPlan(parse('FROM docker://quay.io/site/base:1\nCOPY --from=tools:2 /x /x\n'), [pinned('docker://quay.io/site/base:1')])
    expect(plan.stages[0]?.base).toEqual({ kind: 'image', ref: digest })
    expect(plan.stages[0]?.steps[0]).toMatchObject({ op: 'copy', from: { kind: 'image', ref: 'tools:2' } })
  })

  it('refuses a registry or a path on the agent that the job does not pin', () => {
    expect(() => pinPlan(parse('FROM docker://quay.io/site/base:1\n'))).toThrow(expect.objectContaining({ name: 'JobRefusedError', message: expect.stringContaining('base docker://quay.io/site/base:1: the job does not pin it') }))
    expect(() => pinPlan(parse('FROM scratch\nCOPY --from=oci:/etc/secrets /x /x\n'))).toThrow(expect.objectContaining({ name: 'JobRefusedError' }))
  })
})
