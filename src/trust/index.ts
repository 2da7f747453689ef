/**
 * Trust: signed envelopes, replay protection, federation certificates and
 * the trust policy that decides whom a node builds for and whose results it
 * accepts.
 *
 * Terms:
 * - envelope: a record signed by a peer key (protocols/envelope.md).
 *   Verifying it proves who signed it, nothing more.
 * - root: an institution's own Ed25519 key, kept offline-ish in a 0600 file,
 *   named by its peer id. It signs membership certificates.
 * - certificate: a `cert` envelope from a root saying "peer P is a
 *   builder/requester/gateway of institution I until T".
 * - policy: the roots and single peers a node accepts, per role
 *   (`<dataDir>/trust/trust.yaml`, see docs/federation.md).
 * - live trust: a running node's policy and certificates, read again when
 *   their files change (./live-trust.ts).
 *
 * @example
 * ```ts
 * const job = await signEnvelope(nodeKey, 'job', payload, { ttlMs: 3600_000 })
 * const seen = await verifyEnvelope(bytes, { type: 'job', replayCache, payload: JobPayload })
 * const policy = await loadTrustPolicy(dataDir, { self: myPeerId })
 * const { ok, reason } = await policy.allows(seen.signer, 'requester', certs)
 * ```
 */
export * from './errors.ts'
export { signEnvelope, verifyEnvelope } from './envelope.ts'
export type { SignOptions, VerifyOptions } from './envelope.ts'
export { createDbReplayCache, createMemoryReplayCache } from './replay-cache.ts'
export type { ReplayCache, ReplayCacheInit, ReplayEntry, ReplayVerdict } from './replay-cache.ts'
export { generateEd25519, peerIdOf, publicKeyFromPeerId, readKeyFile, writeKeyFile } from './keys.ts'
export type { Ed25519PrivateKey, Ed25519PublicKey } from './keys.ts'
export type { Envelope, EnvelopeType } from '../../protocols/envelope.ts'
export { issueCertificate, loadCertificates, saveCertificate, verifyCertificate } from './certificates.ts'
export type { Certificate, IssueOptions } from './certificates.ts'
export { PeerEntry, PolicyConfig, RootEntry, createTrustPolicy } from './policy.ts'
export type { TrustDecision, TrustPolicy, TrustPolicyInit } from './policy.ts'
export { addPeer, addRoot, loadTrustPolicy, policyPath, readPolicyFile, writePolicyFile } from './policy-file.ts'
export type { ConfigTrust } from './policy-file.ts'
export { loadLiveTrust } from './live-trust.ts'
export type { LiveTrust, LiveTrustInit } from './live-trust.ts'
export { RootPublicFile, initRoot, loadRoot, readRootPublicFile, rootKeyPath, rootPublicPath } from './root.ts'
export type { InitRootResult } from './root.ts'
export { parseDuration } from '../util/duration.ts'
export { ROLES, Role } from '../../protocols/federation.ts'
export type { CertPayload } from '../../protocols/federation.ts'
