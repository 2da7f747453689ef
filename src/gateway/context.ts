/**
 * What every handler gets, and the lookups they share: is a blob in a
 * repository, which manifest a digest names there. Both consult, in order,
 * the repository index, the refs other kiln commands made (an image
 * imported with `kiln image import` is served without being pushed), and the
 * peer network when pull-through is configured.
 */
import type { ContentStore } from '../content/index.ts'
import type { Digest } from '../content/digest.ts'
import type { RefStore, RefTarget } from '../content/refs.ts'
import { MAX_MANIFEST_SIZE } from './constants.ts'
import { parseManifestBytes } from '../oci/index.ts'
import type { ParsedManifest } from '../oci/index.ts'
import type { ArrivingBlob } from './arriving.ts'
import type { Authenticator } from './auth.ts'
import type { BuildManager } from './builds.ts'
import type { ManifestRecord, RepoIndex } from './repo-index.ts'
import type { SifArtifacts } from './sif-artifacts.ts'
import type { PullLog, StatusSource } from './status.ts'
import type { UploadManager } from './uploads.ts'

export interface GatewayLogger {
  debug: (obj: Record<string, unknown>, msg?: string) => void
  info: (obj: Record<string, unknown>, msg?: string) => void
  warn: (obj: Record<string, unknown>, msg?: string) => void
  error: (obj: Record<string, unknown>, msg?: string) => void
}

/** What a pull-through fetch is for: the repository asked, the registry namespace (containerd's `ns=`), whether a manifest is wanted. */
export interface PullHint {
  repository: string
  kind: 'manifest' | 'blob'
  /** The mirror prefix of the request's `ns=` (./mirror.ts), when it had one. */
  namespace?: string
}

/**
 * Content from elsewhere (the peer network, upstream registries) for what
 * the local store lacks. See ./pull-through.ts for the sources and chaining.
 */
export interface PullThrough {
  /** Fetches a blob or manifest by digest into the local store, verified; false when no source has it. */
  fetchBlob: (digest: Digest, hint?: PullHint) => Promise<boolean>
  /**
   * Like fetchBlob, but resolves as soon as the blob can be served while it
   * arrives (./arriving.ts), for sources that can; true when it is in the
   * store already, false when no source has it. Absent: fetchBlob only.
   */
  streamBlob?: (digest: Digest, hint?: PullHint) => Promise<ArrivingBlob | boolean>
  /**
   * Resolves a tag (signed tag records, an upstream registry); undefined when
   * unknown. The manifest may already be in the store when this returns.
   * Rejects with TagRecordsRefusedError (./errors.ts) when records exist
   * but none was accepted, so that the client is told why.
   */
  resolveTag: (repository: string, tag: string, hint?: { namespace?: string }) => Promise<RefTarget | undefined>
}

/** A manifest stored by a push (or a build): for publishing tag records and announcing blobs. */
export interface PushEvent {
  repository: string
  /** Set when pushed under a tag. */
  tag?: string
  digest: Digest
  mediaType: string
  size: number
  /** The manifest and every blob it references directly (config, layers, or child manifests). */
  digests: Digest[]
}

export interface GatewayContext {
  store: ContentStore
  refs: RefStore
  index: RepoIndex
  uploads: UploadManager
  auth: Authenticator
  logger: GatewayLogger
  deleteEnabled: boolean
  pullThrough?: PullThrough
  onPush?: (event: PushEvent) => void
  builds: BuildManager
  /** SIF artifacts of the repositories' images (./sif-artifacts.ts). */
  sifs: SifArtifacts
  /** The last manifest pulls, for the status page (./status.ts). */
  pulls: PullLog
  /** What the status page shows of the process around the gateway. */
  status?: StatusSource
  /** Request-scoped: the mirror prefix of the request's `ns=` parameter. */
  namespace?: string
}

/** The artifact type the referrers API reports for a manifest (image-spec: artifactType, else config.mediaType). */
function artifactTypeOf (parsed: ParsedManifest): string | undefined {
  if (parsed.kind === 'index') return parsed.value.artifactType
  return parsed.value.artifactType ?? parsed.value.config.mediaType
}

/** Records a stored manifest in a repository: the manifest, its subject link, and membership of its blobs. */
export function recordManifest (ctx: GatewayContext, repository: string, digest: Digest, size: number, parsed: ParsedManifest): ManifestRecord {
  const v = parsed.value
  const record: ManifestRecord = {
    repository,
    digest,
    mediaType: parsed.mediaType,
    size,
    ...(artifactTypeOf(parsed) === undefined ? {} : { artifactType: artifactTypeOf(parsed) }),
    ...(v.subject === undefined ? {} : { subject: v.subject.digest }),
    ...(v.annotations === undefined ? {} : { annotations: v.annotations })
  }
  const blobs: Digest[] = [digest]
  if (parsed.kind === 'manifest') blobs.push(parsed.value.config.digest, ...parsed.value.layers.map(l => l.digest))
  ctx.index.addBlobs(repository, blobs)
  ctx.index.putManifest(record)
  return record
}

