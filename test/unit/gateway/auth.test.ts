import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { globToRegExp, parseScope } from '../../../src/gateway/access.ts'
import { hashPassword, verifyPassword } from '../../../src/gateway/index.ts'
import { signToken, verifyToken } from '../../../src/gateway/tokens.ts'
import { makeGateway, pushImage, testImage } from './helpers.ts'
import type { TestGateway } from './helpers.ts'

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`

describe('gateway auth pieces', () => {
  it('hashes passwords with scrypt and verifies them', async () => {
    const h = await hashPassword('pw')
    expect(h).toMatch(/^\$scrypt\$N=32768,r=8,p=1\$/)
    expect(await verifyPassword('pw', h)).toBe(true)
    expect(await verifyPassword('nope', h)).toBe(false)
    expect(await verifyPassword('pw', 'garbage')).toBe(false)
  })

  it('matches repository globs per segment and across', () => {
    expect(globToRegExp('team/*').test('team/app')).toBe(true)
    expect(globToRegExp('team/*').test('team/a/b')).toBe(false)
    expect(globToRegExp('team/**').test('team/a/b')).toBe(true)
    expect(globToRegExp('a.b').test('axb')).toBe(false)
  })

  it('parses scopes', () => {
    expect(parseScope('repository:team/app:pull,push')).toEqual({ type: 'repository', name: 'team/app', actions: ['pull', 'push'] })
    expect(parseScope('garbage')).toBeUndefined()
  })

  it('signs tokens that expire and do not verify under another key or audience', () => {
    const key = Buffer.alloc(32, 1)
    const token = signToken(key, { aud: 's', iat: 100, exp: 200, access: [] })
    expect(verifyToken(key, token, 's', 150)?.exp).toBe(200)
    expect(verifyToken(key, token, 's', 201)).toBeUndefined()
    expect(verifyToken(key, token, 'other', 150)).toBeUndefined()
    expect(verifyToken(Buffer.alloc(32, 2), token, 's', 150)).toBeUndefined()
    expect(verifyToken(key, token.slice(0, -2) + 'AA', 's', 150)).toBeUndefined()
  })
})

describe('gateway with auth (in-process)', () => {
  let t: TestGateway
  let anon: TestGateway
  beforeAll(async () => {
    const [alice, bob] = await Promise.all([hashPassword('alice-pw'), hashPassword('bob-pw')])
    const users = [
      { name: 'alice', passwordHash: alice, access: [{ repository: 'team/**', allow: ['read' as const, 'write' as const] }] },
      { name: 'bob', passwordHash: bob, access: [{ repository: 'team/*', allow: ['read' as const] }] }
    ]
    t = await makeGateway({ auth: { anonymousRead: false, users, service: 'test-svc' } })
    anon = await makeGateway({ auth: { anonymousRead: true, users, service: 'test-svc' } })
  })
  afterAll(async () => { await t.cleanup(); await anon.cleanup() })

  it('challenges anonymous requests with a Bearer realm on this host', async () => {
    const r = await t.inject('GET', '/v2/')
    expect(r.status).toBe(401)
    expect(r.headers['www-authenticate']).toBe('Bearer realm="http://registry.test/token",service="test-svc"')
    const m = await t.inject('GET', '/v2/team/app/manifests/v1')
    expect(m.status).toBe(401)
    expect(m.json()).toMatchObject({ errors: [{ code: 'UNAUTHORIZED' }] })
    expect(m.headers['www-authenticate']).toContain('scope="repository:team/app:pull"')
  })

  it('runs the token flow: basic at /token, then Bearer with the granted scope only', async () => {
    const img = testImage()
    const tok = await t.inject('GET', '/token?service=test-svc&scope=repository:team/app:pull,push', { headers: { authorization: basic('alice', 'alice-pw') } })
    expect(tok.status).toBe(200)
    const { token, expires_in: ttl } = tok.json() as { token: string, expires_in: number }
    expect(ttl).toBeGreaterThan(0)
    const bearer = { authorization: `Bearer ${token}` }
    expect((await pushImage(t, 'team/app', img, 'v1', bearer)).status).toBe(201)
    expect((await t.inject('GET', '/v2/team/app/manifests/v1', { headers: bearer })).status).toBe(200)
    const elsewhere = await t.inject('GET', '/v2/team/other/manifests/v1', { headers: bearer })
    expect(elsewhere.status).toBe(401)
    expect(elsewhere.headers['www-authenticate']).toContain('error="insufficient_scope"')
    expect((await t.inject('GET', '/v2/', { headers: bearer })).status).toBe(200)
  })

  it('grants only what the user may do, and refuses wrong passwords', async () => {
    const tok = await t.inject('GET', '/token?service=test-svc&scope=repository:team/app:pull,push', { headers: { authorization: basic('bob', 'bob-pw') } })
    const { token } = tok.json() as { token: string }
    const push = await t.inject('POST', '/v2/team/app/blobs/uploads/', { headers: { authorization: `Bearer ${token}` } })
    expect(push.status).toBe(401)
    const wrong = await t.inject('GET', '/token?scope=repository:team/app:pull', { headers: { authorization: basic('bob', 'wrong') } })
    expect(wrong.status).toBe(401)
    const forged = await t.inject('GET', '/v2/team/app/tags/list', { headers: { authorization: 'Bearer kiln1.e30.AAAA' } })
    expect(forged.status).toBe(401)
  })

  it('accepts basic auth on each request, with DENIED beyond the user rules', async () => {
    const r = await t.inject('POST', '/v2/team/app/blobs/uploads/', { headers: { authorization: basic('bob', 'bob-pw') } })
    expect(r.status).toBe(403)
    expect(r.json()).toMatchObject({ errors: [{ code: 'DENIED' }] })
    expect((await t.inject('GET', '/v2/team/app/tags/list', { headers: { authorization: basic('bob', 'bob-pw') } })).status).toBe(200)
  })

  it('lets anonymous pull but not push when anonymous read is on, and filters the catalog', async () => {
    await pushImage(anon, 'team/app', testImage(), 'v1', { authorization: basic('alice', 'alice-pw') })
    const tok = (await anon.inject('GET', '/token?scope=repository:team/app:pull,push')).json() as { token: string }
    const bearer = { authorization: `Bearer ${tok.token}` }
    expect((await anon.inject('GET', '/v2/team/app/manifests/v1', { headers: bearer })).status).toBe(200)
    expect((await anon.inject('POST', '/v2/team/app/blobs/uploads/', { headers: bearer })).status).toBe(401)
    expect((await anon.inject('GET', '/v2/team/app/manifests/v1')).status).toBe(200)
    const cat = await t.inject('GET', '/v2/_catalog', { headers: { authorization: basic('bob', 'bob-pw') } })
    expect(cat.json()).toEqual({ repositories: ['team/app'] })
  })
})

describe('gateway logs', () => {
  it('never carry passwords or tokens, and uploads beyond the limit are TOOMANYREQUESTS', async () => {
    const lines: string[] = []
    const log = (o: Record<string, unknown>, m?: string): void => { lines.push(JSON.stringify(o) + (m ?? '')) }
    const t = await makeGateway({
      logger: { debug: log, info: log, warn: log, error: log },
      auth: { anonymousRead: false, users: [{ name: 'carol', passwordHash: await hashPassword('carol-secret-pw'), access: [{ repository: '**', allow: ['read', 'write'] }] }] }
    })
    try {
      const auth = { authorization: basic('carol', 'carol-secret-pw') }
      const tok = (await t.inject('GET', '/token?scope=repository:x:pull,push', { headers: auth })).json() as { token: string }
      await pushImage(t, 'x', testImage(), 'v1', { authorization: `Bearer ${tok.token}` })
      await t.inject('GET', '/v2/x/manifests/v1', { headers: { authorization: basic('carol', 'wrong-pw') } })
      const all = lines.join('\n')
      expect(lines.length).toBeGreaterThan(3)
      for (const secret of ['carol-secret-pw', 'wrong-pw', tok.token, Buffer.from('carol:carol-secret-pw').toString('base64')]) expect(all).not.toContain(secret)
    } finally { await t.cleanup() }

    const few = await makeGateway()
    try {
      const { createUploadManager } = await import('../../../src/gateway/uploads.ts')
      const m = createUploadManager({ dir: join(few.dir, 'u2'), store: few.store, ttlMs: 60_000, maxSessions: 2 })
      await m.start('a')
      await m.start('a')
      await expect(m.start('a')).rejects.toMatchObject({ code: 'TOOMANYREQUESTS', status: 429 })
      await m.close()
    } finally { await few.cleanup() }
  })
})
