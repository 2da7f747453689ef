/**
 * Bases that are SIF images (Apptainer's format), read into the store by
 * src/sif's importSif as a single-layer image. By reference:
 * - `sif:PATH`: a SIF file on this machine (`Bootstrap: localimage`).
 * - `oras://HOST/REPO:TAG|@DIGEST`: an ORAS artifact in any OCI registry, a
 *   manifest whose layer has media type SIF_LAYER_MEDIA_TYPE (what
 *   `apptainer push oras://` writes); the layer is fetched into the store
 *   (verified by digest) and converted.
 * - `library://[ENTITY/[COLLECTION/]]CONTAINER[:TAG]`: a Sylabs-library-API
 *   service at the configured `build.libraryUrl`
 *   (`GET URL/v1/imagefile/ENTITY/COLLECTION/CONTAINER:TAG?arch=ARCH`); refused
 *   when none is configured, since the public library needs an account.
 * A SIF is unpacked under tmpDir (the builder's workDir), never in /tmp,
 * whose size HPC nodes limit.
 */
import { createWriteStream } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ContentStore } from '../content/index.ts'
import { MAX_MANIFEST_SIZE, parseDockerName, parseManifestBytes } from '../oci/index.ts'
import type { Descriptor, Platform } from '../oci/index.ts'
import type { RegistryClient } from '../registry/index.ts'
import { SIF_LAYER_MEDIA_TYPE, importSif } from '../sif/index.ts'
import { removeTree } from '../util/fs.ts'

export interface SifBaseInit {
  store: ContentStore
  /** Where SIF files are staged and unpacked; default os.tmpdir(). */
  tmpDir?: string
  /** The library service for `library://` bases (kiln.yaml `build.libraryUrl`). */
  libraryUrl?: string
  registryClient: (registry: string) => Promise<RegistryClient>
  signal?: AbortSignal
}

/** A base of one of these forms, or undefined when the text names none. */
export type SifBaseRef = { kind: 'file', path: string } | { kind: 'oras', text: string } | { kind: 'library', path: string }

export function sifBaseRef (text: string): SifBaseRef | undefined {
  if (text.startsWith('sif:')) return { kind: 'file', path: text.slice(4) }
  if (text.startsWith('oras://')) return { kind: 'oras', text: text.slice(7) }
  if (text.startsWith('library://')) return { kind: 'library', path: text.slice(10).replace(/^\/+/, '') }
  return undefined
}

/** Why a SIF base cannot be had: the caller turns it into a BaseImageError with the reference and recipe line. */
export class SifBaseUnavailableError extends Error {
  static override readonly name = 'SifBaseUnavailableError'
  override readonly name = SifBaseUnavailableError.name
  readonly hint: string | undefined
  constructor (message: string, hint?: string) {
    super(message)
    this.hint = hint
  }
}

async function importFile (init: SifBaseInit, path: string): Promise<Descriptor> {
  const r = await importSif(init.store, path, { ...(init.tmpDir === undefined ? {} : { tmpDir: init.tmpDir }), ...(init.signal === undefined ? {} : { signal: init.signal }) })
  return r.descriptor
}

/** Runs fn with a temp file path under tmpDir, removed afterwards. */
async function withTempFile<T> (init: SifBaseInit, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(init.tmpDir ?? tmpdir(), 'kiln-sif-base-'))
  try { return await fn(join(dir, 'image.sif')) } finally { await removeTree(dir) }
}

async function fromOras (init: SifBaseInit, text: string): Promise<Descriptor> {
  const name = parseDockerName(text)
  const client = await init.registryClient(name.domain)
  const fetched = await client.getManifest(name.path, name.digest ?? name.tag ?? 'latest')
  if (fetched.bytes.byteLength > MAX_MANIFEST_SIZE) throw new SifBaseUnavailableError(`the manifest of ${text} is larger than ${MAX_MANIFEST_SIZE} bytes`)
  const parsed = parseManifestBytes(fetched.bytes)
  const layers = parsed.kind === 'manifest' ? parsed.value.layers.filter(l => l.mediaType === SIF_LAYER_MEDIA_TYPE) : []
  const layer = layers[0]
  if (layer === undefined || layers.length > 1) {
    throw new SifBaseUnavailableError(`${text} is not a SIF artifact: its manifest has ${layers.length} layers of type ${SIF_LAYER_MEDIA_TYPE}, not one`,
      'push a SIF with apptainer push or oras push FILE:application/vnd.sylabs.sif.layer.v1.sif; for an OCI image use Bootstrap: docker')
  }
  if (!await init.store.has(layer.digest)) await client.fetchBlob(name.path, { digest: layer.digest, size: layer.size }, init.store, init.signal)
  return await withTempFile(init, async (file) => {
    await pipeline(Readable.from(init.store.read(layer.digest, init.signal === undefined ? {} : { signal: init.signal })), createWriteStream(file, { mode: 0o600 }))
    return await importFile(init, file)
  })
}

/** `ENTITY/COLLECTION/CONTAINER:TAG` as the library API names it (Apptainer's defaults: entity `library`, collection `default`, tag `latest`). */
export function libraryPath (path: string): string {
  const slash = path.lastIndexOf('/')
  const colon = path.lastIndexOf(':')
  const withTag = colon > slash ? path : `${path}:latest`
  const parts = withTag.split('/')
  if (parts.some(p => p === '' || p === '.' || p === '..') || parts.length > 3) throw new SifBaseUnavailableError(`library://${path} is not ENTITY/COLLECTION/CONTAINER[:TAG]`)
  if (parts.length === 1) return `library/default/${withTag}`
  if (parts.length === 2) return `${parts[0] as string}/default/${parts[1] as string}`
  return withTag
}

async function fromLibrary (init: SifBaseInit, path: string, platform: Platform): Promise<Descriptor> {
  if (init.libraryUrl === undefined) {
    throw new SifBaseUnavailableError('no library service is configured',
      'set build.libraryUrl in kiln.yaml to a Sylabs-library-API service (e.g. a self-hosted Hinkskalle), or pull the image with apptainer and use Bootstrap: localimage')
  }
  const url = new URL(`v1/imagefile/${libraryPath(path).split('/').map(encodeURIComponent).join('/')}`, init.libraryUrl.endsWith('/') ? init.libraryUrl : `${init.libraryUrl}/`)
  url.searchParams.set('arch', platform.architecture)
  const res = await fetch(url, { redirect: 'follow', ...(init.signal === undefined ? {} : { signal: init.signal }) })
  if (!res.ok || res.body === null) {
    await res.body?.cancel()
    throw new SifBaseUnavailableError(`${url.origin} answered ${res.status} for library://${path}`, res.status === 404 ? 'check the entity, collection, container and tag' : undefined)
  }
  const body = res.body
  return await withTempFile(init, async (file) => {
    await pipeline(Readable.fromWeb(body), createWriteStream(file, { mode: 0o600 }))
    return await importFile(init, file)
  })
}

/** The single-platform manifest, in the store, of a SIF base. */
export async function sifBase (init: SifBaseInit, ref: SifBaseRef, platform: Platform): Promise<Descriptor> {
  switch (ref.kind) {
    case 'file': return await importFile(init, ref.path)
    case 'oras': return await fromOras(init, ref.text)
    case 'library': return await fromLibrary(init, ref.path, platform)
  }
}