/** Indexes a manifest that is in the store but not yet in the repository, with its children. */
async function adoptStored (ctx: GatewayContext, repository: string, digest: Digest, mediaType: string | undefined, depth = 0): Promise<ManifestRecord | undefined> {
  if (depth > 4 || !await ctx.store.has(digest)) return undefined
  const bytes = await ctx.store.readBytes(digest, MAX_MANIFEST_SIZE)
  const parsed = parseManifestBytes(bytes, mediaType)
  if (parsed.kind === 'index') {
    for (const child of parsed.value.manifests) {
      if (ctx.index.getManifest(repository, child.digest) === undefined) {
        await adoptStored(ctx, repository, child.digest, child.mediaType, depth + 1).catch(() => undefined)
      }
    }
  }
  return recordManifest(ctx, repository, digest, bytes.byteLength, parsed)
}

/** Brings refs made outside the gateway (kiln image import, kiln build -t) into the repository index. */
async function adoptRefs (ctx: GatewayContext, repository: string): Promise<void> {
  for (const ref of ctx.refs.list(repository)) {
    if (ctx.index.getManifest(repository, ref.digest) !== undefined) continue
    await adoptStored(ctx, repository, ref.digest, ref.mediaType).catch(err => {
      ctx.logger.warn({ repository, tag: ref.tag, digest: ref.digest, err: (err as Error).message }, 'ref points at an unreadable manifest')
    })
  }
}

function ns (ctx: GatewayContext): { namespace?: string } {
  return ctx.namespace === undefined ? {} : { namespace: ctx.namespace }
}

/** Whether the repository has the blob here, without asking pull-through sources. */
export async function hasLocalBlob (ctx: GatewayContext, repository: string, digest: Digest): Promise<boolean> {
  if (ctx.index.hasBlob(repository, digest) && await ctx.store.has(digest)) return true
  await adoptRefs(ctx, repository)
  return ctx.index.hasBlob(repository, digest) && await ctx.store.has(digest)
}

/**
 * A blob for a GET: true when stored (here, or pulled through), an
 * ArrivingBlob to serve while it arrives from a streaming source, false
 * when unknown. The repository gains the blob once it is stored.
 */
export async function findBlob (ctx: GatewayContext, repository: string, digest: Digest): Promise<ArrivingBlob | boolean> {
  if (await hasLocalBlob(ctx, repository, digest)) return true
  if (ctx.pullThrough?.streamBlob === undefined) return await hasBlob(ctx, repository, digest)
  const found = await ctx.pullThrough.streamBlob(digest, { repository, kind: 'blob', ...ns(ctx) })
  if (found === true) ctx.index.addBlobs(repository, [digest])
  if (typeof found === 'boolean') return found
  void found.done.then(ok => { if (ok) ctx.index.addBlobs(repository, [digest]) })
  return found
}

export async function hasBlob (ctx: GatewayContext, repository: string, digest: Digest): Promise<boolean> {
  if (await hasLocalBlob(ctx, repository, digest)) return true
  if (ctx.pullThrough !== undefined && await ctx.pullThrough.fetchBlob(digest, { repository, kind: 'blob', ...ns(ctx) })) {
    ctx.index.addBlobs(repository, [digest])
    return true
  }
  return false
}

export async function findManifest (ctx: GatewayContext, repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
  const known = ctx.index.getManifest(repository, digest)
  if (known !== undefined) return known
  await adoptRefs(ctx, repository)
  const adopted = ctx.index.getManifest(repository, digest)
  if (adopted !== undefined) return adopted
  if (ctx.pullThrough !== undefined && await ctx.pullThrough.fetchBlob(digest, { repository, kind: 'manifest', ...ns(ctx) })) return await adoptStored(ctx, repository, digest, undefined)
  return undefined
}

/** The manifest a tag names in a repository, from refs or the network's tag records. */
export async function resolveTag (ctx: GatewayContext, repository: string, tag: string): Promise<ManifestRecord | undefined> {
  const ref = ctx.refs.find(repository, tag)
  if (ref !== undefined) return await findManifest(ctx, repository, ref.digest)
  const remote = await ctx.pullThrough?.resolveTag(repository, tag, ns(ctx))
  if (remote === undefined) return undefined
  if (!await ctx.store.has(remote.digest) && !await ctx.pullThrough!.fetchBlob(remote.digest, { repository, kind: 'manifest', ...ns(ctx) })) return undefined
  return await adoptStored(ctx, repository, remote.digest, remote.mediaType)
}

/** Names of repositories with tags or content. */
export function repositories (ctx: GatewayContext): string[] {
  return [...new Set([...ctx.refs.repositories(), ...ctx.index.repositories()])].sort()
}

export function repositoryExists (ctx: GatewayContext, repository: string): boolean {
  return ctx.index.hasRepository(repository) || ctx.refs.list(repository).length > 0
}
