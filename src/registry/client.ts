/**
 * The registry client: one registry host, plain HTTP for loopback or when
 * `insecure`, HTTPS otherwise. Auth follows what the registry asks for: a
 * 401 with `WWW-Authenticate: Bearer` sends the client to the token realm
 * (with basic credentials when it has some, anonymously otherwise) and the
 * request is retried with the token; `Basic` retries with the credentials.
 * Tokens are cached per scope until shortly before they expire.
 */
import { z } from 'zod'
import { parseDigest, sha256Digest } from '../content/digest.ts'
import type { Digest } from '../content/digest.ts'
import type { BlobInfo, BlobReader, Ingester } from '../content/index.ts'
import { findCredentials } from './auth-file.ts'
import type { Credentials } from './auth-file.ts'
import { DEFAULT_CHUNK_SIZE, DEFAULT_TOKEN_TTL_SECONDS, DOCKER_HUB_HOST, MANIFEST_ACCEPT, MAX_SMALL_RESPONSE, REQUEST_TIMEOUT_MS, TOKEN_RENEW_MARGIN_SECONDS } from './constants.ts'
import { ManifestDigestMismatchError, RegistryNotFoundError, RegistryResponseError, RegistryUnauthorizedError } from './errors.ts'
import type { BlobSource, FetchedManifest, PushBlobOptions, RegistryClient, RegistryClientInit } from './index.ts'
import { MAX_MANIFEST_SIZE } from '../oci/constants.ts'
import { parseChallenge } from './www-authenticate.ts'
import type { Challenge } from './www-authenticate.ts'

const TokenResponseSchema = z.looseObject({
  token: z.string().optional(),
  access_token: z.string().optional(),
  expires_in: z.number().optional()
})

const ErrorBodySchema = z.looseObject({ errors: z.array(z.looseObject({ code: z.string(), message: z.string().optional() })) })

const TagListSchema = z.looseObject({ name: z.string().optional(), tags: z.array(z.string()).nullable() })

type Body = Uint8Array | AsyncIterable<Uint8Array> | undefined

interface RequestOptions {
  scope: string
  headers?: Record<string, string>
  body?: Body
  /** Statuses that are success here; anything else throws. */
  ok: readonly number[]
  signal?: AbortSignal
}

function isLoopback (host: string): boolean {
  const name = host.replace(/:\d+$/, '')
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name)
}

