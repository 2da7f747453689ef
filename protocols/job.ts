/**
 * The job protocol (see ./job.md): the payloads of the job, offer, decline,
 * award, progress, log, heartbeat, cancel and result envelopes, the frame
 * that carries one envelope and its signer's certificates, the stream
 * protocol id and the gossipsub topics. No I/O.
 *
 * Terms:
 * - job: a signed request to build one recipe with one context for one or
 *   more platforms.
 * - offer: an agent's signed answer "I can build platform P of job J".
 * - award: the requester's signed choice of an agent for one platform.
 * - result: the agent's signed outcome for one platform, with provenance.
 */
import { z } from 'zod'
import { MAX_ENVELOPE_BYTES, PeerIdString, Millis, canonicalBytes, parseCanonical } from './envelope.ts'
import { MAX_CERTS_PER_MESSAGE } from './federation.ts'

// §1 identifiers and limits
export const JOB_PROTOCOL = '/kiln/job/1.0.0'
export const JOB_TOPIC_PREFIX = 'kiln/jobs/v1'
/** A frame is one envelope plus up to 4 certificates of about 1 KiB each. */
export const MAX_FRAME_BYTES = MAX_ENVELOPE_BYTES + 64 * 1024
export const MAX_RECIPE_BYTES = 256 * 1024
export const MAX_CONTEXT_BYTES = 8 * 1024 * 1024 * 1024
export const MAX_PLATFORMS = 16
export const MAX_REQUIREMENTS = 32
export const MAX_BUILD_ARGS = 64
export const MAX_LOG_LINES = 256
export const MAX_LOG_LINE_CHARS = 8192
export const MAX_REASON_CHARS = 1024
export const MAX_IMAGE_BLOBS = 1024
/** Pinned bases per job: up to 16 for each of the 16 platforms. */
export const MAX_BASE_PINS = 256
/** Secrets per job (§6), and their values' bytes in all. */
export const MAX_SECRETS = 32
export const MAX_SECRETS_BYTES = 128 * 1024
/** Base64url characters of sealed secrets: the values in base64url inside JSON with their ids, then base64url again. */
export const MAX_SEALED_CHARS = 320 * 1024
/** §6 the only sealing scheme of version 1. */
export const SECRETS_ALG = 'x25519-hkdf-sha256-aes-256-gcm'
// §5 timing
/** How often a builder sends a heartbeat for each job it holds. */
export const HEARTBEAT_INTERVAL_MS = 5_000
/** Heartbeats missed before a requester treats the builder as dead and re-awards. */
export const HEARTBEAT_MISSES = 3
/** Longest a single stream read or write may take. */
export const STREAM_TIMEOUT_MS = 10_000
/** Default time a requester collects offers before awarding. */
export const OFFER_WINDOW_MS = 3_000

const Digest = z.string().regex(/^sha256:[a-f0-9]{64}$/, 'expected sha256:<64 hex>')
const Id = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected 8-64 base64url characters')
const Text = (max: number): z.ZodString => z.string().max(max)

/** `os/arch[/variant]`, e.g. `linux/amd64`, `linux/arm64/v8`. */
export const Platform = z.string().regex(/^[a-z0-9]{1,16}\/[a-z0-9_]{1,16}(\/[a-z0-9]{1,16})?$/, 'expected os/arch[/variant]')

/**
 * §2 a requirement: a capability name, optionally compared with a version
 * or value: `gpu`, `cuda>=12`, `mpi=openmpi`, `avx512f`.
 */
export const REQUIREMENT_RE = /^([a-z][a-z0-9_.-]{0,31})(?:(>=|<=|=|>|<)([A-Za-z0-9_.+-]{1,64}))?$/
export const Requirement = z.string().regex(REQUIREMENT_RE, 'expected NAME or NAME(>=|<=|=|>|<)VALUE, e.g. cuda>=12')

export interface ParsedRequirement {
  name: string
  op?: '>=' | '<=' | '=' | '>' | '<'
  value?: string
}

export function parseRequirement (text: string): ParsedRequirement {
  const m = REQUIREMENT_RE.exec(text)
  if (m === null) throw new RangeError(`invalid requirement ${JSON.stringify(text)}: expected NAME or NAME>=VALUE, e.g. gpu or cuda>=12`)
  const name = m[1] as string
  return m[2] === undefined ? { name } : { name, op: m[2] as ParsedRequirement['op'] & string, value: m[3] as string }
}

