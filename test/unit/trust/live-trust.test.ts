/**
 * Live trust (src/trust/live-trust.ts): `kiln trust add-peer|add-root|add-cert`
 * reach a running node at its next decision, SIGHUP's reload replaces
 * kiln.yaml's section, and a broken trust.yaml keeps the policy in force.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { addPeer, initRoot, issueCertificate, loadLiveTrust, loadRoot, policyPath, saveCertificate } from '../../../src/trust/index.ts'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'kiln-live-trust-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

const newPeer = async (): Promise<string> => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

describe('live trust', () => {
  it('sees a peer added to trust.yaml at the next decision, without a reload', async () => {
    const self = await newPeer()
    const requester = await newPeer()
    const reloads: number[] = []
    const trust = await loadLiveTrust(dir, { self, onReload: s => { reloads.push(s.peers) } })
    expect((await trust.policy.allows(requester, 'requester')).ok).toBe(false)
    expect(reloads).toEqual([])
    await addPeer(dir, { peer: requester, roles: ['requester'] })
    expect(await trust.policy.allows(requester, 'requester')).toMatchObject({ ok: true, reason: 'trusted peer' })
    expect(trust.policy.config.peers.map(p => p.peer)).toEqual([requester])
    expect(reloads).toEqual([1])
    // Unchanged files are not read again.
    await trust.policy.allows(requester, 'requester')
    expect(reloads).toEqual([1])
  })

  it('replaces the contents of its certs array when a certificate is added', async () => {
    const node = await generateKeyPair('Ed25519')
    const self = peerIdFromPrivateKey(node).toString()
    const trust = await loadLiveTrust(dir, { self })
    const certs = trust.certs
    expect(certs).toEqual([])
    const site = join(dir, 'site')
    await initRoot(site, 'uni-a')
    const root = await loadRoot(site)
    await saveCertificate(dir, await issueCertificate(root.key, { subject: self, roles: ['builder'], institution: 'uni-a' }))
    await trust.refresh()
    expect(trust.certs).toBe(certs)
    expect(certs).toEqual([expect.objectContaining({ type: 'cert', payload: expect.objectContaining({ subject: self, institution: 'uni-a' }) })])
  })

  it('keeps the policy in force when trust.yaml breaks, and reports it once', async () => {
    const self = await newPeer()
    const peer = await newPeer()
    await addPeer(dir, { peer, roles: ['builder'] })
    const errors: string[] = []
    const trust = await loadLiveTrust(dir, { self, onError: err => { errors.push(err.name) } })
    await writeFile(policyPath(dir), 'version: 1\npeers: [ {peer: broken\n')
    expect((await trust.policy.allows(peer, 'builder')).ok).toBe(true)
    expect((await trust.policy.allows(peer, 'builder')).ok).toBe(true)
    expect(errors).toEqual(['PolicyFileError'])
    await expect(trust.reload()).rejects.toMatchObject({ name: 'PolicyFileError' })
  })

  it('reload(config) puts kiln.yaml\'s trust section in force (SIGHUP)', async () => {
    const self = await newPeer()
    const peer = await newPeer()
    const trust = await loadLiveTrust(dir, { self })
    expect((await trust.policy.allows(peer, 'gateway')).ok).toBe(false)
    await trust.reload({ peers: [{ peer, roles: ['gateway'] }] })
    expect((await trust.policy.allows(peer, 'gateway')).ok).toBe(true)
    await expect(trust.reload({ peers: [{ peer: 'not-a-peer', roles: ['gateway'] }] })).rejects.toMatchObject({ name: 'PolicyFileError' })
    expect((await trust.policy.allows(peer, 'gateway')).ok).toBe(true)
  })
})
