/**
 * The requester: submits a signed job to the network, awards it, follows it
 * and returns verified results (protocols/job.md). It depends on three
 * seams: a JobTransport (src/jobs), a TrustPolicy (src/trust) and a
 * BlobFetcher that fetches and verifies blobs by digest.
 *
 * Terms: job, offer, award, result as in protocols/job.ts; a platform
 * result is one manifest digest, agreed on by every builder it was awarded to.
 *
 * @example
 * ```ts
 * const requester = createRequester({ key, transport, policy, blobs })
 * const tar = packContext('./app')            // ingest it, note digest and size
 * const { platforms, index } = await requester.submit({
 *   recipe: { kind: 'dockerfile', file: 'Dockerfile', text },
 *   context: { digest, size }, platforms: ['linux/amd64', 'linux/arm64'],
 *   onEvent: e => { if (e.kind === 'log') console.log(e.lines.join('\n')) }
 * })
 * ```
 */
import type { PrivateKey } from '@libp2p/interface'
import type { Envelope } from '../../protocols/envelope.ts'
import type { BasePin, JobPayload, JobState, Provenance, ResultPayload } from '../../protocols/job.ts'
import type { ReplayCache, TrustPolicy } from '../trust/index.ts'
import type { JobTransport } from '../jobs/index.ts'

export { createRequester, newJobId } from './requester.ts'
export { createRequesterJobStore } from './job-store.ts'
export { startRequesterSession } from './session.ts'
export type { RequesterSession, RequesterSessionInit } from './session.ts'
export type { JobMeta, LogLine, RequesterJobStore, StoredJob, StoredPlatform } from './job-store.ts'
export { heldBlobs, pinBases } from './bases.ts'
export type { BasePinnerInit, PinnedBases, PlatformPlan, UnpinnedBase } from './bases.ts'
export { packContext } from './context-pack.ts'
export type { PackOptions } from './context-pack.ts'
export * from './errors.ts'

export interface BlobFetcher {
  /**
   * Fetches a blob from the given peers (or any provider), verifies its
   * digest and size, and stores it. Resolves to its bytes, or to an empty
   * array when `discard` says the caller does not need them (layers).
   */
  fetch: (blob: { digest: string, size: number }, providers: string[], options?: { discard?: boolean, signal?: AbortSignal }) => Promise<Uint8Array>
}

export interface RequesterInit {
  key: PrivateKey
  transport: JobTransport
  policy: TrustPolicy
  blobs: BlobFetcher
  /** This node's membership certificates, presented with jobs, awards and cancels. */
  certs?: unknown[]
  replayCache?: ReplayCache
  /** Default 3 s. */
  offerWindowMs?: number
  /** Default 5 s; a builder silent for heartbeatMs * heartbeatMisses is replaced. */
  heartbeatMs?: number
  heartbeatMisses?: number
  /** Where jobs, platform states, logs and results are recorded (./job-store.ts), so `kiln jobs` can show them and a restart can resume. */
  journal?: RequesterJournal
  log?: (level: 'info' | 'warn', message: string) => void
}

/**
 * What the requester records as a job runs. Calls are synchronous and must
 * not throw (an implementation logs its own failures).
 */
export interface RequesterJournal {
  created: (job: Envelope<JobPayload>, meta: { verify: number }) => void
  event: (jobId: string, event: JobEvent) => void
  platformDone: (jobId: string, result: PlatformResult) => void
  platformFailed: (jobId: string, platform: string, error: Error) => void
  finished: (jobId: string, outcome: { state: 'succeeded', index?: { digest: string, size: number } } | { state: 'failed' | 'cancelled', error: string }) => void
}

/** A job to follow again after a restart: the signed job, and per platform who builds it or what it produced. */
export interface ResumeSpec {
  job: Envelope<JobPayload>
  verify: number
  platforms: Array<{ platform: string, builders: string[], done?: PlatformResult }>
  /** The values of the secrets the job lists (protocols/job.md §6), given again: the journal never held them. */
  secrets?: Readonly<Record<string, Uint8Array>>
  signal?: AbortSignal
  onEvent?: (event: JobEvent) => void
}

