import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { PolicyConfig, createTrustPolicy, issueCertificate, signEnvelope } from '../../../src/trust/index.ts'
import type { Ed25519PrivateKey } from '../../../src/trust/index.ts'

let rootA: Ed25519PrivateKey
let rootB: Ed25519PrivateKey
let builder: Ed25519PrivateKey
let stranger: Ed25519PrivateKey
const id = (k: Ed25519PrivateKey): string => peerIdFromPrivateKey(k).toString()

beforeAll(async () => {
  rootA = await generateKeyPair('Ed25519')
  rootB = await generateKeyPair('Ed25519')
  builder = await generateKeyPair('Ed25519')
  stranger = await generateKeyPair('Ed25519')
})

const config = (extra: Partial<PolicyConfig> = {}): PolicyConfig => PolicyConfig.parse({
  version: 1,
  roots: [{ key: id(rootA), institution: 'uni-a', roles: ['builder'] }],
  ...extra
})

describe('TrustPolicy.allows', () => {
  it('accepts a peer certified by a trusted root for the role', async () => {
    const cert = await issueCertificate(rootA, { subject: id(builder), roles: ['builder'], institution: 'uni-a' })
    const d = await createTrustPolicy(config()).allows(id(builder), 'builder', [cert])
    expect(d).toMatchObject({ ok: true, institution: 'uni-a' })
  })

  it('refuses a peer without certificates, and says so', async () => {
    const d = await createTrustPolicy(config()).allows(id(builder), 'builder')
    expect(d.ok).toBe(false)
    expect(d.reason).toMatch(/no certificate/)
  })

  it('refuses a role the certificate does not grant or the root is not trusted for', async () => {
    const cert = await issueCertificate(rootA, { subject: id(builder), roles: ['builder', 'requester'], institution: 'uni-a' })
    const d = await createTrustPolicy(config()).allows(id(builder), 'requester', [cert])
    expect(d).toMatchObject({ ok: false })
    expect(d.reason).toMatch(/trusted for builder, not requester/)
    const onlyBuilder = await issueCertificate(rootA, { subject: id(builder), roles: ['builder'], institution: 'uni-a' })
    expect((await createTrustPolicy(config()).allows(id(builder), 'gateway', [onlyBuilder])).reason).toMatch(/not gateway/)
  })

  it('refuses a certificate for another subject, from an unknown root, or naming another institution', async () => {
    const policy = createTrustPolicy(config())
    const forOther = await issueCertificate(rootA, { subject: id(stranger), roles: ['builder'], institution: 'uni-a' })
    expect((await policy.allows(id(builder), 'builder', [forOther])).ok).toBe(false)
    const fromB = await issueCertificate(rootB, { subject: id(builder), roles: ['builder'], institution: 'uni-a' })
    expect((await policy.allows(id(builder), 'builder', [fromB])).reason).toMatch(/is not trusted/)
    const wrongInst = await issueCertificate(rootA, { subject: id(builder), roles: ['builder'], institution: 'uni-b' })
    expect((await policy.allows(id(builder), 'builder', [wrongInst])).reason).toMatch(/speaks for uni-a/)
  })

  it('refuses expired, forged and non-certificate envelopes', async () => {
    const policy = createTrustPolicy(config())
    const cert = await issueCertificate(rootA, { subject: id(builder), roles: ['builder'], institution: 'uni-a', ttlMs: 1000, now: 1_000_000 })
    expect((await policy.allows(id(builder), 'builder', [cert])).reason).toMatch(/ExpiredError/)
    const good = await issueCertificate(rootA, { subject: id(builder), roles: ['builder'], institution: 'uni-a' })
    const forged = { ...good, payload: { ...good.payload, subject: id(stranger) } }
    expect((await policy.allows(id(stranger), 'builder', [forged])).reason).toMatch(/BadSignatureError/)
    const notCert = await signEnvelope(rootA, 'job', { subject: id(builder), roles: ['builder'], institution: 'uni-a' })
    expect((await policy.allows(id(builder), 'builder', [notCert])).reason).toMatch(/WrongTypeError/)
    expect((await policy.allows(id(builder), 'builder', ['garbage', 42])).ok).toBe(false)
  })

  it('trusts single peers per role, itself, everyone when open, and never a denied peer or root', async () => {
    const withPeer = createTrustPolicy(config({ peers: [{ peer: id(stranger), roles: ['requester'] }] }))
    expect((await withPeer.allows(id(stranger), 'requester')).ok).toBe(true)
    expect((await withPeer.allows(id(stranger), 'builder')).ok).toBe(false)
    expect((await createTrustPolicy(config(), { self: id(stranger) }).allows(id(stranger), 'builder')).ok).toBe(true)
    expect((await createTrustPolicy(config({ open: true })).allows(id(stranger), 'gateway')).ok).toBe(true)
    expect((await createTrustPolicy(config({ open: true, deny: [id(stranger)] })).allows(id(stranger), 'gateway')).ok).toBe(false)
    const cert = await issueCertificate(rootA, { subject: id(builder), roles: ['builder'], institution: 'uni-a' })
    expect((await createTrustPolicy(config({ deny: [id(rootA)] })).allows(id(builder), 'builder', [cert])).reason).toMatch(/deny list/)
  })

  it('refuses a policy naming a key that is not Ed25519 or a duplicated role', () => {
    expect(PolicyConfig.safeParse({ version: 1, roots: [{ key: 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N', roles: ['builder'] }] }).success).toBe(false)
    expect(PolicyConfig.safeParse({ version: 1, peers: [{ peer: id(builder), roles: ['builder', 'builder'] }] }).success).toBe(false)
    expect(PolicyConfig.safeParse({ version: 2 }).success).toBe(false)
  })
})
