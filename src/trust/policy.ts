/**
 * The trust policy: which peers a node accepts, per role
 * (protocols/federation.md §4). Pure: the config comes from
 * ./policy-file.ts or a test, certificates from the message at hand.
 */
import { z } from 'zod'
import { PeerIdString } from '../../protocols/envelope.ts'
import { InstitutionName, MAX_CERTS_PER_MESSAGE, Role } from '../../protocols/federation.ts'
import { verifyCertificate } from './certificates.ts'
import { publicKeyFromPeerId } from './keys.ts'

const Ed25519PeerId = PeerIdString.refine(p => {
  try { publicKeyFromPeerId(p); return true } catch { return false }
}, 'expected the peer id of an Ed25519 key')

const Roles = z.array(Role).min(1).refine(r => new Set(r).size === r.length, 'roles must be unique')

export const RootEntry = z.strictObject({
  /** The root key's peer id. */
  key: Ed25519PeerId,
  /** When set, certificates from this root must name this institution. */
  institution: InstitutionName.optional(),
  /** Roles accepted from this root's certificates. */
  roles: Roles,
  note: z.string().max(200).optional()
})
export type RootEntry = z.infer<typeof RootEntry>

export const PeerEntry = z.strictObject({
  peer: Ed25519PeerId,
  roles: Roles,
  note: z.string().max(200).optional()
})
export type PeerEntry = z.infer<typeof PeerEntry>

/** The contents of trust.yaml. */
export const PolicyConfig = z.strictObject({
  version: z.literal(1),
  /** Accept every peer in every role. For a closed test network only. */
  open: z.boolean().default(false),
  roots: z.array(RootEntry).max(1000).default([]),
  peers: z.array(PeerEntry).max(10_000).default([]),
  /** Peers and root keys refused whatever else says. */
  deny: z.array(PeerIdString).max(10_000).default([])
})
export type PolicyConfig = z.infer<typeof PolicyConfig>

export interface TrustDecision {
  ok: boolean
  /** Why, in words for a log line or an error message. */
  reason: string
  /** The institution vouching for the peer, when a certificate did. */
  institution?: string
}

export interface TrustPolicy {
  readonly config: PolicyConfig
  /**
   * Whether `peerId` may act as `role`, given the certificates it presented
   * (unverified input: each is verified here; extra ones beyond 4 are ignored).
   */
  allows: (peerId: string, role: Role, certs?: readonly unknown[], options?: { now?: number }) => Promise<TrustDecision>
}

export interface TrustPolicyInit {
  /** This node's own peer id: trusted in every role. */
  self?: string
}

export function createTrustPolicy (config: PolicyConfig, init: TrustPolicyInit = {}): TrustPolicy {
  const deny = new Set(config.deny)
  return {
    config,
    async allows (peerId, role, certs = [], options = {}) {
      if (deny.has(peerId)) return { ok: false, reason: `${peerId} is on the deny list` }
      if (config.open) return { ok: true, reason: 'policy is open (trusts everyone)' }
      if (peerId === init.self) return { ok: true, reason: 'this node itself' }
      const peer = config.peers.find(p => p.peer === peerId && p.roles.includes(role))
      if (peer !== undefined) return { ok: true, reason: `trusted peer${peer.note === undefined ? '' : ` (${peer.note})`}` }

      const why: string[] = []
      for (const input of certs.slice(0, MAX_CERTS_PER_MESSAGE)) {
        let cert
        try {
          cert = await verifyCertificate(input, options.now)
        } catch (err) {
          why.push(`certificate refused: ${(err as Error).name}: ${(err as Error).message}`)
          continue
        }
        const { subject, roles, institution } = cert.payload
        if (subject !== peerId) { why.push(`certificate is for ${subject}`); continue }
        if (!roles.includes(role)) { why.push(`certificate from ${institution} grants ${roles.join(',')}, not ${role}`); continue }
        if (deny.has(cert.signer)) { why.push(`root ${cert.signer} is on the deny list`); continue }
        const root = config.roots.find(r => r.key === cert.signer)
        if (root === undefined) { why.push(`root ${cert.signer} (${institution}) is not trusted`); continue }
        if (!root.roles.includes(role)) { why.push(`root of ${institution} is trusted for ${root.roles.join(',')}, not ${role}`); continue }
        if (root.institution !== undefined && root.institution !== institution) { why.push(`root ${cert.signer} speaks for ${root.institution}, certificate says ${institution}`); continue }
        return { ok: true, reason: `${role} certified by ${institution}`, institution }
      }
      return { ok: false, reason: `${peerId} is not trusted as ${role}${why.length === 0 ? ' and presented no certificate' : `: ${why.join('; ')}`}` }
    }
  }
}
