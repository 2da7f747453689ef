/**
 * A client for OCI distribution registries (docker.io, quay.io, GHCR,
 * Harbor, distribution, kiln's own gateway): the builder pulls `docker://`
 * bases with it, exporters push with it.
 *
 * Terms:
 * - registry: a host[:port]; `docker.io` is served from registry-1.docker.io.
 *   Loopback hosts (and `insecure`) use plain HTTP, others HTTPS.
 * - repository: a path in a registry (`library/busybox`).
 * - reference: a tag or a digest naming a manifest in a repository.
 * - credentials: from options, else from the containers/docker auth files
 *   (see ./auth-file.ts). Used at a token realm or for basic auth, only when
 *   the registry asks for them.
 *
 * Everything fetched is verified: manifests by digest when the reference is
 * one (and against Docker-Content-Digest), blobs by digest and size in the
 * content store's ingest.
 *
 * @example
 * ```ts
 * const client = createRegistryClient({ registry: 'docker.io' })
 * const image = await pullImage(client, 'library/busybox', 'latest', store, { platform: hostPlatform() })
 * await pushImage(createRegistryClient({ registry: '127.0.0.1:5000' }), store, image, 'hpc/busybox', 'v1')
 * ```
 */
import type { Digest } from '../content/digest.ts'
import type { BlobInfo, BlobReader, ContentStore, Ingester } from '../content/index.ts'
import type { Descriptor, DockerName, Platform } from '../oci/index.ts'
import type { Credentials } from './auth-file.ts'
import { HttpRegistryClient } from './client.ts'
import { pullImageImpl } from './pull.ts'
import { pushImageImpl } from './push.ts'

export { findCredentials, authFilePaths } from './auth-file.ts'
export type { Credentials } from './auth-file.ts'
export * from './errors.ts'
export { parseChallenge } from './www-authenticate.ts'
export type { Challenge } from './www-authenticate.ts'

export interface RegistryClientInit {
  /** host[:port], e.g. `docker.io`, `quay.io`, `127.0.0.1:5000`. */
  registry: string
  /** Plain HTTP even for a non-loopback host. */
  insecure?: boolean
  /** Force the scheme (e.g. `https` for a TLS gateway on loopback); default from host and `insecure`. */
  scheme?: 'http' | 'https'
  credentials?: Credentials
  /** Look credentials up in the auth files when none are given; default true. */
  useAuthFile?: boolean
  /** Environment for the auth file lookup; default process.env. */
  env?: NodeJS.ProcessEnv
  userAgent?: string
  /** A fetch to use instead of the global one (tests). */
  fetch?: typeof fetch
}

export interface FetchedManifest {
  bytes: Uint8Array
  digest: Digest
  /** The Content-Type the registry served. */
  mediaType: string
}

/** Bytes, or a store holding the blob. */
export type BlobSource = Uint8Array | BlobReader

export interface PushBlobOptions {
  /** Blobs above this go in PATCH chunks of this size; default DEFAULT_CHUNK_SIZE. */
  chunkSize?: number
  /** Chunked even when small. */
  chunked?: boolean
  /** Try a cross-repository mount from this repository first. */
  mountFrom?: string
}

export interface RegistryClient {
  readonly registry: string
  /** `http(s)://host[:port]`. */
  readonly baseUrl: string
  /** `GET /v2/`, authenticating if asked; throws RegistryUnauthorizedError when refused. */
  ping: () => Promise<void>
  /** Throws RegistryNotFoundError, ManifestDigestMismatchError. */
  getManifest: (repository: string, reference: string) => Promise<FetchedManifest>
  /** Digest and type of a manifest without fetching it; undefined when absent. */
  headManifest: (repository: string, reference: string) => Promise<{ digest: Digest, mediaType: string, size: number } | undefined>
  hasBlob: (repository: string, digest: Digest) => Promise<boolean>
  /** Streams a blob into the store, verified against digest and size. */
  fetchBlob: (repository: string, expected: { digest: Digest, size: number }, store: Ingester, signal?: AbortSignal) => Promise<BlobInfo>
  /** Pushes a blob unless the registry has it. */
  pushBlob: (repository: string, blob: { digest: Digest, size: number }, source: BlobSource, options?: PushBlobOptions) => Promise<'exists' | 'mounted' | 'uploaded'>
  /** PUTs a manifest under a tag or its digest; returns its digest. */
  pushManifest: (repository: string, reference: string, bytes: Uint8Array, mediaType: string) => Promise<Digest>
  /** Every tag, following Link pagination. */
  listTags: (repository: string) => Promise<string[]>
}

export interface PullOptions {
  /** Fetch only this platform's image from an index. */
  platform?: Platform
  /** Called with each config or layer blob once it is stored, or found already present. */
  onBlob?: (descriptor: Descriptor, status: 'stored' | 'present') => void
  /** Called as a blob is being stored, with the bytes written so far. */
  onProgress?: (descriptor: Descriptor, bytes: number) => void
}

export interface PulledImage {
  /** The root: what the reference named (an index or a manifest). */
  digest: Digest
  mediaType: string
  size: number
  /** Digests of the image manifests fetched (one per platform). */
  manifests: Digest[]
}

export interface PushOptions {
  chunkSize?: number
  mountFrom?: string
  onBlob?: (descriptor: Descriptor) => void
}

export function createRegistryClient (init: RegistryClientInit): RegistryClient {
  return new HttpRegistryClient(init)
}

/** A client for a parsed `docker://` name's registry. */
export function clientFor (name: DockerName, init: Omit<RegistryClientInit, 'registry'> = {}): RegistryClient {
  return createRegistryClient({ ...init, registry: name.domain })
}

/** Fetches a manifest or index and all it references into the store. */
export async function pullImage (client: RegistryClient, repository: string, reference: string, store: ContentStore, options?: PullOptions): Promise<PulledImage> {
  return await pullImageImpl(client, repository, reference, store, options)
}

/** Pushes a manifest or index from the store, with everything it references, under reference (a tag or its digest). */
export async function pushImage (client: RegistryClient, store: BlobReader, root: { digest: Digest, mediaType?: string }, repository: string, reference: string, options?: PushOptions): Promise<Digest> {
  return await pushImageImpl(client, store, root, repository, reference, options)
}
