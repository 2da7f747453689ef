/**
 * Pull-through sources: order and fallback of the chain, one shared fetch
 * for concurrent requests (streaming or not), a failing source skipped, the network source's
 * idle deadline, upstream parsing and mirror prefixes, and the gateway
 * passing containerd's ns= to its sources, and a tag whose records were
 * all refused reported with the reasons in the OCI error's detail.
 */
import { describe, expect, it } from 'vitest'
import type { Digest } from '../../../src/content/digest.ts'
import { TagRecordsRefusedError, chainPullThrough, createNetworkPullThrough, mirrorPrefix, parseUpstream } from '../../../src/gateway/index.ts'
import type { ArrivingBlob, NamedPullThrough, PullHint } from '../../../src/gateway/index.ts'
import type { FetchResult } from '../../../src/transfer/index.ts'
import { blob, makeGateway } from './helpers.ts'

const D = blob('x').digest

function source (name: string, has: Set<string>, calls: string[]): NamedPullThrough {
  return {
    name,
    fetchBlob: async (digest) => { calls.push(`${name}:${digest.slice(7, 11)}`); return has.has(digest) },
    resolveTag: async (repository, tag) => {
      calls.push(`${name}:${repository}:${tag}`)
      return has.has(`${repository}:${tag}`) ? { digest: D, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1 } : undefined
    }
  }
}

describe('chainPullThrough', () => {
  it('asks the network before the upstream and stops at the first that has it', async () => {
    const calls: string[] = []
    const chain = chainPullThrough([source('network', new Set([D]), calls), source('upstream', new Set([D]), calls)])
    expect(await chain.fetchBlob(D)).toBe(true)
    expect(calls).toEqual([`network:${D.slice(7, 11)}`])
    calls.length = 0
    const other = blob('y').digest
    const fallback = chainPullThrough([source('network', new Set(), calls), source('upstream', new Set([other]), calls)])
    expect(await fallback.fetchBlob(other)).toBe(true)
    expect(calls).toEqual([`network:${other.slice(7, 11)}`, `upstream:${other.slice(7, 11)}`])
    expect(await fallback.fetchBlob(blob('z').digest)).toBe(false)
  })

  it('skips a source that throws, for blobs and tags', async () => {
    const calls: string[] = []
    const broken: NamedPullThrough = { name: 'broken', fetchBlob: async () => { throw new Error('boom') }, resolveTag: async () => { throw new Error('boom') } }
    const chain = chainPullThrough([broken, source('upstream', new Set([D, 'a/b:v1']), calls)])
    expect(await chain.fetchBlob(D)).toBe(true)
    expect(await chain.resolveTag('a/b', 'v1')).toMatchObject({ digest: D })
    expect(await chain.resolveTag('a/b', 'v2')).toBeUndefined()
  })

  it('runs one fetch for concurrent requests of the same digest', async () => {
    let fetches = 0
    let release: () => void = () => {}
    const gate = new Promise<void>(resolve => { release = resolve })
    const slow: NamedPullThrough = { name: 'slow', fetchBlob: async () => { fetches++; await gate; return true }, resolveTag: async () => undefined }
    const chain = chainPullThrough([slow])
    const all = Promise.all(Array.from({ length: 50 }, async () => await chain.fetchBlob(D)))
    release()
    expect(await all).toEqual(Array(50).fill(true))
    expect(fetches).toBe(1)
    // Done fetches are not remembered: a later request asks again.
    await chain.fetchBlob(D)
    expect(fetches).toBe(2)
  })

  it('shares a streaming fetch: streams and whole-blob requests join it, and its failure is logged', async () => {
    let settle: (ok: boolean) => void = () => {}
    const done = new Promise<boolean>(resolve => { settle = resolve })
    const arriving: ArrivingBlob = { digest: D, size: 3, read: () => (async function * () {})(), done, failure: new Error('bytes from 12D3KooWliar do not match') }
    let streams = 0
    const calls: string[] = []
    const network: NamedPullThrough = { ...source('network', new Set(), calls), streamBlob: async () => { streams++; return arriving } }
    const warned: Array<Record<string, unknown>> = []
    const logger = { debug: () => {}, info: () => {}, warn: (o: Record<string, unknown>) => { warned.push(o) }, error: () => {} }
    const chain = chainPullThrough([network, source('upstream', new Set([D]), calls)], logger)
    expect(await chain.streamBlob?.(D)).toBe(arriving)
    expect(await chain.streamBlob?.(D)).toBe(arriving)
    const whole = chain.fetchBlob(D)
    settle(false)
    expect(await whole).toBe(false)
    expect(streams).toBe(1)
    expect(calls).toEqual([])
    expect(warned).toContainEqual(expect.objectContaining({ source: 'network', err: 'bytes from 12D3KooWliar do not match' }))
    // A source that does not have it: the next one is asked, and the blob is stored (true).
    const none: NamedPullThrough = { ...source('network', new Set(), calls), streamBlob: async () => false }
    expect(await chainPullThrough([none, source('upstream', new Set([D]), calls)]).streamBlob?.(D)).toBe(true)
    expect(calls).toEqual([`upstream:${D.slice(7, 11)}`])
  })
})