async function readLimited (res: Response, limit: number): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  let total = 0
  if (res.body === null) return Buffer.alloc(0)
  for await (const chunk of res.body) {
    total += chunk.byteLength
    if (total > limit) throw new RegistryResponseError(`response larger than ${limit} bytes`, res.status)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

async function errorCodes (res: Response): Promise<{ codes: string[], text: string }> {
  const text = (await readLimited(res, MAX_SMALL_RESPONSE).catch(() => Buffer.alloc(0))).toString('utf8')
  try {
    const parsed = ErrorBodySchema.safeParse(JSON.parse(text))
    if (parsed.success) return { codes: parsed.data.errors.map(e => e.code), text: parsed.data.errors.map(e => `${e.code}: ${e.message ?? ''}`).join('; ') }
  } catch { /* not JSON */ }
  return { codes: [], text: text.slice(0, 200) }
}

type FetchBody = NonNullable<RequestInit['body']>

/** Node's fetch streams an async iterable body only with duplex: 'half'. */
function requestBody (body: Body): { body?: FetchBody, duplex?: 'half' } {
  if (body === undefined) return {}
  if (body instanceof Uint8Array) return { body: body as FetchBody }
  return { body: ReadableStream.from(body) as FetchBody, duplex: 'half' }
}

export class HttpRegistryClient implements RegistryClient {
  readonly registry: string
  readonly baseUrl: string
  private readonly credentials: Credentials | undefined
  private readonly fetchFn: typeof fetch
  private readonly tokens = new Map<string, { token: string, until: number }>()
  private challenge: Challenge | undefined
  private readonly userAgent: string

  constructor (init: RegistryClientInit) {
    this.registry = init.registry
    const host = init.registry === 'docker.io' ? DOCKER_HUB_HOST : init.registry
    const scheme = init.scheme ?? (init.insecure === true || isLoopback(host) ? 'http' : 'https')
    this.baseUrl = `${scheme}://${host}`
    this.credentials = init.credentials ?? (init.useAuthFile === false ? undefined : findCredentials(init.registry, undefined, init.env))
    this.fetchFn = init.fetch ?? fetch
    this.userAgent = init.userAgent ?? 'kiln-registry-client'
  }

  private url (path: string): string {
    return /^https?:\/\//.test(path) ? path : `${this.baseUrl}${path}`
  }

  private async token (challenge: Challenge, scope: string): Promise<string> {
    const cached = this.tokens.get(scope)
    if (cached !== undefined && cached.until > Date.now()) return cached.token
    const realm = challenge.params.realm
    if (realm === undefined) throw new RegistryResponseError('Bearer challenge without a realm', 401)
    const url = new URL(realm)
    if (challenge.params.service !== undefined) url.searchParams.set('service', challenge.params.service)
    if (scope !== '') url.searchParams.set('scope', scope)
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent }
    if (this.credentials !== undefined) headers.authorization = this.basic()
    const res = await this.fetchFn(url, { headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel()
      throw new RegistryUnauthorizedError(`${this.registry}: token request refused (${res.status}); check the credentials`, res.status)
    }
    if (res.status !== 200) throw new RegistryResponseError(`${this.registry}: token endpoint answered ${res.status}`, res.status)
    const parsed = TokenResponseSchema.safeParse(JSON.parse((await readLimited(res, MAX_SMALL_RESPONSE)).toString('utf8')))
    const token = parsed.success ? parsed.data.token ?? parsed.data.access_token : undefined
    if (token === undefined) throw new RegistryResponseError(`${this.registry}: token endpoint sent no token`, res.status)
    const ttl = Math.max((parsed.success ? parsed.data.expires_in : undefined) ?? DEFAULT_TOKEN_TTL_SECONDS, TOKEN_RENEW_MARGIN_SECONDS * 2)
    this.tokens.set(scope, { token, until: Date.now() + (ttl - TOKEN_RENEW_MARGIN_SECONDS) * 1000 })
    return token
  }

  private basic (): string {
    const c = this.credentials as Credentials
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`
  }

  private async authorization (scope: string): Promise<string | undefined> {
    if (this.challenge === undefined) return undefined
    if (this.challenge.scheme === 'basic') return this.credentials === undefined ? undefined : this.basic()
    return `Bearer ${await this.token(this.challenge, scope)}`
  }

  /**
   * Sends a request with auth, retrying once after a challenge when the body
   * can be sent again. Streamed bodies are only sent once auth is known.
   */
  private async request (method: string, path: string, options: RequestOptions): Promise<Response> {
    const send = async (): Promise<Response> => {
      const auth = await this.authorization(options.scope)
      return await this.fetchFn(this.url(path), {
        method,
        headers: { 'user-agent': this.userAgent, ...options.headers, ...(auth === undefined ? {} : { authorization: auth }) },
        ...requestBody(options.body),
        redirect: 'follow',
        ...(options.signal === undefined ? {} : { signal: options.signal })
      })
    }
    let res = await send()
    if (res.status === 401) {
      // Learn (or re-learn) what the registry wants and retry once, when the body can be sent again.
      const challenge = parseChallenge(res.headers.get('www-authenticate'))
      if (challenge !== undefined && (options.body === undefined || options.body instanceof Uint8Array)) {
        await res.body?.cancel()
        this.challenge = challenge
        this.tokens.delete(options.scope)
        res = await send()
      }
    }
    if (options.ok.includes(res.status)) return res
    const { codes, text } = await errorCodes(res)
    const what = `${method} ${path.split('?')[0] ?? path} on ${this.registry}`
    if (res.status === 401 || res.status === 403) throw new RegistryUnauthorizedError(`${what}: ${res.status} ${text}`, res.status)
    if (res.status === 404) throw new RegistryNotFoundError(`${what}: not found ${text}`, codes)
    throw new RegistryResponseError(`${what}: ${res.status} ${text}`, res.status, codes)
  }

  async ping (): Promise<void> {
    const res = await this.request('GET', '/v2/', { scope: '', ok: [200], signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    await res.body?.cancel()
  }

  async getManifest (repository: string, reference: string): Promise<FetchedManifest> {
    const res = await this.request('GET', `/v2/${repository}/manifests/${reference}`, {
      scope: pullScope(repository),
      headers: { accept: MANIFEST_ACCEPT },
      ok: [200],
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
    })
    const bytes = await readLimited(res, MAX_MANIFEST_SIZE)
    const digest = sha256Digest(bytes)
    if (reference.includes(':') && reference !== digest) {
      throw new ManifestDigestMismatchError(`${this.registry}/${repository}@${reference} served a manifest whose digest is ${digest}`)
    }
    const announced = res.headers.get('docker-content-digest')
    if (announced !== null && announced.startsWith('sha256:') && announced !== digest) {
      throw new ManifestDigestMismatchError(`${this.registry}/${repository}:${reference} announced ${announced} but served ${digest}`)
    }
    const mediaType = res.headers.get('content-type')?.split(';')[0]?.trim() ?? ''
    return { bytes, digest, mediaType }
  }

  async headManifest (repository: string, reference: string): Promise<{ digest: Digest, mediaType: string, size: number } | undefined> {
    try {
      const res = await this.request('HEAD', `/v2/${repository}/manifests/${reference}`, { scope: pullScope(repository), headers: { accept: MANIFEST_ACCEPT }, ok: [200] })
      const digest = res.headers.get('docker-content-digest')
      if (digest === null) return undefined
      return { digest: parseDigest(digest), mediaType: res.headers.get('content-type') ?? '', size: Number(res.headers.get('content-length') ?? 0) }
    } catch (err) {
      if ((err as Error).name === RegistryNotFoundError.name) return undefined
      throw err
    }
  }

  async hasBlob (repository: string, digest: Digest): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repository}/blobs/${digest}`, { scope: pullScope(repository), ok: [200, 404] })
    return res.status === 200
  }

  async fetchBlob (repository: string, expected: { digest: Digest, size: number }, store: Ingester, signal?: AbortSignal): Promise<BlobInfo> {
    const res = await this.request('GET', `/v2/${repository}/blobs/${expected.digest}`, { scope: pullScope(repository), ok: [200], ...(signal === undefined ? {} : { signal }) })
    if (res.body === null) throw new RegistryResponseError(`${this.registry}: blob ${expected.digest} has no body`, res.status)
    return await store.ingest(res.body, { digest: expected.digest, size: expected.size }, signal === undefined ? {} : { signal })
  }

  async pushBlob (repository: string, blob: { digest: Digest, size: number }, source: BlobSource, options: PushBlobOptions = {}): Promise<'exists' | 'mounted' | 'uploaded'> {
    const scope = pushScope(repository)
    if (await this.hasBlob(repository, blob.digest)) return 'exists'
    const mount = options.mountFrom === undefined ? '' : `?mount=${blob.digest}&from=${encodeURIComponent(options.mountFrom)}`
    const start = await this.request('POST', `/v2/${repository}/blobs/uploads/${mount}`, { scope, ok: [201, 202], headers: { 'content-length': '0' } })
    await start.body?.cancel()
    if (start.status === 201) return 'mounted'
    let location = this.location(start)
    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE
    const read = (offset: number, length: number): AsyncIterable<Uint8Array> =>
      source instanceof Uint8Array ? (async function * () { yield source.subarray(offset, offset + length) })() : source.read(blob.digest, { offset, length })
    if (blob.size > chunkSize || options.chunked === true) {
      for (let offset = 0; offset < blob.size; offset += chunkSize) {
        const length = Math.min(chunkSize, blob.size - offset)
        const res = await this.request('PATCH', location, {
          scope,
          ok: [202],
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(length), 'content-range': `${offset}-${offset + length - 1}` },
          body: await collect(read(offset, length))
        })
        await res.body?.cancel()
        location = this.location(res)
      }
      const done = await this.request('PUT', withDigest(location, blob.digest), { scope, ok: [201], headers: { 'content-length': '0' } })
      await done.body?.cancel()
      return 'uploaded'
    }
    const done = await this.request('PUT', withDigest(location, blob.digest), {
      scope,
      ok: [201],
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      body: source instanceof Uint8Array ? source : read(0, blob.size)
    })
    await done.body?.cancel()
    return 'uploaded'
  }

  async pushManifest (repository: string, reference: string, bytes: Uint8Array, mediaType: string): Promise<Digest> {
    const res = await this.request('PUT', `/v2/${repository}/manifests/${reference}`, {
      scope: pushScope(repository),
      ok: [200, 201, 202],
      headers: { 'content-type': mediaType },
      body: bytes
    })
    await res.body?.cancel()
    return sha256Digest(bytes)
  }

  async listTags (repository: string): Promise<string[]> {
    const tags: string[] = []
    let next: string | undefined = `/v2/${repository}/tags/list`
    for (let pages = 0; next !== undefined && pages < 1000; pages++) {
      const res = await this.request('GET', next, { scope: pullScope(repository), ok: [200], signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
      const parsed = TagListSchema.safeParse(JSON.parse((await readLimited(res, MAX_MANIFEST_SIZE)).toString('utf8')))
      if (!parsed.success) throw new RegistryResponseError(`${this.registry}: malformed tag list`, res.status)
      tags.push(...(parsed.data.tags ?? []))
      const link = res.headers.get('link')
      next = link === null ? undefined : /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1]
    }
    return tags
  }

  private location (res: Response): string {
    const loc = res.headers.get('location')
    if (loc === null) throw new RegistryResponseError(`${this.registry}: upload response without Location`, res.status)
    return new URL(loc, this.baseUrl).toString()
  }
}

function pullScope (repository: string): string { return `repository:${repository}:pull` }
function pushScope (repository: string): string { return `repository:${repository}:pull,push` }

function withDigest (location: string, digest: Digest): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`
}

async function collect (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of source) chunks.push(c)
  return Buffer.concat(chunks)
}

export type { BlobReader }
