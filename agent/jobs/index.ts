/**
 * The agent's job side (protocols/job.md): offers for matching jobs from
 * trusted requesters, builds awarded ones through a queue, and answers with
 * signed results. Written against narrow seams: a JobTransport (network),
 * a JobBuilder (the rootless builder) and a ContextSource (fetches and
 * unpacks the context tar), so that it is tested with fakes.
 *
 * @example
 * ```ts
 * const agent = createJobAgent({ key, transport, policy, builder, context,
 *   platforms: ['linux/amd64'], capabilities: ['gpu', 'cuda=12.4'], concurrency: 2 })
 * agent.start()
 * ```
 */
import type { PrivateKey } from '@libp2p/interface'
import type { JobPayload, JobState } from '../../protocols/job.ts'
import type { JobTransport } from '../../src/requester/transport.ts'
import type { ReplayCache, TrustPolicy } from '../../src/trust/index.ts'

export { createJobAgent } from './job-agent.ts'
export { satisfies, unmet } from './match.ts'
export * from './errors.ts'

export interface BuildRequest {
  recipe: JobPayload['recipe']
  contextDir: string
  platform: string
  buildArgs: Record<string, string>
  target?: string
  network: boolean
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

export interface JobAgentInit {
  key: PrivateKey
  transport: JobTransport
  policy: TrustPolicy
  builder: JobBuilder
  context: ContextSource
  platforms: string[]
  capabilities?: string[]
  /** Builds run at once; default 1. */
  concurrency?: number
  allowNetwork?: boolean
  institution?: string
  /** This node's membership certificates, presented with every message. */
  certs?: unknown[]
  /** Send a decline for gossip jobs too (direct jobs are always answered). */
  declineUntrusted?: boolean
  replayCache?: ReplayCache
  /** Default 5 s (protocols/job.md §5). */
  heartbeatMs?: number
  cacheHits?: (job: JobPayload) => Promise<number>
  hasBlob?: (digest: string) => Promise<boolean>
  log?: (level: 'info' | 'warn', message: string) => void
}

export interface AgentJobStatus {
  jobId: string
  platform: string
  requester: string
  state: JobState
  digest?: string
  error?: string
}

export interface JobAgent {
  readonly peerId: string
  start: () => void
  /** Cancels running builds and stops listening. */
  stop: () => Promise<void>
  status: () => AgentJobStatus[]
}
