/**
 * The agent's job side (protocols/job.md): offers for matching jobs from
 * trusted requesters, builds awarded ones through a queue, and answers with
 * signed results. Written against narrow seams: a JobTransport (network),
 * a JobBuilder (the rootless builder), a ContextSource (fetches and
 * unpacks the context tar) and a BaseSource (fetches the bases the job
 * pins), so that it is tested with fakes.
 *
 * @example
 * ```ts
 * const agent = createJobAgent({ key, transport, policy, builder, context,
 *   platforms: ['linux/amd64'], capabilities: ['gpu', 'cuda=12.4'], concurrency: 2 })
 * agent.start()
 * ```
 */
import type { PrivateKey } from '@libp2p/interface'
import type { Envelope } from '../../protocols/envelope.ts'
import type { BasePin, JobPayload, JobState, ResultPayload } from '../../protocols/job.ts'
import type { JobTransport } from '../../src/jobs/index.ts'
import type { ReplayCache, TrustPolicy } from '../../src/trust/index.ts'
import type { Metrics } from '../../src/metrics/index.ts'

export { createJobAgent } from './job-agent.ts'
export { createAgentJobStore } from './job-store.ts'
export { createRecipeBuilder, pinPlan } from './recipe-builder.ts'
export type { RecipeBuilderInit } from './recipe-builder.ts'
export { createNetworkContextSource } from './context-source.ts'
export type { NetworkContextSourceInit } from './context-source.ts'
export { createNetworkBaseSource } from './base-source.ts'
export type { NetworkBaseSourceInit } from './base-source.ts'
export { satisfies, unmet } from './match.ts'
export * from './errors.ts'

export interface BuildRequest {
  recipe: JobPayload['recipe']
  contextDir: string
  platform: string
  buildArgs: Record<string, string>
  target?: string
  network: boolean
  /** The job's pinned bases of this platform (protocols/job.md §3.1), already in the store: built from their digests. */
  bases?: BasePin[]
  /** The job's secrets by id, opened from the award (protocols/job.md §6), for RUN --mount=type=secret; never logged or stored. */
  secrets?: Readonly<Record<string, Uint8Array>>
  /** The requester's peer id: its RUN cache mounts are its own (BuildOptions.cacheScope), never another requester's. */
  requester?: string
}

export interface BuildOutput {
  /** The image manifest built, and its media type and size. */
  digest: `sha256:${string}`
  mediaType: string
  size: number
  /** Config and layers, stored locally and provided to the network. */
  blobs: Array<{ digest: `sha256:${string}`, size: number }>
  baseDigests: Array<`sha256:${string}`>
  sandbox?: string
  /** Steps taken from the step cache, and steps in all; reported in the final `exporting` progress. */
  cachedSteps?: number
  steps?: number
}

export interface JobBuilder {
  /** Builds one platform; rejects when the build fails or the signal aborts. */
  build: (request: BuildRequest, options: {
    signal: AbortSignal
    onLog: (line: string) => void
    onProgress: (step: number, steps: number, detail?: string) => void
  }) => Promise<BuildOutput>
}

export interface ContextSource {
  /** Fetches the context blob (from the requester or any provider), verifies it and unpacks it into a fresh dir. */
  open: (context: { digest: string, size: number }, requester: string, signal: AbortSignal) => Promise<{ dir: string, release: () => Promise<void> }>
}

export interface BaseSource {
  /**
   * Brings the pinned bases of one platform into the store by digest, whole
   * (manifest, config, layers), from the requester or any provider (or a
   * registry, when allowed), and keeps them from `kiln gc` until release().
   * Throws BaseUnavailableError naming the ref and digest of the first base
   * it cannot get.
   */
  open: (bases: BasePin[], requester: string, signal: AbortSignal) => Promise<{ release: () => void }>
}

