/**
 * `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>` (spec §"Pulling
 * manifests", §"Pushing manifests", §"Deleting tags", §"Deleting manifests").
 * Manifest bytes are stored and served exactly as pushed; the parsed value is
 * only read to check references and to index subject and artifact type.
 */
import { sha256Digest } from '../content/digest.ts'
import type { Digest } from '../content/digest.ts'
import { DOCKER_MANIFEST, OCI_MANIFEST, isIndex, isManifest, parseManifestBytes } from '../oci/index.ts'
import type { ParsedManifest } from '../oci/index.ts'
import { parseDigestParam } from './blobs.ts'
import { recipeArtifactRequest } from './builds.ts'
import { findManifest, hasBlob, recordManifest, resolveTag } from './context.ts'
import type { GatewayContext } from './context.ts'
import { MAX_MANIFEST_SIZE, TAG_RE } from './constants.ts'
import { RegistryApiError, TagRecordsRefusedError } from './errors.ts'
import { emptyResponse, readBody } from './http.ts'
import type { GatewayRequest, GatewayResponse } from './http.ts'
import type { ManifestRecord } from './repo-index.ts'
import { imageTagOfSifTag } from './sif-artifacts.ts'
import { NotFoundError } from '../content/errors.ts'
import { isErrorOf } from '../util/error-class.ts'

type Reference = { tag: string } | { digest: Digest }

/** A tag or digest; an invalid tag is MANIFEST_INVALID on push but simply unknown (404) on reads. */
function parseReference (param: string, forPush = false): Reference {
  if (param.includes(':')) return { digest: parseDigestParam(param) }
  if (!TAG_RE.test(param)) {
    throw new RegistryApiError(forPush ? 'MANIFEST_INVALID' : 'MANIFEST_UNKNOWN', `invalid tag ${JSON.stringify(param)}`, { detail: { reference: param } })
  }
  return { tag: param }
}

function unknownManifest (repository: string, param: string): RegistryApiError {
  return new RegistryApiError('MANIFEST_UNKNOWN', `manifest ${param} unknown to ${repository}`, { detail: { reference: param } })
}

function mediaTypeOf (header: string | undefined): string | undefined {
  const t = header?.split(';')[0]?.trim()
  return t === undefined || t === '' ? undefined : t
}

/**
 * Manifest-list fallback for old clients: when a client's Accept names
 * single-image manifest types but neither this index's type nor a wildcard,
 * serve the linux/amd64 image from the index (as distribution does).
 */
async function negotiate (ctx: GatewayContext, repository: string, rec: ManifestRecord, accept: string | undefined): Promise<ManifestRecord> {
  if (accept === undefined || !isIndex(rec.mediaType)) return rec
  const types = accept.split(',').map(t => mediaTypeOf(t)).filter((t): t is string => t !== undefined)
  if (types.length === 0 || types.includes(rec.mediaType) || types.some(t => t === '*/*' || t === 'application/*')) return rec
  if (!types.some(t => t === OCI_MANIFEST || t === DOCKER_MANIFEST)) return rec
  const parsed = parseManifestBytes(await ctx.store.readBytes(rec.digest, MAX_MANIFEST_SIZE), rec.mediaType)
  if (parsed.kind !== 'index') return rec
  const child = parsed.value.manifests.find(m => m.platform?.os === 'linux' && m.platform.architecture === 'amd64' && types.includes(m.mediaType))
  if (child === undefined) return rec
  return (await findManifest(ctx, repository, child.digest)) ?? rec
}

/** A tag, else, for a SIF tag (`<tag>.sif`) that names nothing, the SIF artifact of `<tag>`'s image (./sif-artifacts.ts). */
async function resolveTagOrSif (ctx: GatewayContext, repository: string, tag: string): Promise<ManifestRecord | undefined> {
  const found = await resolveTag(ctx, repository, tag)
  const imageTag = imageTagOfSifTag(tag)
  if (found !== undefined || imageTag === undefined) return found
  const image = await resolveTag(ctx, repository, imageTag)
  return image === undefined ? undefined : await ctx.sifs.forImage(ctx, repository, image)
}

export async function getManifest (ctx: GatewayContext, req: GatewayRequest, repository: string, param: string): Promise<GatewayResponse> {
  const ref = parseReference(param)
  let found: ManifestRecord | undefined
  try {
    found = 'tag' in ref ? await resolveTagOrSif(ctx, repository, ref.tag) : await findManifest(ctx, repository, ref.digest)
  } catch (err) {
    if (!isErrorOf(err, TagRecordsRefusedError)) throw err
    throw new RegistryApiError('MANIFEST_UNKNOWN', err.message, { detail: { reference: param, refused: err.skipped } })
  }
  if (found === undefined) throw unknownManifest(repository, param)
  const rec = await negotiate(ctx, repository, found, req.headers.accept)
  let body: Uint8Array
  try {
    body = await ctx.store.readBytes(rec.digest, MAX_MANIFEST_SIZE)
  } catch (err) {
    if (isErrorOf(err, NotFoundError)) throw unknownManifest(repository, param)
    throw err
  }
  return {
    status: 200,
    headers: {
      'content-type': rec.mediaType,
      'content-length': String(body.byteLength),
      'docker-content-digest': rec.digest,
      etag: `"${rec.digest}"`
    },
    ...(req.method === 'HEAD' ? {} : { body })
  }
}

