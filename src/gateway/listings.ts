/**
 * Lists: `GET /v2/<name>/tags/list` (spec §"Listing tags"), `GET
 * /v2/_catalog` (distribution's catalog extension) and `GET
 * /v2/<name>/referrers/<digest>` (spec §"Listing referrers"). Tags and
 * repositories page with `n` and `last` and a `Link: <...>; rel="next"`.
 */
import { OCI_INDEX } from '../oci/index.ts'
import { parseDigestParam } from './blobs.ts'
import { findManifest, repositories, repositoryExists } from './context.ts'
import type { GatewayContext } from './context.ts'
import type { Principal } from './auth.ts'
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './constants.ts'
import { RegistryApiError } from './errors.ts'
import { jsonResponse } from './http.ts'
import type { GatewayRequest, GatewayResponse } from './http.ts'

export interface Page {
  items: string[]
  /** The `Link` header for the next page, when there is one. */
  link?: string
}

/** One page of sorted names after `last`, at most `n` long. */
export function paginate (sorted: readonly string[], params: URLSearchParams, path: string): Page {
  const nText = params.get('n')
  if (nText !== null && !/^\d+$/.test(nText)) throw new RegistryApiError('SIZE_INVALID', `invalid n ${JSON.stringify(nText)}`)
  const n = nText === null ? DEFAULT_PAGE_SIZE : Math.min(Number(nText), MAX_PAGE_SIZE)
  const last = params.get('last')
  const after = last === null ? sorted : sorted.filter(s => s > last)
  const items = after.slice(0, n)
  if (after.length <= n || items.length === 0) return { items }
  const next = new URLSearchParams({ n: String(n), last: items[items.length - 1] as string })
  return { items, link: `<${path}?${next.toString()}>; rel="next"` }
}

function pageResponse (key: 'tags' | 'repositories', page: Page, extra: Record<string, unknown>): GatewayResponse {
  return jsonResponse(200, { ...extra, [key]: page.items }, page.link === undefined ? {} : { link: page.link })
}

export function listTags (ctx: GatewayContext, req: GatewayRequest, repository: string): GatewayResponse {
  const tags = ctx.refs.list(repository).map(r => r.tag).sort()
  if (tags.length === 0 && !repositoryExists(ctx, repository)) {
    throw new RegistryApiError('NAME_UNKNOWN', `repository ${repository} not known`, { detail: { name: repository } })
  }
  const page = paginate(tags, new URL(req.url, 'http://x').searchParams, `/v2/${repository}/tags/list`)
  return pageResponse('tags', page, { name: repository })
}

export function catalog (ctx: GatewayContext, req: GatewayRequest, principal: Principal): GatewayResponse {
  const visible = repositories(ctx).filter(r => principal.allows(r, ['pull']))
  return pageResponse('repositories', paginate(visible, new URL(req.url, 'http://x').searchParams, '/v2/_catalog'), {})
}

export async function listReferrers (ctx: GatewayContext, req: GatewayRequest, repository: string, param: string): Promise<GatewayResponse> {
  const subject = parseDigestParam(param)
  // Make refs from outside the gateway visible before reading the index.
  await findManifest(ctx, repository, subject)
  const artifactType = new URL(req.url, 'http://x').searchParams.get('artifactType')
  const manifests = ctx.index.referrers(repository, subject)
    .filter(r => artifactType === null || r.artifactType === artifactType)
    .map(r => ({
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      ...(r.artifactType === undefined ? {} : { artifactType: r.artifactType }),
      ...(r.annotations === undefined ? {} : { annotations: r.annotations })
    }))
  return jsonResponse(200, { schemaVersion: 2, mediaType: OCI_INDEX, manifests },
    artifactType === null ? {} : { 'oci-filters-applied': 'artifactType' }, OCI_INDEX)
}