/** `kiln/jobs/v1/<os>/<arch>[/<variant>]` */
export function jobTopic (platform: string): string {
  return `${JOB_TOPIC_PREFIX}/${Platform.parse(platform)}`
}

// §3 payloads
/**
 * A base pinned by the requester (§3.1): an image the recipe names for one
 * platform (a stage's `FROM` or `Bootstrap`/`From`, or `COPY --from=IMAGE`,
 * as written after substitution) and the single-platform image manifest it
 * resolved to there. The builder builds from that digest and never resolves
 * `ref` again.
 */
export const BasePin = z.strictObject({
  ref: Text(512),
  platform: Platform,
  digest: Digest,
  mediaType: Text(128),
  size: z.number().int().min(1).max(4 * 1024 * 1024)
})
export type BasePin = z.infer<typeof BasePin>

/** §6 a secret's id as `RUN --mount=type=secret,id=` names it. */
export const SecretId = z.string().regex(/^[^\x00-\x1f\x7f]{1,128}$/, 'expected 1-128 characters, no control characters')

/**
 * §6 secrets sealed to the awarded agent: an ephemeral X25519 public key,
 * a 96-bit nonce, and AES-256-GCM ciphertext with its tag appended, all
 * base64url.
 */
export const SealedSecrets = z.strictObject({
  alg: z.literal(SECRETS_ALG),
  epk: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'expected 32 bytes, base64url'),
  iv: z.string().regex(/^[A-Za-z0-9_-]{16}$/, 'expected 12 bytes, base64url'),
  ct: z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected base64url').min(22).max(MAX_SEALED_CHARS)
})
export type SealedSecrets = z.infer<typeof SealedSecrets>

export const JobPayload = z.strictObject({
  jobId: Id,
  recipe: z.strictObject({
    kind: z.enum(['dockerfile', 'apptainer']),
    /** File name inside the context, for messages only. */
    file: Text(256),
    text: Text(MAX_RECIPE_BYTES),
    digest: Digest
  }),
  /** The build context as a tar blob the builder fetches from the requester (or anyone providing it). */
  context: z.strictObject({ digest: Digest, size: z.number().int().min(0).max(MAX_CONTEXT_BYTES) }),
  platforms: z.array(Platform).min(1).max(MAX_PLATFORMS),
  requirements: z.array(Requirement).max(MAX_REQUIREMENTS).default([]),
  buildArgs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/), Text(4096)).refine(o => Object.keys(o).length <= MAX_BUILD_ARGS, 'too many build args').default({}),
  target: Text(128).optional(),
  /** `repo:tag` the requester will name the result; informative for the builder. */
  output: Text(256).optional(),
  /**
   * The build's network mode: true is `default` (every RUN gets the network
   * unless it says `RUN --network=none`), false is `none`. The agent's
   * policy decides whether it builds a job that asks (docs/building.md).
   */
  network: z.boolean().default(false),
  /** Every image the recipe names, pinned per platform (§3.1); absent in jobs from requesters that do not pin. */
  bases: z.array(BasePin).max(MAX_BASE_PINS).optional(),
  /**
   * The ids (never the values) of the secrets the requester seals into each
   * award (§6); absent when the job has none, so that older builders take it.
   */
  secrets: z.array(SecretId).min(1).max(MAX_SECRETS).refine(ids => new Set(ids).size === ids.length, 'secret ids repeat').optional()
})
export type JobPayload = z.infer<typeof JobPayload>

const JobRef = { jobId: Id, platform: Platform }

export const OfferPayload = z.strictObject({
  ...JobRef,
  /** Jobs ahead of this one in the agent's queue. */
  queue: z.number().int().min(0).max(100_000),
  /** Steps of this recipe the agent has in its step cache. */
  cacheHits: z.number().int().min(0).max(10_000),
  /** Whether the agent holds the context blob already. */
  hasContext: z.boolean(),
  /** Agent's estimate of when it would start, ms from now. */
  estimatedStartMs: z.number().int().min(0).max(7 * 24 * 3600_000),
  institution: Text(64).optional()
})
export type OfferPayload = z.infer<typeof OfferPayload>

export const DeclinePayload = z.strictObject({ ...JobRef, reason: Text(MAX_REASON_CHARS) })
export type DeclinePayload = z.infer<typeof DeclinePayload>

