/**
 * Hostile and broken requests over a real socket: each gets the right OCI
 * error, nothing is stored (store and upload dir checked), and the gateway
 * keeps serving afterwards. Raw node:http requests so that paths reach the
 * server exactly as written (fetch would normalise `..`).
 */
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { connect } from 'node:net'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashPassword } from '../../../src/gateway/index.ts'
import { serveGateway } from './serve.ts'
import type { ServedGateway } from './serve.ts'

interface Raw { status: number, headers: Record<string, string | string[] | undefined>, body: string }

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`

describe('gateway under bad input', () => {
  let served: ServedGateway
  let port: number
  let auth: string

  const raw = async (method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Raw> =>
    await new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers: { authorization: auth, ...(body === undefined ? {} : { 'content-length': String(body.byteLength) }), ...headers }, timeout: 30_000 }, res => {
        let text = ''
        res.on('data', (d: Buffer) => { text += d.toString() })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }) })
      })
      req.on('error', reject)
      req.end(body)
    })
  const code = (r: Raw): string | undefined => (JSON.parse(r.body) as { errors?: Array<{ code: string }> }).errors?.[0]?.code
  const stillServing = async (): Promise<void> => {
    const r = await raw('GET', '/v2/')
    expect(r.status).toBe(200)
  }
  const uploadsLeft = async (): Promise<string[]> => await readdir(join(served.dir, 'uploads')).catch(() => [])

  beforeAll(async () => {
    served = await serveGateway({ auth: { anonymousRead: false, users: [{ name: 'ci', passwordHash: await hashPassword('pw'), access: [{ repository: '**', allow: ['read', 'write'] }] }] } })
    port = Number(served.hostPort.split(':')[1])
    auth = basic('ci', 'pw')
  })
  afterAll(async () => { await served?.stop() })

  it('refuses an upload whose bytes do not match its digest, monolithic and chunked', async () => {
    const bytes = Buffer.from('the real bytes')
    const claimed = sha(Buffer.from('other bytes'))
    const mono = await raw('POST', `/v2/bad/blobs/uploads/?digest=${claimed}`, bytes, { 'content-type': 'application/octet-stream' })
    expect(mono.status).toBe(400)
    expect(code(mono)).toBe('DIGEST_INVALID')
    const start = await raw('POST', '/v2/bad/blobs/uploads/', Buffer.alloc(0))
    expect(start.status).toBe(202)
    const location = start.headers.location as string
    expect((await raw('PATCH', location, bytes, { 'content-type': 'application/octet-stream' })).status).toBe(202)
    const put = await raw('PUT', `${location}?digest=${claimed}`, Buffer.alloc(0))
    expect(code(put)).toBe('DIGEST_INVALID')
    for (const d of [claimed, sha(bytes)]) expect(await served.gateway.handle({ method: 'HEAD', url: `/v2/bad/blobs/${d}`, headers: { authorization: auth }, body: (async function * () {})() }).then(r => r.status)).toBe(404)
    expect(await uploadsLeft()).toEqual([])
    await stillServing()
  })

  it('refuses a manifest that references absent blobs, and an oversized one', async () => {
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(Buffer.from('no config')), size: 9 },
      layers: []
    }))
    const r = await raw('PUT', '/v2/bad/manifests/v1', manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
    expect(r.status).toBe(400)
    expect(code(r)).toBe('MANIFEST_BLOB_UNKNOWN')
    expect((await raw('GET', `/v2/bad/manifests/${sha(manifest)}`)).status).toBe(404)
    expect((await raw('GET', '/v2/bad/manifests/v1')).status).toBe(404)

    const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20)
    const big = await raw('PUT', '/v2/bad/manifests/huge', huge, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).catch(() => undefined)
    // The server may answer before it has read the whole body (and close); either way nothing is stored.
    if (big !== undefined) {
      expect(big.status).toBe(400)
      expect(code(big)).toBe('MANIFEST_INVALID')
    }
    expect((await raw('GET', '/v2/bad/manifests/huge')).status).toBe(404)
    await stillServing()
  })

  it('refuses a manifest whose descriptor size is not the stored blob\'s', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}')
    expect((await raw('POST', `/v2/bad/blobs/uploads/?digest=${sha(config)}`, config)).status).toBe(201)
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.byteLength + 100 },
      layers: []
    }))
    const r = await raw('PUT', '/v2/bad/manifests/sized', manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
    expect(r.status).toBe(400)
    expect(code(r)).toBe('MANIFEST_INVALID')
    expect((await raw('GET', '/v2/bad/manifests/sized')).status).toBe(404)
    await stillServing()
  })

  it('stores nothing from a truncated upload', async () => {
    const bytes = Buffer.alloc(64 * 1024, 7)
    const digest = sha(bytes)
    await new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`POST /v2/bad/blobs/uploads/?digest=${digest} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Length: ${bytes.byteLength}\r\n\r\n`)
        socket.write(bytes.subarray(0, 1000), () => { socket.destroy(); resolve() })
      })
      socket.on('error', reject)
    })
    // A blob is visible only once verified whole: the cut-off push can never become one.
    expect((await raw('HEAD', `/v2/bad/blobs/${digest}`)).status).toBe(404)
    // Part of the bytes sent in an orderly request: refused, not stored.
    const short = await raw('POST', `/v2/bad/blobs/uploads/?digest=${digest}`, bytes.subarray(0, 10), { 'content-length': '10' })
    expect(short.status).toBe(400)
    expect(['DIGEST_INVALID', 'SIZE_INVALID']).toContain(code(short))
    expect(await uploadsLeft()).toEqual([])
    await stillServing()
  })

  it('answers bad credentials and bad tokens with 401 and a challenge', async () => {
    for (const authorization of ['Bearer not-a-token', 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA', basic('ci', 'wrong'), 'Basic %%%']) {
      const r = await raw('GET', '/v2/bad/tags/list', undefined, { authorization })
      expect(r.status, authorization).toBe(401)
      expect(code(r)).toBe('UNAUTHORIZED')
      expect(String(r.headers['www-authenticate'])).toMatch(/^(Bearer|Basic) /)
    }
    await stillServing()
  })

  it('refuses path tricks in names without touching anything outside', async () => {
    for (const path of ['/v2/../../etc/passwd/manifests/latest', '/v2/a/../b/manifests/latest', '/v2/a/%2e%2e/b/tags/list', '/v2/A/manifests/latest', '/v2/a//b/tags/list', '/v2/a/b/blobs/sha256:..%2f..%2fetc', '/v2/-a/manifests/x']) {
      const r = await raw('GET', path)
      expect([400, 404], path).toContain(r.status)
      if (r.status === 400) expect(['NAME_INVALID', 'DIGEST_INVALID']).toContain(code(r))
    }
    const put = await raw('PUT', '/v2/../x/manifests/latest', Buffer.from('{}'), { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
    expect([400, 404]).toContain(put.status)
    await stillServing()
  })
})
