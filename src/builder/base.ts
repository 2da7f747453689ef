/**
 * Base images (FROM, Apptainer Bootstrap, COPY --from=IMAGE): resolved to a
 * single-platform manifest and config in the store, and unpacked once per
 * manifest and user into a rootfs dir that every later build reuses as its
 * bottom overlay layer.
 *
 * Where a base comes from, by reference (containers-transports syntax):
 * - `REPO[:TAG]`, `REPO@sha256:...`, `sha256:...`: the local store. A name
 *   that is not there is pulled from its registry, as buildah does
 *   (`busybox` is `docker.io/library/busybox:latest`): the local name wins.
 * - `docker://HOST/REPO[:TAG|@DIGEST]`: the registry, unless the store
 *   already holds it (pull policy `missing`, the default) or the caller asks
 *   for `always`. A pulled image is named `HOST/REPO:TAG` in the local store.
 * - `oci:PATH[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:REF]`:
 *   imported into the store with src/oci's importImage.
 * - `sif:FILE`, `oras://HOST/REPO:TAG`, `library://PATH`: SIF images
 *   (Apptainer's format), converted by ./sif-base.ts.
 * - `scratch`: nothing (handled by the builder).
 */
import { chmod, mkdir, mkdtemp, rename, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { ContentStore, Digest, RefStore } from '../content/index.ts'
import { digestHex } from '../content/index.ts'
import { MAX_MANIFEST_SIZE, formatDockerName, importImage, parseManifestBytes, parseDockerName, parseImageRef, resolveImage, unpackImage } from '../oci/index.ts'
import type { Descriptor, DockerName, ImageConfig, ImageManifest, ImageRef, Platform, TarHeader } from '../oci/index.ts'
import type { RegistryClient } from '../registry/index.ts'
import { BaseImageError } from './errors.ts'
import { ownersCollector, rememberLayerOwners } from './owner-ledger.ts'
import type { LayerOwners } from './owner-ledger.ts'
import type { BuildProgress } from './types.ts'
import type { SourceLoc } from '../recipe/ir.ts'
import { removeTree } from './sandbox/index.ts'
import { ownerTag } from '../util/owner.ts'
import { RegistryNotFoundError, RegistryUnauthorizedError } from '../registry/errors.ts'
import { isErrorOf } from '../util/error-class.ts'
import { SifBaseUnavailableError, sifBase, sifBaseRef } from './sif-base.ts'
import type { SifBaseRef } from './sif-base.ts'

export interface ResolvedBase {
  /** The single-platform manifest; undefined for scratch. */
  descriptor?: Descriptor
  /** Manifest digest; undefined for scratch. */
  manifestDigest?: Digest
  manifest?: ImageManifest
  config?: ImageConfig
}

/** When a registry is asked for a base the store may already hold. */
export type PullPolicy = 'missing' | 'always'

export interface BaseResolverInit {
  store: ContentStore
  refs: RefStore
  /** Default `missing`: the registry is asked only for what the store lacks. */
  pull?: PullPolicy
  /** A client for a registry host (tests inject one); default src/registry's createRegistryClient. */
  registryClient?: (registry: string) => RegistryClient | Promise<RegistryClient>
  /** The library service for `library://` bases (kiln.yaml `build.libraryUrl`); unset: they are refused. */
  libraryUrl?: string
  /** Where SIF bases are staged and unpacked; default os.tmpdir(). */
  tmpDir?: string
  signal?: AbortSignal
  /** Blobs of a base pulled from a registry (as each is stored) or imported from an archive or layout (as it is written). */
  onProgress?: (progress: BuildProgress) => void
}

/** A descriptor for a manifest or index the store holds by digest alone. */
async function describeStored (store: ContentStore, digest: Digest): Promise<Descriptor> {
  const bytes = await store.readBytes(digest, MAX_MANIFEST_SIZE)
  return { mediaType: parseManifestBytes(bytes).mediaType, digest, size: bytes.byteLength }
}

/** `line N` of the recipe, for messages that already start with the file name. */
function fail (text: string, detail: string, source: SourceLoc | undefined, hint?: string): never {
  throw new BaseImageError(`base image ${text}: ${detail}${hint === undefined ? '' : `; ${hint}`}`, source)
}

function describeError (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Hints for the usual ways a registry pull fails, by error class. */
function registryHint (err: unknown, name: DockerName): string {
  const where = `${name.domain}/${name.path}`
  if (isErrorOf(err, RegistryNotFoundError)) return `check the name and tag (${where}), or import the image with kiln image import and name it in FROM`
  if (isErrorOf(err, RegistryUnauthorizedError)) return `log in to ${name.domain} (skopeo login / podman login write the auth file kiln reads)`
  if (err instanceof TypeError) return `${name.domain} is not reachable from this node; import the image (kiln image import oci-archive:FILE) and name it in FROM`
  return `pulling ${where} failed`
}

async function registryClientFor (init: BaseResolverInit, registry: string): Promise<RegistryClient> {
  if (init.registryClient !== undefined) return await init.registryClient(registry)
  // Loaded only when a registry is needed: it is not on the path of a build from local bases.
  const { createRegistryClient } = await import('../registry/index.ts')
  return createRegistryClient({ registry })
}

/** `4f1c2a9b3e7d of debian:bookworm`: which blob of which base, for a progress display. */
function baseBlobLabel (d: Descriptor, base: string): string {
  return `${digestHex(d.digest).slice(0, 12)} of ${base}`
}

/** Pulls a registry image (or finds it in the store) and returns its root descriptor. */
async function fromRegistry (init: BaseResolverInit, name: DockerName, text: string, platform: Platform, source: SourceLoc | undefined): Promise<Descriptor> {
  const { store, refs } = init
  const repo = `${name.domain}/${name.path}`
  if (init.pull !== 'always') {
    if (name.digest !== undefined && await store.has(name.digest)) return await describeStored(store, name.digest)
    const named = name.digest === undefined && name.tag !== undefined ? refs.find(repo, name.tag) : undefined
    if (named !== undefined && await store.has(named.digest)) return { mediaType: named.mediaType, digest: named.digest, size: named.size }
  }
  const reference = name.digest ?? name.tag ?? 'latest'
  let pulled
  try {
    const { pullImage } = await import('../registry/index.ts')
    const onProgress = init.onProgress
    pulled = await pullImage(await registryClientFor(init, name.domain), name.path, reference, store, {
      platform,
      ...(onProgress !== undefined
        ? {
            onProgress: (d: Descriptor, bytes: number) => { onProgress({ what: 'base', id: d.digest, label: baseBlobLabel(d, formatDockerName(name)), bytes, total: d.size, done: false }) },
            onBlob: (d: Descriptor, status: 'stored' | 'present') => { if (status === 'stored') onProgress({ what: 'base', id: d.digest, label: baseBlobLabel(d, formatDockerName(name)), bytes: d.size, total: d.size, done: true }) }
          }
        : {})
    })
  } catch (err) {
    init.signal?.throwIfAborted()
    fail(text, `cannot pull ${formatDockerName(name)}: ${describeError(err)}`, source, registryHint(err, name))
  }
  const descriptor = { mediaType: pulled.mediaType, digest: pulled.digest, size: pulled.size }
  if (name.tag !== undefined) refs.set(repo, name.tag, descriptor)
  return descriptor
}

/** Imports an oci:, oci-archive: or docker-archive: image and returns its root descriptor. */
async function fromImport (store: ContentStore, ref: Extract<ImageRef, { transport: 'oci' | 'oci-archive' | 'docker-archive' }>, text: string, source: SourceLoc | undefined, signal?: AbortSignal, onProgress?: (progress: BuildProgress) => void): Promise<Descriptor> {
  let roots
  try {
    roots = await importImage(store, ref, {
      ...(signal !== undefined ? { signal } : {}),
      ...(onProgress !== undefined
        ? {
            onProgress: (d: Descriptor, bytes: number) => { onProgress({ what: 'base', id: d.digest, label: baseBlobLabel(d, text), bytes, total: d.size, done: false }) },
            onBlob: (d: Descriptor, status: 'stored' | 'present') => { if (status === 'stored') onProgress({ what: 'base', id: d.digest, label: baseBlobLabel(d, text), bytes: d.size, total: d.size, done: true }) }
          }
        : {})
    })
  } catch (err) {
    signal?.throwIfAborted()
    const what = ref.transport === 'oci' ? 'OCI image layout' : ref.transport === 'oci-archive' ? 'OCI archive' : 'docker archive'
    fail(text, `cannot read the ${what} at ${ref.path}: ${describeError(err)}`, source, ref.transport === 'oci' ? 'check the path and tag (oci:PATH:TAG; skopeo copy docker://IMAGE oci:PATH:TAG makes one)' : 'check the path (and :TAG when the archive holds several images)')
  }
  const top = roots[0]
  if (top === undefined) fail(text, `${ref.path} holds no image`, source)
  if (roots.length > 1) fail(text, `${ref.path} holds ${roots.length} images`, source, `name one with ${ref.transport}:${ref.path}:TAG`)
  return top.descriptor
}

/** Reads a SIF base (file, ORAS artifact, library image) into the store. */
async function fromSif (init: BaseResolverInit, ref: SifBaseRef, text: string, platform: Platform, source: SourceLoc | undefined): Promise<Descriptor> {
  try {
    return await sifBase({
      store: init.store,
      registryClient: async (registry) => await registryClientFor(init, registry),
      ...(init.libraryUrl === undefined ? {} : { libraryUrl: init.libraryUrl }),
      ...(init.tmpDir === undefined ? {} : { tmpDir: init.tmpDir }),
      ...(init.signal === undefined ? {} : { signal: init.signal })
    }, ref, platform)
  } catch (err) {
    init.signal?.throwIfAborted()
    const hint = isErrorOf(err, SifBaseUnavailableError)
      ? (err as SifBaseUnavailableError).hint
      : ref.kind === 'oras' ? registryHintFor(err, ref.text) : ref.kind === 'file' ? 'check the path; it must be a SIF with a squashfs root partition' : undefined
    fail(text, describeError(err), source, hint)
  }
}

function registryHintFor (err: unknown, text: string): string | undefined {
  try { return registryHint(err, parseDockerName(text)) } catch { return undefined }
}

/** Finds the root descriptor a base reference names, fetching or importing it when needed. */
async function rootOf (init: BaseResolverInit, text: string, platform: Platform, source: SourceLoc | undefined): Promise<Descriptor> {
  const { store, refs } = init
  const sif = sifBaseRef(text)
  if (sif !== undefined) return await fromSif(init, sif, text, platform, source)
  let ref: ImageRef
  try { ref = parseImageRef(text) } catch (err) { fail(JSON.stringify(text), describeError(err), source) }
  switch (ref.transport) {
    case 'digest':
      if (!await store.has(ref.digest)) fail(text, 'no manifest with this digest in the local store', source, 'import it first (kiln image import) or name it by registry (docker://HOST/REPO@DIGEST)')
      return await describeStored(store, ref.digest)
    case 'local': {
      if (ref.digest !== undefined && await store.has(ref.digest)) return await describeStored(store, ref.digest)
      const found = ref.digest === undefined ? refs.find(ref.repository, ref.tag ?? 'latest') : undefined
      if (found !== undefined) return { mediaType: found.mediaType, digest: found.digest, size: found.size }
      // Not in the store: the name is a registry name, as buildah reads it.
      let name: DockerName
      try { name = parseDockerName(text) } catch (err) { fail(text, describeError(err), source) }
      return await fromRegistry(init, name, text, platform, source)
    }
    case 'docker': return await fromRegistry(init, ref.name, text, platform, source)
    case 'oci': case 'oci-archive': case 'docker-archive':
      return await fromImport(store, ref, text, source, init.signal, init.onProgress)
  }
}

export async function resolveBase (init: BaseResolverInit, text: string, platform: Platform, source?: SourceLoc): Promise<ResolvedBase> {
  try {
    const image = await resolveImage(init.store, await rootOf(init, text, platform, source), platform)
    return { descriptor: image.descriptor, manifestDigest: image.descriptor.digest, manifest: image.manifest, config: image.config }
  } catch (err) {
    if (err instanceof BaseImageError) throw err
    init.signal?.throwIfAborted()
    fail(text, describeError(err), source)
  }
}

/**
 * The unpacked rootfs of a base, made once per manifest and user under
 * cacheDir and reused. Built in a temp dir and renamed into place, so a
 * crash never leaves a half-unpacked rootfs behind the final name. Each
 * layer's diffID is checked against the config while it is extracted.
 */
export async function unpackedBase (store: ContentStore, base: ResolvedBase, cacheDir: string, signal?: AbortSignal): Promise<string> {
  const uid = process.getuid?.() ?? 0
  const name = base.manifestDigest === undefined ? `scratch-${uid}` : `${digestHex(base.manifestDigest)}-${uid}`
  const dir = join(cacheDir, name)
  // Stages built at once from one base unpack it once (another process racing for it is handled by the rename).
  const joined = unpacking.get(dir)
  if (joined !== undefined) {
    // Another build's unpack may fail for its own reason (it was cancelled): then this one unpacks for itself.
    try { return await joined } catch { signal?.throwIfAborted() }
  }
  const p = unpackOnce(store, base, dir, signal).finally(() => { if (unpacking.get(dir) === p) unpacking.delete(dir) })
  unpacking.set(dir, p)
  return await p
}

/** Unpacks under way in this process, by target dir. */
const unpacking = new Map<string, Promise<string>>()

async function unpackOnce (store: ContentStore, base: ResolvedBase, dir: string, signal?: AbortSignal): Promise<string> {
  if (await stat(dir).then(() => true, () => false)) return dir
  // A name of its own: two builds that unpack the same base in the same millisecond (in two processes; in one,
  // unpackedBase joins them) shared `<dir>.tmp-<owner>-<ms>`, and the first one's rename made the second one's mkdir fail.
  await mkdir(dirname(dir), { recursive: true })
  const tmp = await mkdtemp(`${dir}.tmp-${ownerTag()}-`)
  await chmod(tmp, 0o755) // as mkdir made it: the rootfs's own mode, not mkdtemp's 0700
  try {
    // The owners summaries of the layers (./owner-ledger.ts) come from the headers extraction reads: a RUN on the base needs no pass of its own.
    const collected: Array<{ digest: string, owners: LayerOwners }> = []
    const onLayerHeader = (layer: Descriptor): (h: TarHeader) => void => {
      const c = ownersCollector()
      collected.push({ digest: layer.digest, owners: c.owners })
      return c.add
    }
    if (base.descriptor !== undefined) await unpackImage(store, base.descriptor, tmp, { ...(signal !== undefined ? { signal } : {}), onLayerHeader })
    for (const { digest, owners } of collected) rememberLayerOwners(digest, owners)
    await rename(tmp, dir)
  } catch (err) {
    await removeTree(tmp)
    if (await stat(dir).then(() => true, () => false)) return dir
    throw err
  }
  return dir
}
