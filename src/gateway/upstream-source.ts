/**
 * Pull-through from upstream registries (mirror mode, see ./mirror.ts):
 * a repository `<prefix>/<path>` whose prefix is a configured upstream is
 * fetched from that registry's `<path>` with src/registry, verified by
 * digest into the store. Tags are asked upstream each time (they move);
 * manifests and blobs, named by digest, are kept.
 */
import type { Digest } from '../content/digest.ts'
import type { ContentStore, Ingester } from '../content/index.ts'
import { createRegistryClient } from '../registry/index.ts'
import type { RegistryClient, RegistryClientInit } from '../registry/index.ts'
import { isIndex, isManifest, parseManifestBytes } from '../oci/index.ts'
import { mirrorPrefix, splitMirrored } from './mirror.ts'
import type { NamedPullThrough } from './pull-through.ts'
import { UPSTREAM_SIZE_MEMORY } from './constants.ts'
import { RegistryNotFoundError } from '../registry/errors.ts'
import { isErrorOf } from '../util/error-class.ts'

export interface Upstream {
  /** The registry namespace clients use, `docker.io`, `quay.io`, `localhost:5001`. */
  namespace: string
  /** Where to reach it: host[:port] (default: the namespace; docker.io means registry-1.docker.io). */
  registry?: string
  scheme?: 'http' | 'https'
}

export interface UpstreamPullThroughInit {
  upstreams: readonly Upstream[]
  store: ContentStore
  /** Extra client options for every upstream (tests: fetch, env for auth files). */
  client?: Omit<RegistryClientInit, 'registry' | 'scheme'>
}

/** Parses `--upstream NS[=URL]`: `docker.io`, `docker.io=https://mirror.example.org`, `localhost:5001=http://127.0.0.1:5001`. */
export function parseUpstream (text: string): Upstream {
  const eq = text.indexOf('=')
  const namespace = eq < 0 ? text : text.slice(0, eq)
  if (mirrorPrefix(namespace) === undefined) throw new TypeError(`upstream namespace ${JSON.stringify(namespace)} is not a registry host[:port]`)
  if (eq < 0) return { namespace }
  const url = new URL(text.slice(eq + 1))
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`upstream ${JSON.stringify(text)}: expected an http(s) URL`)
  return { namespace, registry: url.host, scheme: url.protocol === 'http:' ? 'http' : 'https' }
}

/** An Ingester that ignores an unknown (negative) expected size: the digest still decides. */
function sizeOptional (store: Ingester): Ingester {
  return {
    ingest: async (source, expected, options) => await store.ingest(source, expected === undefined || (expected.size ?? 0) >= 0 ? expected : { ...(expected.digest === undefined ? {} : { digest: expected.digest }) }, options),
    openPartial: async (digest, size) => await store.openPartial(digest, size)
  }
}

export function createUpstreamPullThrough (init: UpstreamPullThroughInit): NamedPullThrough {
  const clients = new Map<string, RegistryClient>()
  for (const u of init.upstreams) {
    const prefix = mirrorPrefix(u.namespace)
    if (prefix === undefined) throw new TypeError(`upstream namespace ${JSON.stringify(u.namespace)} is not a registry host[:port]`)
    clients.set(prefix, createRegistryClient({ ...init.client, registry: u.registry ?? u.namespace, ...(u.scheme === undefined ? {} : { scheme: u.scheme }) }))
  }
  // Sizes and kinds of descriptors seen in upstream manifests, so a later blob fetch can check the size up front.
  const seen = new Map<Digest, { size: number, manifest: boolean }>()
  const remember = (bytes: Uint8Array, mediaType: string): void => {
    let parsed
    try { parsed = parseManifestBytes(bytes, isManifest(mediaType) || isIndex(mediaType) ? mediaType : undefined) } catch { return }
    const descriptors = parsed.kind === 'index'
      ? parsed.value.manifests.map(d => ({ digest: d.digest, size: d.size, manifest: isManifest(d.mediaType) || isIndex(d.mediaType) }))
      : [parsed.value.config, ...parsed.value.layers].map(d => ({ digest: d.digest, size: d.size, manifest: false }))
    for (const d of descriptors) {
      if (seen.size >= UPSTREAM_SIZE_MEMORY) seen.delete(seen.keys().next().value as Digest)
      seen.set(d.digest, { size: d.size, manifest: d.manifest })
    }
  }
  const route = (repository: string, namespace?: string): { client: RegistryClient, upstreamRepository: string } | undefined => {
    if (namespace !== undefined) {
      const client = clients.get(namespace)
      return client === undefined ? undefined : { client, upstreamRepository: repository }
    }
    const split = splitMirrored(repository, clients.keys())
    if (split === undefined) return undefined
    return { client: clients.get(split.prefix) as RegistryClient, upstreamRepository: split.upstreamRepository }
  }
  const getManifest = async (client: RegistryClient, repository: string, reference: string): Promise<{ digest: Digest, mediaType: string, size: number } | undefined> => {
    let fetched
    try {
      fetched = await client.getManifest(repository, reference)
    } catch (err) {
      if (isErrorOf(err, RegistryNotFoundError)) return undefined
      throw err
    }
    await init.store.ingest(fetched.bytes, { digest: fetched.digest, size: fetched.bytes.byteLength })
    remember(fetched.bytes, fetched.mediaType)
    return { digest: fetched.digest, mediaType: fetched.mediaType, size: fetched.bytes.byteLength }
  }
  return {
    name: 'upstream',
    fetchBlob: async (digest, hint) => {
      const target = hint === undefined ? undefined : route(hint.repository, hint.namespace)
      if (target === undefined) return false
      const known = seen.get(digest)
      if (hint?.kind === 'manifest' || known?.manifest === true) {
        return await getManifest(target.client, target.upstreamRepository, digest) !== undefined
      }
      try {
        await target.client.fetchBlob(target.upstreamRepository, { digest, size: known?.size ?? -1 }, sizeOptional(init.store))
        return true
      } catch (err) {
        if (isErrorOf(err, RegistryNotFoundError)) return false
        throw err
      }
    },
    resolveTag: async (repository, tag, hint) => {
      const target = route(repository, hint?.namespace)
      if (target === undefined) return undefined
      return await getManifest(target.client, target.upstreamRepository, tag)
    }
  }
}
