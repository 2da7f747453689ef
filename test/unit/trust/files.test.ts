import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  addPeer, addRoot, initRoot, issueCertificate, loadCertificates, loadRoot, loadTrustPolicy, parseDuration,
  policyPath, readKeyFile, readPolicyFile, readRootPublicFile, saveCertificate, writeKeyFile
} from '../../../src/trust/index.ts'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'kiln-trust-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

describe('trust files', () => {
  it('initRoot writes a 0600 key, a public file, and trusts the root in the own policy', async () => {
    const r = await initRoot(dir, 'uni-a')
    expect((await stat(r.keyPath)).mode & 0o777).toBe(0o600)
    expect(await readRootPublicFile(r.publicPath)).toEqual({ kind: 'kiln-trust-root', key: r.key, institution: 'uni-a' })
    const loaded = await loadRoot(dir)
    expect(peerIdFromPrivateKey(loaded.key).toString()).toBe(r.key)
    expect((await readPolicyFile(dir)).roots).toEqual([{ key: r.key, institution: 'uni-a', roles: ['builder', 'requester', 'gateway'], note: 'our own root' }])
    await expect(initRoot(dir, 'uni-a')).rejects.toMatchObject({ name: 'KeyFileError' })
  })

  it('refuses key files readable by others', async () => {
    const path = join(dir, 'k')
    await writeKeyFile(path, await generateKeyPair('Ed25519'))
    await chmod(path, 0o644)
    await expect(readKeyFile(path)).rejects.toMatchObject({ name: 'KeyFileError' })
    await expect(readKeyFile(join(dir, 'missing'))).rejects.toMatchObject({ name: 'KeyFileError' })
  })

  it('a certificate issued by one institution makes its peer trusted at another', async () => {
    const siteA = join(dir, 'a')
    const siteB = join(dir, 'b')
    const rootA = await initRoot(siteA, 'uni-a')
    const builder = await generateKeyPair('Ed25519')
    const builderId = peerIdFromPrivateKey(builder).toString()
    const cert = await issueCertificate((await loadRoot(siteA)).key, { subject: builderId, roles: ['builder'], institution: 'uni-a' })
    const builderDir = join(dir, 'builder')
    await saveCertificate(builderDir, JSON.parse(JSON.stringify(cert)))
    const presented = await loadCertificates(builderDir, builderId)
    expect(presented).toHaveLength(1)

    expect((await (await loadTrustPolicy(siteB)).allows(builderId, 'builder', presented)).ok).toBe(false)
    const pub = await readRootPublicFile(rootA.publicPath)
    await addRoot(siteB, { key: pub.key, institution: pub.institution, roles: ['builder'] })
    expect((await (await loadTrustPolicy(siteB)).allows(builderId, 'builder', presented)).ok).toBe(true)
    expect((await (await loadTrustPolicy(siteB)).allows(builderId, 'requester', presented)).ok).toBe(false)
  })

  it('merges repeated additions and refuses a malformed policy file', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    await addPeer(dir, { peer, roles: ['builder'] })
    await addPeer(dir, { peer, roles: ['requester', 'builder'] })
    expect((await readPolicyFile(dir)).peers).toEqual([{ peer, roles: ['builder', 'requester'] }])
    expect((await stat(policyPath(dir))).mode & 0o777).toBe(0o600)
    expect(await readFile(policyPath(dir), 'utf8')).toMatch(/^# kiln trust policy/)
    await writeFile(policyPath(dir), 'version: 1\nroots: [{ key: nope, roles: [builder] }]\n')
    await expect(readPolicyFile(dir)).rejects.toMatchObject({ name: 'PolicyFileError' })
    await writeFile(policyPath(dir), 'version: 1\nversion: 1\n')
    await expect(readPolicyFile(dir)).rejects.toMatchObject({ name: 'PolicyFileError' })
  })

  it('skips stored certificates that no longer verify', async () => {
    const root = await generateKeyPair('Ed25519')
    const subject = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const { path } = await saveCertificate(dir, await issueCertificate(root, { subject, roles: ['builder'], institution: 'x' }))
    await writeFile(path, (await readFile(path, 'utf8')).replace('"builder"', '"gateway"'))
    const skipped: string[] = []
    expect(await loadCertificates(dir, subject, f => skipped.push(f))).toEqual([])
    expect(skipped).toHaveLength(1)
  })

  it('parses durations', () => {
    expect(parseDuration('30d')).toBe(30 * 86_400_000)
    expect(parseDuration('90m')).toBe(5_400_000)
    expect(parseDuration('1500')).toBe(1500)
    expect(() => parseDuration('3 weeks')).toThrow(RangeError)
  })
})