describe('createNetworkPullThrough', () => {
  it('abandons a fetch that makes no progress, but not one that keeps reporting progress', async () => {
    const stalled = createNetworkPullThrough({
      idleMs: 100,
      fetch: async (_d, options) => await new Promise<FetchResult>((_resolve, reject) => { options?.signal?.addEventListener('abort', () => { reject(new Error('aborted')) }) })
    })
    const t0 = Date.now()
    expect(await stalled.fetchBlob(D)).toBe(false)
    expect(Date.now() - t0).toBeLessThan(5000)

    const progressing = createNetworkPullThrough({
      idleMs: 100,
      fetch: async (digest, options) => {
        for (let i = 0; i < 6; i++) {
          await new Promise(resolve => setTimeout(resolve, 50))
          if (options?.signal?.aborted === true) throw new Error('aborted')
          options?.onProgress?.({ digest, received: i, total: 6 } as never)
        }
        return { digest, size: 6, resumedBytes: 0, fromPeers: new Map<string, number>(), banned: [], rounds: 1, alreadyPresent: false }
      }
    })
    expect(await progressing.fetchBlob(D)).toBe(true)
  })

  it('reports no providers as absent and other failures as errors', async () => {
    const none = createNetworkPullThrough({ fetch: async () => { throw Object.assign(new Error('none'), { name: 'NoProvidersError' }) } })
    expect(await none.fetchBlob(D)).toBe(false)
    const broken = createNetworkPullThrough({ fetch: async () => { throw new Error('disk full') } })
    await expect(broken.fetchBlob(D)).rejects.toThrow('disk full')
    expect(await none.resolveTag('a', 'b')).toBeUndefined()
  })
})

describe('mirror configuration', () => {
  it('parses --upstream values and refuses bad ones', () => {
    expect(parseUpstream('docker.io')).toEqual({ namespace: 'docker.io' })
    expect(parseUpstream('localhost:5001=http://127.0.0.1:5001')).toEqual({ namespace: 'localhost:5001', registry: '127.0.0.1:5001', scheme: 'http' })
    expect(parseUpstream('quay.io=https://mirror.example.org')).toEqual({ namespace: 'quay.io', registry: 'mirror.example.org', scheme: 'https' })
    expect(() => parseUpstream('../etc=http://x')).toThrow()
    expect(() => parseUpstream('docker.io=ftp://x')).toThrow()
    expect(mirrorPrefix('localhost:5001')).toBe('localhost-5001')
    expect(mirrorPrefix('Docker.IO')).toBe('docker.io')
    expect(mirrorPrefix('a/b')).toBeUndefined()
  })

  it('a tag whose network records were all refused: MANIFEST_UNKNOWN says why in detail, unless a later source has it', async () => {
    const calls: string[] = []
    const refused = { signer: '12D3KooWsigner', reason: '12D3KooWsigner is not trusted as builder and presented no certificate' }
    const network: NamedPullThrough = { name: 'network', fetchBlob: async () => false, resolveTag: async (r, t) => { throw new TagRecordsRefusedError(r, t, [refused]) } }
    const chain = chainPullThrough([network, source('upstream', new Set([D, 'a/b:v1']), calls)])
    expect(await chain.resolveTag('a/b', 'v1')).toMatchObject({ digest: D })
    await expect(chain.resolveTag('a/b', 'v2')).rejects.toMatchObject({ name: 'TagRecordsRefusedError', skipped: [refused] })
    const t = await makeGateway({ pullThrough: chainPullThrough([network]) })
    try {
      const res = await t.inject('GET', '/v2/a/b/manifests/v2')
      expect(res.status).toBe(404)
      const body = JSON.parse(res.body.toString()) as { errors: Array<{ code: string, message: string, detail: unknown }> }
      expect(body.errors[0]).toMatchObject({ code: 'MANIFEST_UNKNOWN', detail: { reference: 'v2', refused: [refused] } })
      expect(body.errors[0]?.message).toMatch(/a\/b:v2 has tag records on the network, but this gateway accepted none/)
    } finally { await t.cleanup() }
  })

  it('hands containerd\'s ns= to the sources, and a bad ns is ignored', async () => {
    const hints: Array<PullHint | undefined> = []
    const tags: Array<string | undefined> = []
    const t = await makeGateway({
      pullThrough: {
        fetchBlob: async (_d: Digest, hint?: PullHint) => { hints.push(hint); return false },
        resolveTag: async (_r, _t, hint) => { tags.push(hint?.namespace); return undefined }
      }
    })
    try {
      expect((await t.inject('GET', `/v2/library/busybox/blobs/${D}?ns=docker.io`)).status).toBe(404)
      expect((await t.inject('GET', '/v2/library/busybox/manifests/latest?ns=docker.io')).status).toBe(404)
      expect((await t.inject('GET', '/v2/library/busybox/manifests/latest?ns=..%2Fx')).status).toBe(404)
      expect(hints[0]).toEqual({ repository: 'library/busybox', kind: 'blob', namespace: 'docker.io' })
      expect(tags).toEqual(['docker.io', undefined])
    } finally { await t.cleanup() }
  })
})