export const AwardPayload = z.strictObject({
  ...JobRef,
  builder: PeerIdString,
  /** The job envelope itself, so an agent that restarted or never saw the gossip can build. */
  job: z.unknown(),
  /** The job's secrets sealed to `builder` (§6); present exactly when the job lists secret ids. */
  secrets: SealedSecrets.optional()
})
export type AwardPayload = z.infer<typeof AwardPayload>

export const JOB_STATES = ['queued', 'fetching', 'building', 'exporting', 'succeeded', 'failed', 'cancelled'] as const
export const JobState = z.enum(JOB_STATES)
export type JobState = z.infer<typeof JobState>

export const ProgressPayload = z.strictObject({
  ...JobRef,
  state: JobState,
  step: z.number().int().min(0).max(100_000).optional(),
  steps: z.number().int().min(0).max(100_000).optional(),
  detail: Text(MAX_REASON_CHARS).optional()
})
export type ProgressPayload = z.infer<typeof ProgressPayload>

export const LogPayload = z.strictObject({
  ...JobRef,
  /** Sequence number of the first line, so a requester can order and de-duplicate. */
  seq: z.number().int().min(0),
  lines: z.array(Text(MAX_LOG_LINE_CHARS)).min(1).max(MAX_LOG_LINES)
})
export type LogPayload = z.infer<typeof LogPayload>

export const HeartbeatPayload = z.strictObject({ ...JobRef, state: JobState })
export type HeartbeatPayload = z.infer<typeof HeartbeatPayload>

export const CancelPayload = z.strictObject({ jobId: Id, platform: Platform.optional(), reason: Text(MAX_REASON_CHARS) })
export type CancelPayload = z.infer<typeof CancelPayload>

export const Provenance = z.strictObject({
  recipeDigest: Digest,
  contextDigest: Digest,
  baseDigests: z.array(Digest).max(64),
  builder: PeerIdString,
  platform: Platform,
  sandbox: Text(64).optional(),
  startedAt: Millis,
  finishedAt: Millis
})
export type Provenance = z.infer<typeof Provenance>

export const ResultPayload = z.discriminatedUnion('status', [
  z.strictObject({
    ...JobRef,
    status: z.literal('succeeded'),
    /** Digest and media type of the image manifest (or index) built. */
    digest: Digest,
    mediaType: Text(128),
    size: z.number().int().min(1),
    /** Every blob the image needs (config and layers), for the requester to fetch. */
    blobs: z.array(z.strictObject({ digest: Digest, size: z.number().int().min(0) })).max(MAX_IMAGE_BLOBS),
    provenance: Provenance
  }),
  z.strictObject({ ...JobRef, status: z.literal('failed'), error: Text(MAX_REASON_CHARS), provenance: Provenance.partial().optional() }),
  z.strictObject({ ...JobRef, status: z.literal('cancelled'), error: Text(MAX_REASON_CHARS) })
])
export type ResultPayload = z.infer<typeof ResultPayload>

/** Payload schema of each envelope type carried by the job protocol. */
export const JOB_MESSAGES = {
  job: JobPayload,
  offer: OfferPayload,
  decline: DeclinePayload,
  award: AwardPayload,
  progress: ProgressPayload,
  log: LogPayload,
  heartbeat: HeartbeatPayload,
  cancel: CancelPayload,
  result: ResultPayload
} as const
export type JobMessageType = keyof typeof JOB_MESSAGES

export function isJobMessageType (t: string): t is JobMessageType {
  return Object.hasOwn(JOB_MESSAGES, t)
}

// §4 frames
/** One message: a signed envelope and the certificates of its signer. */
export const JobFrame = z.strictObject({
  envelope: z.looseObject({ type: z.string() }),
  certs: z.array(z.unknown()).max(MAX_CERTS_PER_MESSAGE)
})
export type JobFrame = z.infer<typeof JobFrame>

export function encodeFrame (frame: JobFrame): Uint8Array {
  const bytes = canonicalBytes(frame)
  if (bytes.byteLength > MAX_FRAME_BYTES) throw new RangeError(`job frame of ${bytes.byteLength} bytes is over the limit of ${MAX_FRAME_BYTES}`)
  return bytes
}

/** Throws CanonicalJsonError or a zod error for anything that is not a frame. */
export function decodeFrame (bytes: Uint8Array): JobFrame {
  return JobFrame.parse(parseCanonical(bytes, MAX_FRAME_BYTES))
}
