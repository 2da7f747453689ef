/**
 * Pinning a job's bases (protocols/job.md §3.1): every image a recipe names
 * (`imageRefsOf`, src/recipe), for each platform of the job, resolved to the
 * single-platform image manifest it means there, before the job is signed.
 *
 * Where a ref is resolved:
 * - a ref that names a digest (`sha256:...`, `REPO@sha256:...`,
 *   `docker://HOST/REPO@sha256:...`): the store, else the network (any
 *   provider of the digest), else what src/builder's resolveBase does with
 *   it (the registry its name points at);
 * - any other ref: src/builder's resolveBase, the same resolution as
 *   `kiln build` on this node (the store, a registry, an `oci:` layout).
 * Whatever is resolved stays in the store, so the requester can serve it.
 *
 * A plain name (`REPO[:TAG]`, no digest, no transport) that neither the
 * store nor its registry knows is left unpinned rather than refused: as in
 * jobs from requesters that do not pin, a builder then takes it from its
 * own store, where operators put shared bases (`kiln image import -t`).
 */
import type { BasePin } from '../../protocols/job.ts'
import type { BlobReader, ContentStore, Digest, RefStore } from '../content/index.ts'
import { BaseImageError, resolveBase } from '../builder/index.ts'
import type { BaseResolverInit } from '../builder/index.ts'
import { MAX_MANIFEST_SIZE, parseImageRef, parseManifestBytes, parsePlatform, resolveImage } from '../oci/index.ts'
import type { Descriptor, Platform } from '../oci/index.ts'
import { imageRefsOf } from '../recipe/index.ts'
import type { BuildPlan } from '../recipe/index.ts'

export interface BasePinnerInit {
  store: ContentStore
  refs: RefStore
  /** Brings a blob the store lacks from the network (any provider), verified; absent: digests are looked up in the store and registries only. */
  fetch?: (digest: Digest, signal?: AbortSignal) => Promise<void>
  /** A client for a registry host (tests); default src/registry's. */
  registryClient?: BaseResolverInit['registryClient']
  signal?: AbortSignal
}

/** A plain name this node could not resolve: the builder must hold it (see above). */
export interface UnpinnedBase {
  ref: string
  platform: string
  /** Why it could not be resolved here. */
  reason: string
}

export interface PinnedBases {
  pins: BasePin[]
  unpinned: UnpinnedBase[]
}

/** One plan of the job per platform, as the builder of that platform will parse it. */
export interface PlatformPlan {
  platform: string
  plan: BuildPlan
}

/** The digest a ref names, when it names one. */
function namedDigest (ref: string): Digest | undefined {
  const parsed = parseImageRef(ref)
  if (parsed.transport === 'digest') return parsed.digest
  if (parsed.transport === 'local') return parsed.digest
  if (parsed.transport === 'docker') return parsed.name.digest
  return undefined
}

/** The store, with blobs it lacks fetched from the network as they are read. */
function fetchingReader (store: ContentStore, fetch: NonNullable<BasePinnerInit['fetch']>, signal: AbortSignal | undefined): BlobReader {
  return {
    info: store.info,
    has: store.has,
    read: store.read,
    path: store.path,
    readBytes: async (digest, maxSize) => {
      if (!await store.has(digest)) await fetch(digest, signal)
      return await store.readBytes(digest, maxSize)
    }
  }
}

/** A digest-named base from the store or the network, or undefined when neither has its root. */
async function fromDigest (init: BasePinnerInit, digest: Digest, platform: Platform): Promise<{ manifest: Descriptor } | { missing: string }> {
  const { store } = init
  if (!await store.has(digest)) {
    if (init.fetch === undefined) return { missing: 'not in the store' }
    try {
      await init.fetch(digest, init.signal)
    } catch (err) {
      init.signal?.throwIfAborted()
      return { missing: `not in the store, and no peer provides it (${(err as Error).message})` }
    }
  }
  const bytes = await store.readBytes(digest, MAX_MANIFEST_SIZE)
  const root: Descriptor = { mediaType: parseManifestBytes(bytes).mediaType, digest, size: bytes.byteLength }
  const reader = init.fetch === undefined ? store : fetchingReader(store, init.fetch, init.signal)
  return { manifest: (await resolveImage(reader, root, platform)).descriptor }
}

/** Whether a ref is a plain name, which builders may also hold under that name. */
function isPlainName (ref: string): boolean {
  const parsed = parseImageRef(ref)
  return parsed.transport === 'local' && parsed.digest === undefined
}

async function pinOne (init: BasePinnerInit, ref: string, platform: string): Promise<BasePin | UnpinnedBase> {
  const wanted = parsePlatform(platform)
  let digest: Digest | undefined
  try { digest = namedDigest(ref) } catch (err) { throw new BaseImageError(`base image ${JSON.stringify(ref)}: ${(err as Error).message}`) }
  let manifest: Descriptor | undefined
  if (digest !== undefined) {
    try {
      const found = await fromDigest(init, digest, wanted)
      if ('manifest' in found) manifest = found.manifest
      // A bare digest has no registry to fall back on.
      else if (parseImageRef(ref).transport === 'digest') throw new BaseImageError(`base image ${ref} for ${platform}: ${digest} is ${found.missing}`)
    } catch (err) {
      if (err instanceof BaseImageError) throw err
      init.signal?.throwIfAborted()
      throw new BaseImageError(`base image ${ref} for ${platform}: ${(err as Error).message}`)
    }
  }
  if (manifest === undefined) {
    let resolved
    try {
      resolved = await resolveBase({
        store: init.store, refs: init.refs,
        ...(init.registryClient !== undefined ? { registryClient: init.registryClient } : {}),
        ...(init.signal !== undefined ? { signal: init.signal } : {})
      }, ref, wanted)
    } catch (err) {
      init.signal?.throwIfAborted()
      if (err instanceof BaseImageError && isPlainName(ref)) return { ref, platform, reason: err.message }
      throw err
    }
    if (resolved.descriptor === undefined) throw new BaseImageError(`base image ${ref} for ${platform}: resolves to no image`)
    manifest = resolved.descriptor
  }
  return { ref, platform, digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.size }
}

/**
 * Every image the plans name, pinned per platform, in recipe order, and the
 * plain names left unpinned. Throws BaseImageError naming the first other
 * base it cannot resolve.
 */
export async function pinBases (init: BasePinnerInit, plans: PlatformPlan[]): Promise<PinnedBases> {
  const out: PinnedBases = { pins: [], unpinned: [] }
  for (const { platform, plan } of plans) {
    for (const ref of imageRefsOf(plan)) {
      const r = await pinOne(init, ref, platform)
      if ('digest' in r) out.pins.push(r)
      else out.unpinned.push(r)
    }
  }
  return out
}

/** The blobs of pinned images that the store holds (manifest, config, layers): what a requester serves while the job lives. */
export async function heldBlobs (store: ContentStore, pins: BasePin[]): Promise<Digest[]> {
  const out = new Set<Digest>()
  for (const pin of pins) {
    const digest = pin.digest as Digest
    if (!await store.has(digest)) continue
    out.add(digest)
    const parsed = parseManifestBytes(await store.readBytes(digest, MAX_MANIFEST_SIZE), pin.mediaType)
    if (parsed.kind !== 'manifest') continue
    for (const d of [parsed.value.config, ...parsed.value.layers]) if (await store.has(d.digest)) out.add(d.digest)
  }
  return [...out]
}
