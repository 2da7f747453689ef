/**
 * `ADD <url>`: the builder downloads the file into the content store with
 * node's fetch (not the sandbox), at most ADD_URL_MAX_BYTES, and records the
 * URL's validator (src/cache/url-cache.ts). Docker's rules: the file is
 * never unpacked, its name is the last segment of the URL's path, its mode
 * 0600 unless --chmod, its mtime the Last-Modified the server sent (clamped
 * to SOURCE_DATE_EPOCH like every time in the layer).
 *
 * The *input* for the step key is the URL's validator and the digest of its
 * bytes; with `--checksum` it is the checksum alone, and no request is made
 * when the store holds that blob.
 */
import { posix } from 'node:path'
import { DigestMismatchError } from '../../content/index.ts'
import type { Digest } from '../../content/index.ts'
import type { SourceLoc } from '../../recipe/ir.ts'
import { ADD_URL_MAX_BYTES } from '../constants.ts'
import { RemoteSourceError } from '../errors.ts'
import type { BuildScope } from '../stage.ts'
import { requireNetwork, withRemoteTimeout } from './remote.ts'

export interface UrlBlob {
  digest: Digest
  name: string
  mtime?: Date
  /** What the step key hashes for this source. */
  input: string
}

function fileName (url: string, source: SourceLoc): string {
  const name = decodeURIComponent(posix.basename(new URL(url).pathname))
  if (name === '' || name === '.' || name === '..') throw new RemoteSourceError(`ADD ${url}: the URL's path names no file`, source)
  return name
}

function lastModified (value: string | undefined): Date | undefined {
  if (value === undefined) return undefined
  const t = Date.parse(value)
  return Number.isNaN(t) ? undefined : new Date(t)
}

/** The body, failing as soon as it passes the limit. */
async function * limited (body: AsyncIterable<Uint8Array>, url: string, source: SourceLoc): AsyncGenerator<Uint8Array> {
  let total = 0
  for await (const chunk of body) {
    total += chunk.byteLength
    if (total > ADD_URL_MAX_BYTES) throw new RemoteSourceError(`ADD ${url}: larger than ${ADD_URL_MAX_BYTES} bytes`, source)
    yield chunk
  }
}

export async function urlSource (scope: BuildScope, src: { url: string, checksum?: string }, source: SourceLoc): Promise<UrlBlob> {
  const { url } = src
  const checksum = src.checksum as Digest | undefined
  requireNetwork(scope, url, source)
  const name = fileName(url, source)
  const known = scope.urlCache.get(url)
  const known304 = known !== undefined && await scope.store.has(known.digest) ? known : undefined
  if (checksum !== undefined && await scope.store.has(checksum)) {
    const mtime = known?.digest === checksum ? lastModified(known.lastModified) : undefined
    return { digest: checksum, name, ...(mtime === undefined ? {} : { mtime }), input: `${url} ${checksum}` }
  }
  return await withRemoteTimeout(scope, url, source, async (signal) => {
    const headers: Record<string, string> = {}
    if (checksum === undefined && known304?.etag !== undefined) headers['if-none-match'] = known304.etag
    if (checksum === undefined && known304?.lastModified !== undefined) headers['if-modified-since'] = known304.lastModified
    const res = await fetch(url, { headers, signal, redirect: 'follow' }).catch((err: unknown) => {
      signal.throwIfAborted()
      throw new RemoteSourceError(`ADD ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, source)
    })
    let record = known304
    if (res.status === 304 && known304 !== undefined) {
      await res.body?.cancel()
    } else {
      if (!res.ok || res.body === null) {
        await res.body?.cancel()
        throw new RemoteSourceError(`ADD ${url}: the server answered ${res.status} ${res.statusText}`, source)
      }
      const length = Number(res.headers.get('content-length') ?? '0')
      if (length > ADD_URL_MAX_BYTES) {
        await res.body.cancel()
        throw new RemoteSourceError(`ADD ${url}: ${length} bytes, more than the limit of ${ADD_URL_MAX_BYTES}`, source)
      }
      const info = await scope.store.ingest(limited(res.body, url, source), checksum === undefined ? undefined : { digest: checksum }, { signal })
        .catch((err: unknown) => {
          if (err instanceof DigestMismatchError) throw new RemoteSourceError(`ADD ${url}: the download does not match --checksum=${checksum ?? ''}`, source)
          throw err
        })
      const etag = res.headers.get('etag')
      const modified = res.headers.get('last-modified')
      record = { digest: info.digest, size: info.size, ...(etag === null ? {} : { etag }), ...(modified === null ? {} : { lastModified: modified }) }
      scope.urlCache.put(url, record)
    }
    if (record === undefined) throw new RemoteSourceError(`ADD ${url}: the server answered 304 to an unconditional request`, source)
    const mtime = lastModified(record.lastModified)
    const input = checksum ?? `etag=${record.etag ?? ''} modified=${record.lastModified ?? ''} ${record.digest}`
    return { digest: record.digest, name, ...(mtime === undefined ? {} : { mtime }), input: `${url} ${input}` }
  })
}
