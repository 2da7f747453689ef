/**
 * The real BaseSource: brings the bases a job pins (protocols/job.md §3.1)
 * into the store by digest, whole (manifest, config, layers), from the
 * requester or any provider over the blob protocol, or, when the operator
 * allows it, by digest from the registry the base's ref names. Every blob
 * is verified by its digest as it is stored, so where it came from does not
 * matter. The blobs are kept from `kiln gc` and quota eviction until the
 * job releases them.
 */
import type { BasePin } from '../../protocols/job.ts'
import type { ContentStore, Digest, Leases, RefStore } from '../../src/content/index.ts'
import { resolveBase } from '../../src/builder/index.ts'
import type { BaseResolverInit } from '../../src/builder/index.ts'
import { MAX_MANIFEST_SIZE, formatDockerName, parseDockerName, parseImageRef, parseManifestBytes, parsePlatform } from '../../src/oci/index.ts'
import type { DockerName } from '../../src/oci/index.ts'
import { BaseUnavailableError } from './errors.ts'
import type { BaseSource } from './index.ts'

export interface NetworkBaseSourceInit {
  store: ContentStore
  /** The store's names; a pull by digest names nothing, resolveBase only reads them. */
  refs: RefStore
  /** Fetches an image graph by its root digest into the store, verified; e.g. Transfer.pull. `hold` is called with each digest before it is written. */
  pull: (root: Digest, options: { size: number, providers: string[], signal: AbortSignal, hold: (digest: Digest) => void }) => Promise<unknown>
  /** When given, the bases are kept from `kiln gc` while the job holds them. */
  leases?: Leases
  /**
   * Ask the registry a pinned base's ref names (by digest) when no peer
   * provides it. Default false: bases travel peer to peer only.
   */
  registries?: boolean
  /** A client for a registry host (tests); default src/registry's. */
  registryClient?: BaseResolverInit['registryClient']
}

/** Longest a base lease lasts if the agent dies before releasing it. */
const BASE_LEASE_MS = 24 * 3600_000

/** The blobs of a pinned image the store holds, or undefined while any is missing. */
async function wholeImage (store: ContentStore, pin: BasePin): Promise<Digest[] | undefined> {
  const root = pin.digest as Digest
  if (!await store.has(root)) return undefined
  const parsed = parseManifestBytes(await store.readBytes(root, MAX_MANIFEST_SIZE), pin.mediaType)
  if (parsed.kind !== 'manifest') throw new BaseUnavailableError(pin, `${pin.digest} is ${parsed.mediaType}, not a single-platform image manifest`)
  const blobs = [parsed.value.config.digest, ...parsed.value.layers.map(l => l.digest)]
  for (const d of blobs) if (!await store.has(d)) return undefined
  return [root, ...blobs]
}

/** The registry name of a pinned ref, when it has one (`docker://...`, or a plain name read as buildah reads it). */
function registryName (ref: string): DockerName | undefined {
  try {
    const parsed = parseImageRef(ref)
    if (parsed.transport === 'docker') return parsed.name
    if (parsed.transport === 'local') return parseDockerName(ref)
  } catch { /* no registry name */ }
  return undefined
}

export function createNetworkBaseSource (init: NetworkBaseSourceInit): BaseSource {
  const { store } = init

  const fromRegistry = async (pin: BasePin, name: DockerName, signal: AbortSignal): Promise<void> => {
    // By digest, never by tag: the registry may have moved the tag since the requester pinned it.
    const byDigest = formatDockerName({ domain: name.domain, path: name.path, digest: pin.digest as Digest })
    const resolved = await resolveBase({
      store, refs: init.refs, signal,
      ...(init.registryClient !== undefined ? { registryClient: init.registryClient } : {})
    }, `docker://${byDigest}`, parsePlatform(pin.platform))
    if (resolved.manifestDigest !== pin.digest) throw new Error(`the registry gave ${resolved.manifestDigest ?? 'no manifest'} for ${byDigest}`)
  }

  const fetchOne = async (pin: BasePin, requester: string, signal: AbortSignal, hold: (digests: Digest[]) => void): Promise<void> => {
    hold([pin.digest as Digest])
    const held = await wholeImage(store, pin)
    if (held !== undefined) { hold(held); return }
    let peerError: Error
    try {
      await init.pull(pin.digest as Digest, { size: pin.size, providers: [requester], signal, hold: d => { hold([d]) } })
      const whole = await wholeImage(store, pin)
      if (whole === undefined) throw new BaseUnavailableError(pin, 'fetched, but blobs of the image are still missing')
      hold(whole)
      return
    } catch (err) {
      signal.throwIfAborted()
      if (err instanceof BaseUnavailableError) throw err
      peerError = err as Error
    }
    const name = init.registries === true ? registryName(pin.ref) : undefined
    if (name === undefined) {
      throw new BaseUnavailableError(pin, `no peer provides it (asked the requester and the network): ${peerError.message}`, { cause: peerError })
    }
    try {
      await fromRegistry(pin, name, signal)
    } catch (err) {
      signal.throwIfAborted()
      throw new BaseUnavailableError(pin, `no peer provides it (${peerError.message}), and ${name.domain} did not either: ${(err as Error).message}`, { cause: err })
    }
    const whole = await wholeImage(store, pin)
    if (whole === undefined) throw new BaseUnavailableError(pin, `pulled from ${name.domain}, but blobs of the image are still missing`)
    hold(whole)
  }

  return {
    async open (bases, requester, signal) {
      const lease = init.leases?.create('job-base', BASE_LEASE_MS)
      const hold = (digests: Digest[]): void => { if (lease !== undefined) init.leases?.add(lease, digests) }
      const release = (): void => { if (lease !== undefined) init.leases?.release(lease) }
      try {
        const seen = new Set<string>()
        for (const pin of bases) {
          if (seen.has(pin.digest)) continue
          seen.add(pin.digest)
          await fetchOne(pin, requester, signal, hold)
        }
      } catch (err) {
        release()
        throw err
      }
      return { release }
    }
  }
}
