/**
 * Bounded password checks (src/gateway/login-guard.ts, auth.ts): a few
 * scrypt checks at once with a bounded queue, failed logins limited per
 * address and per user name with 429 and Retry-After, unknown names as
 * slow as known ones, and token requests that never wait for checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashPassword } from '../../../src/gateway/index.ts'
import { CheckQueue, clientAddress, FailureCounter } from '../../../src/gateway/login-guard.ts'
import type { GatewayAuthInit } from '../../../src/gateway/index.ts'
import { makeGateway } from './helpers.ts'
import type { InjectResult, TestGateway } from './helpers.ts'

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
const code = (r: InjectResult): string | undefined => (r.json() as { errors?: Array<{ code: string }> }).errors?.[0]?.code

function deferred (): { promise: Promise<void>, resolve: () => void } {
  let resolve = (): void => {}
  const promise = new Promise<void>(r => { resolve = r })
  return { promise, resolve }
}

describe('CheckQueue', () => {
  it('runs at most `concurrentChecks` at once, in order, and refuses beyond the queue with 429', async () => {
    const q = new CheckQueue({ concurrentChecks: 2, queuedChecks: 2 })
    const gates = Array.from({ length: 4 }, () => deferred())
    const started: number[] = []
    const runs = gates.map(async (g, i) => await q.run(async () => { started.push(i); await g.promise; return i }))
    await new Promise(resolve => setImmediate(resolve))
    expect(started).toEqual([0, 1])
    await expect(q.run(async () => 5)).rejects.toMatchObject({ code: 'TOOMANYREQUESTS', status: 429, headers: { 'retry-after': '1' } })
    gates[1]?.resolve()
    await runs[1]
    await new Promise(resolve => setImmediate(resolve))
    expect(started).toEqual([0, 1, 2])
    for (const g of gates) g.resolve()
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3])
    expect(started).toEqual([0, 1, 2, 3])
    // Slots are all given back: two run at once again.
    expect(await Promise.all([q.run(async () => 'a'), q.run(async () => 'b')])).toEqual(['a', 'b'])
  })

  it('frees the slot of a check that throws', async () => {
    const q = new CheckQueue({ concurrentChecks: 1, queuedChecks: 0 })
    await expect(q.run(async () => { throw new Error('scrypt failed') })).rejects.toThrow('scrypt failed')
    expect(await q.run(async () => 'next')).toBe('next')
  })
})

describe('clientAddress', () => {
  it('is the peer, or behind a proxy on this host the address the proxy appended last', () => {
    const at = (remoteAddress: string | undefined, xff?: string): string =>
      clientAddress({ ...(remoteAddress === undefined ? {} : { remoteAddress }), headers: xff === undefined ? {} : { 'x-forwarded-for': xff } })
    expect(at('192.0.2.7')).toBe('192.0.2.7')
    expect(at('::ffff:192.0.2.7')).toBe('192.0.2.7')
    // A remote client cannot pick its own address with the header.
    expect(at('192.0.2.7', '10.9.9.9')).toBe('192.0.2.7')
    expect(at('127.0.0.1', 'forged, 198.51.100.4')).toBe('198.51.100.4')
    expect(at('::1', '2001:db8::5')).toBe('2001:db8::5')
    expect(at('127.0.0.1', 'not-an-address')).toBe('127.0.0.1')
    expect(at('127.0.0.1')).toBe('127.0.0.1')
    expect(at(undefined)).toBe('')
  })
})

describe('FailureCounter', () => {
  it('refuses a key with Retry-After until its window ends, and forgets the oldest beyond maxTracked', () => {
    let now = 1_000_000
    const c = new FailureCounter({ maxFailures: 3, windowMs: 60_000, maxTracked: 2 }, () => now)
    for (let i = 0; i < 3; i++) { c.check('a', 'x'); c.fail('a') }
    expect(() => { c.check('a', 'from here') }).toThrow(expect.objectContaining({ code: 'TOOMANYREQUESTS', headers: { 'retry-after': '60' } }))
    now += 45_500
    expect(() => { c.check('a', 'x') }).toThrow(expect.objectContaining({ headers: { 'retry-after': '15' } }))
    c.check('b', 'x') // other keys are not affected
    now += 14_500
    c.check('a', 'x') // window over
    c.fail('a')
    c.fail('a')
    c.fail('b')
    c.fail('c') // a third key: the oldest window (a's, restarted before b's) is forgotten
    c.fail('a')
    c.check('a', 'x')
  })
})

describe('password logins under load (in-process)', () => {
  let t: TestGateway
  const limits: GatewayAuthInit['loginLimits'] = { maxFailures: 3, windowMs: 60_000 }

  beforeAll(async () => {
    const users = await Promise.all(['alice', 'bob', 'carol'].map(async name =>
      ({ name, passwordHash: await hashPassword(`${name}-pw`), access: [{ repository: '**', allow: ['read' as const, 'write' as const] }] })))
    t = await makeGateway({ auth: { anonymousRead: false, users, loginLimits: limits } })
    expect((await t.inject('GET', '/v2/', { headers: { authorization: basic('alice', 'alice-pw') }, remoteAddress: '10.0.0.1' })).status).toBe(200)
  })
  afterAll(async () => { await t.cleanup() })

  const login = async (user: string, pass: string, remoteAddress: string): Promise<InjectResult> =>
    await t.inject('GET', '/v2/', { headers: { authorization: basic(user, pass) }, remoteAddress })

  it('limits failed logins per address: 429 with Retry-After, other addresses unaffected', async () => {
    for (const user of ['x1', 'x2', 'x3']) expect((await login(user, 'guess', '192.0.2.1')).status).toBe(401)
    const limited = await login('x4', 'guess', '192.0.2.1')
    expect(limited.status).toBe(429)
    expect(code(limited)).toBe('TOOMANYREQUESTS')
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(55)
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60)
    // Even the right password waits: the address is refused before any check.
    expect((await login('bob', 'bob-pw', '192.0.2.1')).status).toBe(429)
    expect((await login('bob', 'bob-pw', '192.0.2.2')).status).toBe(200)
    // IPv4 as a dual-stack socket reports it is the same client.
    expect((await login('x5', 'guess', '::ffff:192.0.2.1')).status).toBe(429)
  })

  it('limits failed logins per user name across addresses, known or not, but lets a recently verified password in', async () => {
    for (const [i, user] of ['carol', 'carol', 'carol', 'nobody', 'nobody', 'nobody'].entries()) {
      expect((await login(user, 'guess', `198.51.100.${i + 1}`)).status).toBe(401)
    }
    for (const user of ['carol', 'nobody']) {
      const r = await login(user, 'guess', '198.51.100.99')
      expect(r.status, user).toBe(429)
      expect(r.json()).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS', message: expect.stringContaining('user name') }] })
    }
    // alice's password was verified at start: it still passes while her name is guessed at.
    for (let i = 0; i < 3; i++) await login('alice', 'guess', `203.0.113.${i + 1}`)
    expect((await login('alice', 'guess', '203.0.113.50')).status).toBe(429)
    expect((await login('alice', 'alice-pw', '203.0.113.50')).status).toBe(200)
  })

  it('checks unknown user names against a hash too: they spend a check and take as long as known ones', async () => {
    const single = await makeGateway({
      auth: { anonymousRead: false, users: [{ name: 'dave', passwordHash: await hashPassword('dave-pw'), access: [] }], loginLimits: { concurrentChecks: 1, queuedChecks: 0 } }
    })
    try {
      const at = (user: string, i: number): Promise<InjectResult> =>
        single.inject('GET', '/v2/', { headers: { authorization: basic(user, 'guess') }, remoteAddress: `10.1.0.${i}` })
      // With one check at a time and no queue, an unknown name beside a known one is refused for want of a slot.
      const [known, unknown] = await Promise.all([at('dave', 1), at('ghost', 2)])
      expect(known.status).toBe(401)
      expect(unknown.status).toBe(429)
      const times = { known: [] as number[], unknown: [] as number[] }
      for (let i = 0; i < 5; i++) {
        for (const [kind, user] of [['known', 'dave'], ['unknown', `ghost-${i}`]] as const) {
          const t0 = performance.now()
          expect((await at(user, 10 + i * 2 + (kind === 'known' ? 0 : 1))).status).toBe(401)
          times[kind].push(performance.now() - t0)
        }
      }
      const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[2] as number
      // Before, an unknown name was answered in ~1 ms against ~75 ms for a known one.
      expect(median(times.unknown)).toBeGreaterThan(median(times.known) / 3)
    } finally { await single.cleanup() }
  })

  it('serves token requests while password checks queue: they never wait for one', async () => {
    // Failure limits high, so that the flood of wrong passwords for one user is all checked.
    const busy = await makeGateway({
      auth: { anonymousRead: false, users: [{ name: 'erin', passwordHash: await hashPassword('erin-pw'), access: [{ repository: '**', allow: ['read', 'write'] }] }], loginLimits: { maxFailures: 1000 } }
    })
    try {
      const tok = await busy.inject('GET', '/token?scope=repository:team/app:pull,push', { headers: { authorization: basic('erin', 'erin-pw') } })
      const bearer = { authorization: `Bearer ${(tok.json() as { token: string }).token}` }
      const bytes = Buffer.alloc(64 * 1024, 9)
      const { createHash } = await import('node:crypto')
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
      expect((await busy.inject('POST', `/v2/team/app/blobs/uploads/?digest=${digest}`, { body: bytes, headers: bearer })).status).toBe(201)
      let settled = 0
      // 20 checks under way: 2 running, 18 queued.
      const flood = Array.from({ length: 20 }, async (_, i) => {
        const r = await busy.inject('GET', '/v2/', { headers: { authorization: basic('erin', `guess-${i}`) }, remoteAddress: `100.64.0.${i + 1}` })
        settled++
        return r.status
      })
      await new Promise(resolve => setImmediate(resolve))
      const get = await busy.inject('GET', `/v2/team/app/blobs/${digest}`, { headers: bearer })
      const settledAtGet = settled
      expect(get.status).toBe(200)
      expect(get.body.equals(bytes)).toBe(true)
      expect(await Promise.all(flood)).toEqual(Array(20).fill(401))
      // Checks run two at a time: the GET was answered while most still waited. (Before, its file
      // reads queued in libuv's pool behind every check, and it came after all of them.)
      expect(settledAtGet).toBeLessThan(8)
    } finally { await busy.cleanup() }
  })
})
