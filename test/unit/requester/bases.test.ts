import { gzipSync } from 'node:zlib'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openLocalStore, sha256Digest } from '../../../src/content/index.ts'
import type { Digest, LocalStore } from '../../../src/content/index.ts'
import { importImage, parseImageRef } from '../../../src/oci/index.ts'
import type { Descriptor } from '../../../src/oci/index.ts'
import { parseRecipe } from '../../../src/recipe/index.ts'
import { heldBlobs, pinBases } from '../../../src/requester/index.ts'
import type { BasePinnerInit } from '../../../src/requester/index.ts'
import { NoProvidersError } from '../../../src/transfer/errors.ts'
import { writeLayout } from '../../helpers/oci-layout.ts'
import { tempDirs } from '../../helpers/temp.ts'

const temp = tempDirs('kiln-bases-')
let mine: LocalStore
let network: LocalStore
let image: Descriptor
let config: Digest
let layer: Digest
/** Digests the fake network was asked for, in order. */
let asked: Digest[]

/** The network: whatever `network`'s store holds, copied into ours on request. */
const fetchFromNetwork: NonNullable<BasePinnerInit['fetch']> = async (digest) => {
  asked.push(digest)
  if (!await network.content.has(digest)) throw new NoProvidersError(`no provider of ${digest}`)
  await mine.content.ingest(await network.content.readBytes(digest), { digest })
}

const plan = (text: string, platform = 'linux/amd64'): { platform: string, plan: ReturnType<typeof parseRecipe> } =>
  ({ platform, plan: parseRecipe(text, { filename: 'Dockerfile', platform }) })

beforeEach(async () => {
  asked = []
  const layout = temp.make()
  writeLayout(layout, [gzipSync(Buffer.from('the base layer'))], 'base')
  mine = await openLocalStore(temp.make())
  network = await openLocalStore(temp.make())
  const roots = await importImage(network.content, parseImageRef(`oci:${layout}:base`))
  image = roots[0]?.descriptor as Descriptor
  const manifest = JSON.parse(new TextDecoder().decode(await network.content.readBytes(image.digest))) as { config: { digest: Digest }, layers: Array<{ digest: Digest }> }
  config = manifest.config.digest
  layer = manifest.layers[0]?.digest as Digest
})
afterEach(() => {
  mine.close()
  network.close()
  temp.cleanup()
})

describe('pinning a job\'s bases', () => {
  it('pins a name in the store to its manifest once per platform, however often the recipe names it, and holds all its blobs', async () => {
    for (const d of [image.digest, config, layer]) await mine.content.ingest(await network.content.readBytes(d), { digest: d })
    mine.refs.set('site/base', '1', image)
    const { pins, unpinned } = await pinBases({ store: mine.content, refs: mine.refs, fetch: fetchFromNetwork }, [plan('FROM site/base:1\nCOPY --from=site/base:1 /a /a\n')])
    expect(unpinned).toEqual([])
    expect(pins).toEqual([{ ref: 'site/base:1', platform: 'linux/amd64', digest: image.digest, mediaType: image.mediaType, size: image.size }])
    expect(asked).toEqual([])
    expect((await heldBlobs(mine.content, pins)).sort()).toEqual([image.digest, config, layer].sort())
  })

  it('pins an index to the manifest of the job\'s platform', async () => {
    for (const d of [image.digest, config]) await mine.content.ingest(await network.content.readBytes(d), { digest: d })
    const other = `sha256:${'c'.repeat(64)}`
    const index = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: image.mediaType, digest: other, size: 100, platform: { os: 'linux', architecture: 'arm64' } },
        { mediaType: image.mediaType, digest: image.digest, size: image.size, platform: { os: 'linux', architecture: 'amd64' } }
      ]
    }))
    const at = (await mine.content.ingest(index)).digest
    const { pins } = await pinBases({ store: mine.content, refs: mine.refs }, [plan(`FROM ${at}\n`)])
    expect(pins).toEqual([{ ref: at, platform: 'linux/amd64', digest: image.digest, mediaType: image.mediaType, size: image.size }])
  })

  it('pins a digest only the network holds, bringing in what resolving needs (manifest, config) and not the layers', async () => {
    const ref = `elsewhere/base@${image.digest}`
    const { pins } = await pinBases({ store: mine.content, refs: mine.refs, fetch: fetchFromNetwork }, [plan(`FROM ${ref}\n`)])
    expect(pins).toEqual([{ ref, platform: 'linux/amd64', digest: image.digest, mediaType: image.mediaType, size: image.size }])
    expect(asked).toEqual([image.digest, config])
    expect(await mine.content.has(layer)).toBe(false)
    expect((await heldBlobs(mine.content, pins)).sort()).toEqual([image.digest, config].sort())
  })

  it('refuses a digest nobody provides, naming the base, the platform and the digest', async () => {
    const missing = sha256Digest('nobody has this')
    await expect(pinBases({ store: mine.content, refs: mine.refs, fetch: fetchFromNetwork }, [plan(`FROM ${missing}\n`)]))
      .rejects.toMatchObject({ name: 'BaseImageError', message: `base image ${missing} for linux/amd64: ${missing} is not in the store, and no peer provides it (no provider of ${missing})` })
  })

  it('leaves a plain name neither the store nor its registry knows to the builders, and refuses a registry ref', async () => {
    const registryClient = (): never => { throw new TypeError('fetch failed') }
    const { pins, unpinned } = await pinBases({ store: mine.content, refs: mine.refs, registryClient }, [plan('FROM registry.invalid/nothing:1\n')])
    expect(pins).toEqual([])
    expect(unpinned).toEqual([{ ref: 'registry.invalid/nothing:1', platform: 'linux/amd64', reason: expect.stringMatching(/^base image registry\.invalid\/nothing:1: cannot pull registry\.invalid\/nothing:1/) }])
    await expect(pinBases({ store: mine.content, refs: mine.refs, registryClient }, [plan('FROM docker://registry.invalid/nothing:1\n')]))
      .rejects.toMatchObject({ name: 'BaseImageError', message: expect.stringMatching(/^base image docker:\/\/registry\.invalid\/nothing:1: cannot pull/) })
  })
})
