/**
 * The status page and its JSON (protocols/status.md), in-process: who may
 * see them (open, anonymous read, login only: a Basic challenge), what the
 * JSON carries (the StatusSource's node, peers and jobs; the gateway's
 * builds with their log tail; the bounded ring of recent pulls, filtered by
 * what the user may pull), and the page's CSP and its script writing text only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Digest } from '../../../src/content/digest.ts'
import { hashPassword } from '../../../src/gateway/index.ts'
import type { BuildRunner, NodeStatus, StatusDocument, StatusSource } from '../../../src/gateway/index.ts'
import { MAX_RECENT_PULLS } from '../../../src/gateway/constants.ts'
import { makeGateway, pushImage, testImage } from './helpers.ts'
import type { TestGateway } from './helpers.ts'

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`

/** A name from the network that would run as script if it became markup. */
const HOSTILE = '<img src=x onerror="alert(1)">'

function source (status: NodeStatus): StatusSource & { calls: number } {
  const s = { calls: 0, snapshot: async () => { s.calls++; return status } }
  return s
}

describe('status page on an open gateway', () => {
  let t: TestGateway
  const src = source({
    node: { peerId: '12D3KooWself', addresses: ['/ip4/127.0.0.1/tcp/4001'], platforms: ['linux/amd64'], capabilities: ['gpu'], takesJobs: true },
    peers: [{ peerId: '12D3KooWpeer', addresses: ['/ip4/10.0.0.2/tcp/4001'], platforms: ['linux/arm64'], capabilities: [HOSTILE] }],
    jobs: [{ jobId: 'job-1', platform: 'linux/amd64', requester: '12D3KooWreq', state: 'building', log: ['[1/2] RUN make', HOSTILE] }],
    store: { blobs: 3, bytes: 1234, buildCache: { bytes: 10 }, quota: null, pinnedBytes: 0, leasedBytes: 0, pins: 0, filesystem: { sizeBytes: 100, freeBytes: 50, freeInodes: 5 }, measuredAt: '2026-01-01T00:00:00.000Z' }
  })
  beforeAll(async () => { t = await makeGateway({ status: src }) })
  afterAll(async () => { await t.cleanup() })

  it('serves the node status from its source, the gateway access and no builds or pulls yet', async () => {
    const r = await t.inject('GET', '/_kiln/status.json')
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toBe('application/json')
    expect(r.headers['cache-control']).toBe('no-store')
    const doc = r.json() as StatusDocument
    expect(doc).toMatchObject({ v: 1, gateway: { access: 'open', builds: false }, builds: [], pulls: [] })
    expect(doc.node?.peerId).toBe('12D3KooWself')
    expect(doc.peers[0]?.capabilities).toEqual([HOSTILE])
    expect(doc.jobs[0]).toMatchObject({ jobId: 'job-1', state: 'building', log: ['[1/2] RUN make', HOSTILE] })
    expect(doc.store?.blobs).toBe(3)
    expect(Date.parse(doc.generatedAt)).toBeGreaterThan(0)
  })

  it('records manifest GETs (not HEADs) in a bounded ring, newest first', async () => {
    const image = testImage('pulled')
    expect((await pushImage(t, 'demo/app', image, '1')).status).toBe(201)
    expect((await t.inject('HEAD', '/v2/demo/app/manifests/1')).status).toBe(200)
    expect(((await t.inject('GET', '/_kiln/status.json')).json() as StatusDocument).pulls).toEqual([])
    for (let i = 0; i < MAX_RECENT_PULLS + 5; i++) {
      const ref = i === MAX_RECENT_PULLS + 4 ? image.manifest.digest : '1'
      expect((await t.inject('GET', `/v2/demo/app/manifests/${ref}`)).status).toBe(200)
    }
    expect((await t.inject('GET', '/v2/demo/app/manifests/nope')).status).toBe(404)
    const pulls = ((await t.inject('GET', '/_kiln/status.json')).json() as StatusDocument).pulls
    expect(pulls).toHaveLength(MAX_RECENT_PULLS)
    expect(pulls[0]).toMatchObject({ repository: 'demo/app', reference: image.manifest.digest, digest: image.manifest.digest })
    expect(pulls[0]?.user).toBeUndefined()
    expect(pulls[1]).toMatchObject({ repository: 'demo/app', reference: '1', digest: image.manifest.digest })
  })

  it('serves a self-contained HTML page under a CSP whose nonce its script and style carry', async () => {
    const r = await t.inject('GET', '/_kiln/status')
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8')
    const csp = r.headers['content-security-policy'] ?? ''
    expect(csp).toContain("default-src 'none'")
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1]
    expect(nonce).toBeDefined()
    const html = r.body.toString()
    expect(html).toContain(`<script nonce="${nonce ?? ''}">`)
    expect(html).toContain(`<style nonce="${nonce ?? ''}">`)
    expect(html).not.toContain('{{nonce}}')
    // No markup is made from data, and nothing is loaded from elsewhere.
    expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/)
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//)
    // A fresh nonce per response.
    const again = await t.inject('GET', '/_kiln/status')
    expect(again.headers['content-security-policy']).not.toBe(csp)
  })

  it('is read-only', async () => {
    const r = await t.inject('POST', '/_kiln/status.json', { body: '{}' })
    expect(r.status).toBe(405)
    expect(r.json()).toMatchObject({ errors: [{ code: 'UNSUPPORTED' }] })
  })
})

