/**
 * `GET|HEAD|DELETE /v2/<name>/blobs/<digest>` (spec §"Pulling blobs",
 * §"Deleting blobs"). Reads honour one `Range`; DELETE removes the blob from
 * the repository only: the store's GC decides when the bytes go. A blob
 * that is being pulled through from peers is served while it arrives
 * (./arriving.ts: its last byte only after the digest matched).
 */
import { isDigest } from '../content/digest.ts'
import type { Digest } from '../content/digest.ts'
import { STREAM_CHUNK } from './constants.ts'
import { findBlob } from './context.ts'
import type { GatewayContext } from './context.ts'
import { RegistryApiError } from './errors.ts'
import { FileBody, ReusedBuffersBody, emptyResponse } from './http.ts'
import type { GatewayRequest, GatewayResponse } from './http.ts'
import { parseRangeHeader } from './range.ts'
import type { ByteRange } from './range.ts'

export function parseDigestParam (value: string): Digest {
  if (!isDigest(value)) throw new RegistryApiError('DIGEST_INVALID', `invalid digest ${JSON.stringify(value)}`)
  return value
}

/**
 * The blob's bytes as a FileBody when the store has a path for it (read
 * and written straight to the socket, no re-hashing: the store verified the
 * blob when it was ingested), else the store's read.
 */
async function blobBody (ctx: GatewayContext, digest: Digest, size: number, range?: ByteRange): Promise<AsyncIterable<Uint8Array>> {
  const path = await ctx.store.path(digest).catch(() => undefined)
  if (path === undefined) return ctx.store.read(digest, range)
  return new FileBody(path, range?.offset ?? 0, range?.length ?? size, STREAM_CHUNK)
}

export async function getBlob (ctx: GatewayContext, req: GatewayRequest, repository: string, param: string): Promise<GatewayResponse> {
  const digest = parseDigestParam(param)
  const found = await findBlob(ctx, repository, digest)
  if (found === false) throw new RegistryApiError('BLOB_UNKNOWN', `blob ${digest} unknown to ${repository}`, { detail: { digest } })
  // Still arriving from peers: served as it arrives (./arriving.ts), ranges too.
  const arriving = found === true ? undefined : found
  const size = arriving?.size ?? (await ctx.store.info(digest)).size
  const range = parseRangeHeader(req.headers.range, size)
  const body = async (r?: ByteRange): Promise<AsyncIterable<Uint8Array>> => arriving === undefined
    ? await blobBody(ctx, digest, size, r)
    : new ReusedBuffersBody(arriving.read(ctx.store, r, { reuseBuffers: true }))
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'docker-content-digest': digest,
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
    'cache-control': 'max-age=31536000'
  }
  if (range === undefined) {
    headers['content-length'] = String(size)
    return { status: 200, headers, ...(req.method === 'HEAD' ? {} : { body: await body() }) }
  }
  headers['content-length'] = String(range.length)
  headers['content-range'] = `bytes ${range.offset}-${range.offset + range.length - 1}/${size}`
  return { status: 206, headers, ...(req.method === 'HEAD' ? {} : { body: await body(range) }) }
}

export async function deleteBlob (ctx: GatewayContext, repository: string, param: string): Promise<GatewayResponse> {
  const digest = parseDigestParam(param)
  if (!ctx.deleteEnabled) throw new RegistryApiError('UNSUPPORTED', 'deletion is disabled on this gateway')
  if (!ctx.index.removeBlob(repository, digest)) throw new RegistryApiError('BLOB_UNKNOWN', `blob ${digest} unknown to ${repository}`, { detail: { digest } })
  return emptyResponse(202)
}