export interface SubmitSpec {
  recipe: Omit<JobPayload['recipe'], 'digest'>
  context: { digest: string, size: number }
  platforms: string[]
  /** The recipe's images pinned per platform (RequesterSession.pinBases); none: the recipe names no image, or the builders take them from their stores. */
  bases?: BasePin[]
  requirements?: string[]
  buildArgs?: Record<string, string>
  target?: string
  output?: string
  network?: boolean
  /**
   * Secret values by id for the recipe's `RUN --mount=type=secret`
   * (protocols/job.md §6): the job lists the ids, and each award carries the
   * values sealed to the agent awarded. Kept in memory only: never
   * journaled, so a resumed job needs them again (ResumeSpec.secrets).
   */
  secrets?: Readonly<Record<string, Uint8Array>>
  /** Send the job to these peers instead of publishing it. */
  to?: string[]
  /** Builders per platform whose digests must agree; default 1. */
  verify?: number
  jobId?: string
  /** Job validity; default 24 h. */
  ttlMs?: number
  offerWindowMs?: number
  signal?: AbortSignal
  onEvent?: (event: JobEvent) => void
}

export type JobEvent =
  | { kind: 'published', jobId: string }
  | { kind: 'offer', platform: string, builder: string, queue: number }
  | { kind: 'decline', platform: string, builder: string, reason: string }
  /** An offer (or, with `of: 'result'`, a result) this node would not accept, and why. */
  | { kind: 'refused', platform: string, builder: string, reason: string, of?: 'result' }
  | { kind: 'award', platform: string, builder: string }
  /** The builder went silent or away (no reason), or handed the platform back or sent a result that cannot count (reason); the platform is awarded again. */
  | { kind: 'lost', platform: string, builder: string, reason?: string }
  /** Nobody was left to award the platform to: the job was published again (until it expires). */
  | { kind: 'republished', platform: string }
  | { kind: 'progress', platform: string, builder: string, state: JobState, detail?: string }
  | { kind: 'log', platform: string, builder: string, seq: number, lines: string[] }
  | { kind: 'fetching' | 'result', platform: string, builder: string, digest: string }
  | { kind: 'failed', platform: string, error: string }

export interface PlatformResult {
  platform: string
  digest: string
  mediaType: string
  size: number
  /** Every builder whose result agreed (more than one with verify). */
  builders: string[]
  provenance: Provenance
  /** The signed result of the first builder, to keep as evidence. */
  result: Envelope<ResultPayload>
}

export interface SubmitResult {
  jobId: string
  job: Envelope<JobPayload>
  platforms: PlatformResult[]
  /** An OCI image index over the platforms, when there are several; store it under its digest. */
  index?: { digest: string, size: number, bytes: Uint8Array }
}

export interface Requester {
  readonly peerId: string
  /** Resolves when every platform has a verified result; rejects with the first platform error. */
  submit: (spec: SubmitSpec) => Promise<SubmitResult>
  /**
   * Looks up the agents of these platforms in the DHT (the platform keys,
   * and the keys of the required capabilities) ahead of a submit, e.g.
   * while the context is packed and the bases pinned: a job published
   * later goes to the agents found at once, with its gossip publication,
   * instead of after its own search; one still gathering offers is sent to
   * each as it is found. Resolves, with how many agents it found, when the
   * searches end (at the latest when `signal` fires; without one, after
   * 10 s). Never rejects.
   */
  discover: (spec: { platforms: string[], requirements?: string[], signal?: AbortSignal }) => Promise<number>
  /**
   * Follows a job submitted earlier (by this key, maybe by an earlier
   * process): asks each builder again for its platform (a repeated award
   * makes a builder that finished re-send its result) and then behaves as
   * submit: heartbeats, re-award when a builder is silent, verified results.
   */
  resume: (spec: ResumeSpec) => Promise<SubmitResult>
  /**
   * Sends a cancel to the builders of a job and fails its submit with
   * JobCancelledError. `builders` names them for a job this process does
   * not follow (`kiln jobs cancel` after a restart).
   */
  cancel: (jobId: string, reason: string, builders?: string[]) => Promise<void>
  /**
   * Stops listening. Jobs being followed reject with RequesterStoppedError
   * and are not cancelled: their builders go on, their journal entries stay
   * `running`, and resume() follows them again.
   */
  stop: () => void
}
