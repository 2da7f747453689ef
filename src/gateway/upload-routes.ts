/**
 * Blob pushes (spec §"Pushing blobs"): `POST /v2/<name>/blobs/uploads/`
 * (session, monolithic `?digest=`, cross-repository `?mount=&from=`), and
 * `GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<id>`.
 */
import type { Action } from './access.ts'
import { parseDigestParam } from './blobs.ts'
import { hasBlob } from './context.ts'
import type { GatewayContext } from './context.ts'
import type { Principal } from './auth.ts'
import { NAME_RE } from './constants.ts'
import { RegistryApiError } from './errors.ts'
import { emptyResponse } from './http.ts'
import type { GatewayRequest, GatewayResponse } from './http.ts'
import { parseContentRange } from './range.ts'
import { uploadRange } from './uploads.ts'
import type { UploadSession } from './uploads.ts'

function blobCreated (repository: string, digest: string): GatewayResponse {
  return emptyResponse(201, { location: `/v2/${repository}/blobs/${digest}`, 'docker-content-digest': digest })
}

function sessionHeaders (s: UploadSession): Record<string, string> {
  return { location: `/v2/${s.repository}/blobs/uploads/${s.id}`, range: uploadRange(s), 'docker-upload-uuid': s.id }
}

function declaredLength (req: GatewayRequest): number | undefined {
  const h = req.headers['content-length']
  if (h === undefined || h === '') return undefined
  if (!/^\d+$/.test(h)) throw new RegistryApiError('SIZE_INVALID', `invalid Content-Length ${JSON.stringify(h)}`)
  return Number(h)
}

export async function startUpload (ctx: GatewayContext, req: GatewayRequest, principal: Principal, repository: string): Promise<GatewayResponse> {
  const params = new URL(req.url, 'http://x').searchParams
  const mount = params.get('mount')
  const from = params.get('from')
  if (mount !== null && from !== null && NAME_RE.test(from)) {
    // Mount only what the caller may read; otherwise fall back to an upload, as the spec allows.
    const pull: Action[] = ['pull']
    const digest = parseDigestParam(mount)
    if (principal.allows(from, pull) && await hasBlob(ctx, from, digest)) {
      ctx.index.addBlobs(repository, [digest])
      return blobCreated(repository, digest)
    }
  }
  const digestParam = params.get('digest')
  if (digestParam !== null) {
    const digest = parseDigestParam(digestParam)
    const size = declaredLength(req)
    await ctx.store.ingest(req.body, { digest, ...(size === undefined ? {} : { size }) })
    ctx.index.addBlobs(repository, [digest])
    return blobCreated(repository, digest)
  }
  const session = await ctx.uploads.start(repository)
  return emptyResponse(202, sessionHeaders(session))
}

export function uploadStatus (ctx: GatewayContext, repository: string, id: string): GatewayResponse {
  return emptyResponse(204, sessionHeaders(ctx.uploads.get(repository, id)))
}

export async function patchUpload (ctx: GatewayContext, req: GatewayRequest, repository: string, id: string): Promise<GatewayResponse> {
  const session = ctx.uploads.get(repository, id)
  const contentRange = req.headers['content-range']
  let start: number | undefined
  if (contentRange !== undefined && contentRange !== '') {
    const r = parseContentRange(contentRange)
    const length = declaredLength(req)
    if (length !== undefined && length !== r.end - r.start + 1) {
      throw new RegistryApiError('RANGE_INVALID', `Content-Range ${contentRange} does not match Content-Length ${length}`, { headers: sessionHeaders(session) })
    }
    start = r.start
  }
  await ctx.uploads.append(session, req.body, start)
  return emptyResponse(202, sessionHeaders(session))
}

export async function finishUpload (ctx: GatewayContext, req: GatewayRequest, repository: string, id: string): Promise<GatewayResponse> {
  const session = ctx.uploads.get(repository, id)
  const digestParam = new URL(req.url, 'http://x').searchParams.get('digest')
  if (digestParam === null) throw new RegistryApiError('DIGEST_INVALID', 'PUT completing an upload needs ?digest=')
  const digest = parseDigestParam(digestParam)
  const contentRange = req.headers['content-range']
  if (contentRange !== undefined && contentRange !== '' && parseContentRange(contentRange).start !== session.offset) {
    throw new RegistryApiError('RANGE_INVALID', `last chunk must start at ${session.offset}`, { headers: sessionHeaders(session) })
  }
  await ctx.uploads.complete(session, digest, req.body)
  ctx.index.addBlobs(repository, [digest])
  return blobCreated(repository, digest)
}

export async function cancelUpload (ctx: GatewayContext, repository: string, id: string): Promise<GatewayResponse> {
  await ctx.uploads.cancel(ctx.uploads.get(repository, id))
  return emptyResponse(204)
}