export interface JobAgentInit {
  key: PrivateKey
  transport: JobTransport
  policy: TrustPolicy
  builder: JobBuilder
  context: ContextSource
  /** Fetches the bases a job pins; absent: pinned bases must already be in the store. */
  bases?: BaseSource
  platforms: string[]
  capabilities?: string[]
  /** Builds run at once; default 1. */
  concurrency?: number
  allowNetwork?: boolean
  /**
   * Why this agent builds no job of another peer, when it does not (its
   * sandbox cannot isolate build steps from the agent: src/builder/sandbox's
   * othersRefusal). Such jobs and awards are declined with this reason;
   * jobs signed by this node's own key are still built.
   */
  othersRefused?: string
  institution?: string
  /** This node's membership certificates, presented with every message. */
  certs?: unknown[]
  /**
   * Decline gossip jobs of untrusted requesters for the platforms this agent
   * builds (rate-limited); default true. Direct jobs are always answered.
   */
  declineUntrusted?: boolean
  replayCache?: ReplayCache
  /** Default 5 s (protocols/job.md §5). */
  heartbeatMs?: number
  /** Where accepted jobs are recorded (./job-store.ts), so that a restart hands them back instead of losing them. */
  journal?: AgentJournal
  cacheHits?: (job: JobPayload) => Promise<number>
  hasBlob?: (digest: string) => Promise<boolean>
  log?: (level: 'info' | 'warn', message: string) => void
  /** Jobs by state, queue length and build durations (kiln_jobs*, kiln_queue_length, kiln_build_duration_seconds). */
  metrics?: Metrics
}

/** What an agent may change while it runs (SIGHUP, agent/lifecycle.ts); absent fields stay. */
export interface JobAgentSettings {
  policy?: TrustPolicy
  concurrency?: number
  allowNetwork?: boolean
}

export interface JobAgentStopOptions {
  /**
   * Let running builds finish for up to this long before they are cancelled
   * and handed back; default 0 (cancel at once). Queued jobs are handed back
   * at once either way, and no new job or award is taken from the start.
   */
  drainMs?: number
  /** Ends the drain early (a second SIGTERM). */
  signal?: AbortSignal
}

export interface AgentJobStatus {
  jobId: string
  platform: string
  requester: string
  state: JobState
  digest?: string
  error?: string
}

/** One accepted (awarded) job platform as the agent recorded it. */
export interface AgentJobRecord {
  jobId: string
  platform: string
  requester: string
  job: Envelope<JobPayload>
  state: JobState
  result?: ResultPayload
  acceptedAt: number
  updatedAt: number
}

/**
 * What the agent records about awarded jobs. Synchronous; implementations
 * must not throw.
 */
export interface AgentJournal {
  accepted: (record: { jobId: string, platform: string, requester: string, job: Envelope<JobPayload> }) => void
  state: (jobId: string, platform: string, state: JobState) => void
  finished: (jobId: string, platform: string, result: ResultPayload) => void
  get: (jobId: string, platform: string) => AgentJobRecord | undefined
  /** Records not finished: what a previous run of the agent held when it stopped. */
  unfinished: () => AgentJobRecord[]
  /** Most recent first. */
  list: (limit?: number) => AgentJobRecord[]
}

export interface JobAgent {
  readonly peerId: string
  /**
   * Starts listening. Jobs a previous run left unfinished (journal) are
   * finished as failed ("agent restarted") and the result is sent to their
   * requester, best effort; a repeated award re-sends it.
   */
  start: () => void
  /** Stops listening, hands queued jobs back, and cancels (hands back) running builds, after `drainMs` if given. */
  stop: (options?: JobAgentStopOptions) => Promise<void>
  /** Applies new settings from now on: the policy to the next job or award, concurrency to the queue, allowNetwork to the next match. */
  configure: (settings: JobAgentSettings) => void
  status: () => AgentJobStatus[]
  /** The newest lines (at most LOG_TAIL_LINES) of a job platform's build log, for the status page; empty when none is kept. */
  logTail: (jobId: string, platform: string) => string[]
}
