/**
 * The tag record: "in repository R, tag T names manifest D", signed by
 * whoever pushed or built it and stored in the DHT, so that any gateway can
 * resolve `R:T` without a central registry (see ./tag.md, the normative text).
 *
 * This module fixes the bytes and the keys: the payload schema (carried in a
 * `tag` envelope, ./envelope.md), the DHT value that wraps it with the
 * signer's certificates, the DHT key of one signer's record for a name and
 * the discovery key under which signers announce that they hold one. It
 * does no I/O and holds no keys; signing, checking and resolving live in
 * src/p2p/tag-records.ts.
 *
 * Terms:
 * - name: `repository:tag`, e.g. `hpc/gromacs:2024`.
 * - signer: the peer whose key signed the envelope; each signer has its own
 *   record per name, and of its records the highest seq wins (§3).
 * - resolver: a node choosing among signers' records for a name: only
 *   signers its trust policy allows in the `builder` or `gateway` role count,
 *   and of those the most recently issued record wins (§5).
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { discoveryCid } from './capability.ts'
import { PeerIdString, signedRecordCodec } from './envelope.ts'

/** §2 DHT namespace: records live under `/kiln-tag/<name hash>/<signer>`. */
export const TAG_NAMESPACE = 'kiln-tag'
/** §2 prefix of the discovery string provided by every signer of a name. */
export const TAG_KEY_PREFIX = 'kiln/tag/'
/** §2 largest DHT value (envelope plus certificates). */
export const TAG_RECORD_MAX_BYTES = 64 * 1024
/** §2 most certificates carried beside the envelope. */
export const TAG_MAX_CERTIFICATES = 4
/** §4 validity a publisher gives its record unless told otherwise (the envelope type allows up to 5 years). */
export const TAG_DEFAULT_TTL_MS = 90 * 24 * 60 * 60 * 1000
/** §5 roles that make a signer's tag records count for a resolver. */
export const TAG_SIGNER_ROLES = ['builder', 'gateway'] as const

/** The OCI distribution spec's repository name and tag grammars. */
export const REPOSITORY_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/

/** §1 the payload of a `tag` envelope. */
export const TagPayloadSchema = z.strictObject({
  repository: z.string().max(255).regex(REPOSITORY_RE),
  tag: z.string().regex(TAG_RE),
  digest: z.string().regex(/^sha256:[a-f0-9]{64}$/),
  mediaType: z.string().min(1).max(255),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
})
export type TagPayload = z.infer<typeof TagPayloadSchema>

/** §2 the DHT value: canonical JSON of the envelope and the signer's certificates (both checked by the reader). */
const tagRecordCodec = signedRecordCodec('tag', { maxBytes: TAG_RECORD_MAX_BYTES, maxCertificates: TAG_MAX_CERTIFICATES })
export const TagRecordValueSchema = tagRecordCodec.schema
export type TagRecordValue = z.infer<typeof TagRecordValueSchema>
export const encodeTagRecordValue = tagRecordCodec.encode
/** Parses the wire form (size, canonical form, shape); the envelope inside is not verified here. */
export const decodeTagRecordValue = tagRecordCodec.decode

/** §2 hex sha256 of `repository:tag`: the name part of the DHT key. */
export function tagNameHash (repository: string, tag: string): string {
  return createHash('sha256').update(`${repository}:${tag}`).digest('hex')
}

/** §2 the DHT key of one signer's record for a name: UTF-8 `/kiln-tag/<name hash>/<signer>`. */
export function tagDhtKey (repository: string, tag: string, signer: string): Uint8Array {
  return new TextEncoder().encode(`/${TAG_NAMESPACE}/${tagNameHash(repository, tag)}/${signer}`)
}

/** The name hash and signer a DHT key names, or undefined if it is not a tag key. */
export function parseTagDhtKey (key: Uint8Array): { nameHash: string, signer: string } | undefined {
  const m = /^\/kiln-tag\/([a-f0-9]{64})\/([^/]+)$/.exec(new TextDecoder().decode(key))
  if (m === null || !PeerIdString.safeParse(m[2]).success) return undefined
  return { nameHash: m[1] as string, signer: m[2] as string }
}

/** §2 the discovery key: CIDv1(raw, sha2-256) of `kiln/tag/<repository>:<tag>`, provided by every signer of the name. */
export function tagDiscoveryCid (repository: string, tag: string): ReturnType<typeof discoveryCid> {
  return discoveryCid(`${TAG_KEY_PREFIX}${repository}:${tag}`)
}