describe('status page behind the gateway auth', () => {
  let closed: TestGateway
  let anon: TestGateway
  beforeAll(async () => {
    const [alice, bob] = await Promise.all([hashPassword('alice-pw'), hashPassword('bob-pw')])
    const users = [
      { name: 'alice', passwordHash: alice, access: [{ repository: '**', allow: ['read' as const, 'write' as const] }] },
      { name: 'bob', passwordHash: bob, access: [{ repository: 'team/**', allow: ['read' as const] }] }
    ]
    closed = await makeGateway({ auth: { anonymousRead: false, users } })
    anon = await makeGateway({ auth: { anonymousRead: true, users } })
  })
  afterAll(async () => { await closed.cleanup(); await anon.cleanup() })

  it('answers 401 with a Basic challenge without credentials, or with wrong ones, when anonymous pulls are off', async () => {
    for (const path of ['/_kiln/status', '/_kiln/status.json']) {
      const none = await closed.inject('GET', path)
      expect(none.status).toBe(401)
      expect(none.headers['www-authenticate']).toMatch(/^Basic realm="kiln status"/)
      expect(none.body.toString()).not.toContain('kiln status</title>')
      const wrong = await closed.inject('GET', path, { headers: { authorization: basic('alice', 'nope') } })
      expect(wrong.status).toBe(401)
      expect(wrong.headers['www-authenticate']).toMatch(/^Basic /)
    }
    const ok = await closed.inject('GET', '/_kiln/status.json', { headers: { authorization: basic('alice', 'alice-pw') } })
    expect(ok.status).toBe(200)
    expect((ok.json() as StatusDocument).gateway.access).toBe('login')
    expect((await closed.inject('GET', '/_kiln/status', { headers: { authorization: basic('bob', 'bob-pw') } })).status).toBe(200)
  })

  it('lets anonymous requests look when anonymous pulls are on, and lists only pulls of repositories the viewer may pull', async () => {
    expect(((await anon.inject('GET', '/_kiln/status.json')).json() as StatusDocument).gateway.access).toBe('anonymous-read')
    const alice = { authorization: basic('alice', 'alice-pw') }
    expect((await pushImage(anon, 'team/app', testImage('t'), '1', alice)).status).toBe(201)
    expect((await pushImage(anon, 'other/app', testImage('o'), '1', alice)).status).toBe(201)
    expect((await anon.inject('GET', '/v2/team/app/manifests/1', { headers: alice })).status).toBe(200)
    expect((await anon.inject('GET', '/v2/other/app/manifests/1')).status).toBe(200)
    const forBob = ((await anon.inject('GET', '/_kiln/status.json', { headers: { authorization: basic('bob', 'bob-pw') } })).json() as StatusDocument).pulls
    expect(forBob.map(p => p.repository)).toEqual(['team/app'])
    expect(forBob[0]?.user).toBe('alice')
    const forAlice = ((await anon.inject('GET', '/_kiln/status.json', { headers: alice })).json() as StatusDocument).pulls
    expect(forAlice.map(p => p.repository)).toEqual(['other/app', 'team/app'])
    // Anonymous viewers see the pulls, not who made them.
    const forAnyone = ((await anon.inject('GET', '/_kiln/status.json')).json() as StatusDocument).pulls
    expect(forAnyone.map(p => [p.repository, p.user])).toEqual([['other/app', undefined], ['team/app', undefined]])
  })
})

describe('status of gateway builds', () => {
  it('lists builds newest first with the tail of their log', async () => {
    let release: () => void = () => {}
    const gate = new Promise<void>(resolve => { release = resolve })
    const box: { t?: TestGateway } = {}
    const runner: BuildRunner = {
      name: 'fake',
      run: async (job, io) => {
        io.log(`RUN echo ${HOSTILE}`)
        await gate
        const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest('{}'), size: 2 }, layers: [] }))
        const store = (box.t as TestGateway).store
        await store.ingest(Buffer.from('{}'))
        await store.ingest(manifest)
        return { digest: sha256Digest(manifest), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: manifest.byteLength }
      }
    }
    const t = await makeGateway({ builder: runner })
    box.t = t
    try {
      const r = await t.inject('POST', '/v2/hpc/app/_kiln/builds', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ recipe: { kind: 'dockerfile', text: 'FROM scratch\n' }, platforms: ['linux/amd64'], tag: 'v1' }) })
      expect(r.status).toBe(202)
      const id = (r.json() as { id: string }).id
      const during = (await t.inject('GET', '/_kiln/status.json')).json() as StatusDocument
      expect(during.gateway.builds).toBe(true)
      expect(during.builds[0]).toMatchObject({ id, repository: 'hpc/app', tag: 'v1', status: 'building' })
      expect(during.builds[0]?.log).toContain(`linux/amd64 0| RUN echo ${HOSTILE}`)
      release()
      const logs = await t.inject('GET', `/v2/hpc/app/_kiln/builds/${id}/logs`)
      expect(logs.body.toString()).toContain('done |')
      const after = (await t.inject('GET', '/_kiln/status.json')).json() as StatusDocument
      expect(after.builds[0]).toMatchObject({ id, status: 'succeeded', result: { tag: 'v1' } })
    } finally { await t.cleanup() }
  })
})
