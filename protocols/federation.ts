/**
 * Federation records (see ./federation.md): the membership certificate an
 * institution root signs for one of its peers. A certificate travels as a
 * `cert` envelope (./envelope.md) whose signer is the root key.
 */
import { z } from 'zod'
import { PeerIdString } from './envelope.ts'

export const ROLES = ['builder', 'requester', 'gateway'] as const
export const Role = z.enum(ROLES)
export type Role = z.infer<typeof Role>

/** Institution names: short, printable, stable (`uni-a`, `cscs.ch`). */
export const InstitutionName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'institution: letters, digits, . _ - (max 64)')

/** §2 the payload of a `cert` envelope. */
export const CertPayload = z.strictObject({
  subject: PeerIdString,
  roles: z.array(Role).min(1).max(ROLES.length).refine(r => new Set(r).size === r.length, 'roles must be unique'),
  institution: InstitutionName
})
export type CertPayload = z.infer<typeof CertPayload>

/** §3 most certificates a peer attaches to one message. */
export const MAX_CERTS_PER_MESSAGE = 4