/** What a manifest references directly: config and layers, or an index's children. */
function referencedDigests (parsed: ParsedManifest): Digest[] {
  if (parsed.kind === 'index') return parsed.value.manifests.map(m => m.digest)
  return [parsed.value.config.digest, ...parsed.value.layers.filter(l => l.urls === undefined || l.urls.length === 0).map(l => l.digest)]
}

/**
 * Checks every descriptor the manifest pushes with (config and layers, or an
 * index's children) against what the repository holds: MANIFEST_BLOB_UNKNOWN
 * for the first one it lacks, MANIFEST_INVALID for the first whose `size` is
 * not the stored size (clients and exports trust descriptor sizes, so a
 * wrong one would break every pull of the image later).
 */
async function checkReferences (ctx: GatewayContext, repository: string, parsed: ParsedManifest): Promise<void> {
  const check = async (what: string, descriptor: { digest: Digest, size: number }, storedSize: () => Promise<number | undefined>): Promise<void> => {
    const { digest, size } = descriptor
    const stored = await storedSize()
    if (stored === undefined) throw new RegistryApiError('MANIFEST_BLOB_UNKNOWN', `${what} ${digest} is not in ${repository}`, { detail: { digest } })
    if (stored !== size) throw new RegistryApiError('MANIFEST_INVALID', `${what} ${digest} has size ${size} in the manifest but ${stored} in the registry`, { detail: { digest, size, stored } })
  }
  const blobSize = (digest: Digest) => async (): Promise<number | undefined> =>
    await hasBlob(ctx, repository, digest) ? (await ctx.store.info(digest)).size : undefined
  if (parsed.kind === 'manifest') {
    const { config, layers } = parsed.value
    await check('config', config, blobSize(config.digest))
    for (const layer of layers) {
      // Foreign layers live at their urls, not in registries.
      if (layer.urls !== undefined && layer.urls.length > 0) continue
      await check('layer', layer, blobSize(layer.digest))
    }
    return
  }
  for (const child of parsed.value.manifests) {
    const isChildManifest = isManifest(child.mediaType) || isIndex(child.mediaType)
    await check('manifest', child, isChildManifest
      ? async () => (await findManifest(ctx, repository, child.digest))?.size
      : blobSize(child.digest))
  }
}

export async function putManifest (ctx: GatewayContext, req: GatewayRequest, repository: string, param: string): Promise<GatewayResponse> {
  const ref = parseReference(param, true)
  const body = await readBody(req.body, MAX_MANIFEST_SIZE,
    () => new RegistryApiError('MANIFEST_INVALID', `manifest larger than ${MAX_MANIFEST_SIZE} bytes`))
  const digest = sha256Digest(body)
  if ('digest' in ref && ref.digest !== digest) {
    throw new RegistryApiError('DIGEST_INVALID', `manifest digest is ${digest}, not ${ref.digest}`, { detail: { digest } })
  }
  const contentType = mediaTypeOf(req.headers['content-type'])
  const declared = contentType !== undefined && (isManifest(contentType) || isIndex(contentType)) ? contentType : undefined
  const parsed = parseManifestBytes(body, declared)
  await checkReferences(ctx, repository, parsed)
  // A pushed build request (protocols/build-api.md §"Build on push") starts a build where a builder is configured; checked before anything is stored.
  const buildRequest = ctx.builds.enabled ? await recipeArtifactRequest(ctx, body) : undefined
  await ctx.store.ingest(body, { digest, size: body.byteLength })
  const rec = recordManifest(ctx, repository, digest, body.byteLength, parsed)
  if ('tag' in ref) ctx.refs.set(repository, ref.tag, { digest, mediaType: rec.mediaType, size: rec.size })
  ctx.logger.info({ repository, reference: param, digest }, 'manifest pushed')
  const build = buildRequest === undefined ? undefined : ctx.builds.submit(ctx, repository, buildRequest)
  ctx.onPush?.({
    repository,
    ...('tag' in ref ? { tag: ref.tag } : {}),
    digest,
    mediaType: rec.mediaType,
    size: rec.size,
    digests: [digest, ...referencedDigests(parsed)]
  })
  return emptyResponse(201, {
    location: `/v2/${repository}/manifests/${digest}`,
    'docker-content-digest': digest,
    ...(rec.subject === undefined ? {} : { 'oci-subject': rec.subject }),
    ...(build === undefined ? {} : { 'kiln-build': `/v2/${repository}/_kiln/builds/${build.id}` })
  })
}

export async function deleteManifest (ctx: GatewayContext, repository: string, param: string): Promise<GatewayResponse> {
  const ref = parseReference(param)
  if (!ctx.deleteEnabled) throw new RegistryApiError('UNSUPPORTED', 'deletion is disabled on this gateway')
  if ('tag' in ref) {
    if (!ctx.refs.delete(repository, ref.tag)) throw unknownManifest(repository, param)
    return emptyResponse(202)
  }
  if (await findManifest(ctx, repository, ref.digest) === undefined) throw unknownManifest(repository, param)
  for (const r of ctx.refs.byDigest(ref.digest)) {
    if (r.repository === repository) ctx.refs.delete(repository, r.tag)
  }
  ctx.index.removeManifest(repository, ref.digest)
  ctx.index.removeBlob(repository, ref.digest)
  return emptyResponse(202)
}
