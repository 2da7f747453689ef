import { describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/digest.ts'
import { createRegistryClient } from '../../../src/registry/index.ts'

const MANIFEST = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:' + 'a'.repeat(64) + '","size":1},"layers":[]}')

/** A registry behind a token server, as a fetch function; counts token requests. */
function fakeRegistry (options: { announce?: string } = {}): { fetch: typeof fetch, tokenRequests: () => number, seenAuth: string[] } {
  let tokens = 0
  const seenAuth: string[] = []
  const fn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input.toString())
    const headers = new Headers(init?.headers)
    if (url.hostname === 'auth.example') {
      tokens++
      seenAuth.push(headers.get('authorization') ?? '')
      return Response.json({ token: `tok-${url.searchParams.get('scope') ?? ''}`, expires_in: 300 })
    }
    if (headers.get('authorization') !== 'Bearer tok-repository:lib/app:pull') {
      return new Response('{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}', {
        status: 401,
        headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token",service="reg",scope="repository:lib/app:pull"' }
      })
    }
    if (url.pathname === '/v2/lib/app/manifests/v1') {
      return new Response(MANIFEST, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': options.announce ?? sha256Digest(MANIFEST) } })
    }
    return new Response('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}', { status: 404 })
  }
  return { fetch: fn as typeof fetch, tokenRequests: () => tokens, seenAuth }
}

describe('registry client (fake registry)', () => {
  it('follows the Bearer challenge once, caches the token, sends credentials only to the realm', async () => {
    const reg = fakeRegistry()
    const client = createRegistryClient({ registry: 'reg.example', fetch: reg.fetch, credentials: { username: 'u', password: 'p' } })
    expect(client.baseUrl).toBe('https://reg.example')
    const m = await client.getManifest('lib/app', 'v1')
    expect(m.digest).toBe(sha256Digest(MANIFEST))
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
    await client.getManifest('lib/app', 'v1')
    expect(reg.tokenRequests()).toBe(1)
    expect(reg.seenAuth).toEqual([`Basic ${Buffer.from('u:p').toString('base64')}`])
    await expect(client.getManifest('lib/app', 'v2')).rejects.toMatchObject({ name: 'RegistryNotFoundError', codes: ['MANIFEST_UNKNOWN'] })
  })

  it('refuses a manifest that is not what the digest or the registry said', async () => {
    const client = createRegistryClient({ registry: 'reg.example', fetch: fakeRegistry({ announce: 'sha256:' + 'b'.repeat(64) }).fetch, useAuthFile: false })
    await expect(client.getManifest('lib/app', 'v1')).rejects.toMatchObject({ name: 'ManifestDigestMismatchError' })
  })

  it('uses http for loopback and insecure hosts, and registry-1 for docker.io', () => {
    expect(createRegistryClient({ registry: '127.0.0.1:5000', useAuthFile: false }).baseUrl).toBe('http://127.0.0.1:5000')
    expect(createRegistryClient({ registry: 'localhost:5000', useAuthFile: false }).baseUrl).toBe('http://localhost:5000')
    expect(createRegistryClient({ registry: 'gw.site:5000', insecure: true, useAuthFile: false }).baseUrl).toBe('http://gw.site:5000')
    expect(createRegistryClient({ registry: '127.0.0.1:5443', scheme: 'https', useAuthFile: false }).baseUrl).toBe('https://127.0.0.1:5443')
    expect(createRegistryClient({ registry: 'docker.io', useAuthFile: false }).baseUrl).toBe('https://registry-1.docker.io')
  })
})
