/**
 * The agent's job side: hears jobs (gossip or direct), offers for the ones
 * it matches and whose requester it trusts, runs awarded jobs through a
 * queue with a concurrency limit, streams progress, logs and heartbeats,
 * and returns a signed result with provenance (protocols/job.md §5).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { PrivateKey } from '@libp2p/interface'
import type { Envelope } from '../../protocols/envelope.ts'
import { HEARTBEAT_INTERVAL_MS, JOB_STATES, MAX_LOG_LINES, MAX_REASON_CHARS, MAX_LOG_LINE_CHARS, jobTopic } from '../../protocols/job.ts'
import type { JobPayload, JobState, Provenance, ResultPayload, SealedSecrets } from '../../protocols/job.ts'
import { SecretsError, isHandBack, openFrame, openSecrets, seal } from '../../src/jobs/index.ts'
import type { FrameSource, JobTransport, OpenedFrame } from '../../src/jobs/index.ts'
import { createMemoryReplayCache, peerIdOf, verifyEnvelope } from '../../src/trust/index.ts'
import type { ReplayCache } from '../../src/trust/index.ts'
import { JobPayload as JobPayloadSchema } from '../../protocols/job.ts'
import { sha256Digest } from '../../src/content/digest.ts'
import { unmet } from './match.ts'
import type { AgentJobStatus, JobAgent, JobAgentInit } from './index.ts'
import { ReplayError } from '../../src/trust/errors.ts'
import { isErrorOf } from '../../src/util/error-class.ts'

/** Declines to gossip jobs of untrusted requesters: at most this many at once, refilled at DECLINES_PER_SECOND. */
const DECLINE_BURST = 20
const DECLINES_PER_SECOND = 2
/** How long stop() waits for the hand-back results to be sent. */
const STOP_SEND_WAIT_MS = 3_000

/** Waits before the second, third and fourth try of a frame whose send failed (see sendQuiet). */
export const SEND_RETRY_DELAYS_MS = [500, 1_500, 3_000]

/** Finished jobs status() remembers (the journal keeps them all). */
const MAX_FINISHED_KEPT = 1000

/** Log lines logTail() keeps per job platform, and finished jobs whose tail it keeps. */
export const LOG_TAIL_LINES = 50
const MAX_TAILS_KEPT = 100

interface Running {
  job: Envelope<JobPayload>
  platform: string
  requester: string
  state: JobState
  abort: AbortController
  /** The job's secrets opened from the award (protocols/job.md §6): in memory only, wiped when the run ends. */
  secrets?: Record<string, Uint8Array>
  seq: number
  pending: string[]
  /** The newest log lines, for logTail(). */
  tail: string[]
  flushing?: Promise<void>
}

export function createJobAgent (init: JobAgentInit): JobAgent {
  const key: PrivateKey = init.key
  const self = peerIdOf(key)
  const t: JobTransport = init.transport
  const replay: ReplayCache = init.replayCache ?? createMemoryReplayCache()
  const heartbeatMs = init.heartbeatMs ?? HEARTBEAT_INTERVAL_MS
  let concurrency = init.concurrency ?? 1
  let allowNetwork = init.allowNetwork === true
  let policy = init.policy
  const metrics = init.metrics
  const certs = init.certs ?? []
  const log = init.log ?? (() => {})
  const queue: Running[] = []
  const active = new Map<string, Running>()
  const finished: AgentJobStatus[] = []
  const tails = new Map<string, string[]>()
  let off: (() => void) | undefined
  let timer: NodeJS.Timeout | undefined

  const keyOf = (jobId: string, platform: string): string => `${jobId}/${platform}`

  const send = async (to: string, type: 'offer' | 'decline' | 'progress' | 'log' | 'heartbeat' | 'result', payload: never): Promise<void> => {
    const { frame } = await seal(key, type, payload, { certs })
    await t.send(to, [frame])
  }
  const sending = new Set<Promise<void>>()
  const stopped = new AbortController()
  /**
   * Sends a frame in the background. A requester that just started may not
   * be reachable yet: an agent that heard its job by gossip knows only the
   * address of its previous run, and the requester dials this agent a moment
   * later. So every frame but a heartbeat (the next one follows anyway) is
   * tried again after SEND_RETRY_DELAYS_MS, until the agent stops.
   */
  const sendQuiet = (to: string, type: Parameters<typeof send>[1], payload: unknown): void => {
    const delays = type === 'heartbeat' ? [] : SEND_RETRY_DELAYS_MS
    const attempt = async (): Promise<void> => {
      for (let i = 0; ; i++) {
        try {
          await send(to, type, payload as never)
          return
        } catch (err) {
          const delay = delays[i]
          if (delay === undefined || stopped.signal.aborted) throw err
          log('info', `sending ${type} to ${to} failed (${(err as Error).message}); trying again in ${delay} ms`)
          await sleep(delay, undefined, { signal: stopped.signal }).catch(() => { throw err })
        }
      }
    }
    const p: Promise<void> = attempt()
      .catch(err => { log('warn', `sending ${type} to ${to} failed: ${(err as Error).message}`) })
      .finally(() => { sending.delete(p) })
    sending.add(p)
  }

  /** Of the job's platforms, those this agent builds; and why it will not offer for them, if it will not. */
  const matching = (job: JobPayload, requester: string): { platforms: string[], reason?: string } => {
    const platforms = job.platforms.filter(p => init.platforms.includes(p))
    if (platforms.length === 0) return { platforms, reason: `builds ${init.platforms.join(', ')} only` }
    if (init.othersRefused !== undefined && requester !== self) return { platforms, reason: init.othersRefused }
    const missing = unmet(job.requirements, init.capabilities ?? [])
    if (missing.length > 0) return { platforms, reason: `lacks ${missing.join(', ')}` }
    if (job.network && !allowNetwork) return { platforms, reason: 'the job asks for the network (--network=default) and this agent does not give RUN steps the network (agent.allowNetwork in its kiln.yaml)' }
    if (job.secrets !== undefined && key.type !== 'Ed25519') return { platforms, reason: `the job has secrets, which are sealed to Ed25519 keys, and this agent's key is ${key.type}` }
    return { platforms }
  }

  // Declines to gossip jobs of untrusted requesters cost a dial each: a budget keeps a flood of them from making this agent dial out.
  let declineTokens = DECLINE_BURST
  let declineRefilled = Date.now()
  const mayDecline = (): boolean => {
    const now = Date.now()
    declineTokens = Math.min(DECLINE_BURST, declineTokens + (now - declineRefilled) * DECLINES_PER_SECOND / 1000)
    declineRefilled = now
    if (declineTokens < 1) return false
    declineTokens--
    return true
  }

  /**
   * Offers for the platforms it matches. Declines (protocols/job.md §3):
   * every platform of a direct job it will not offer for; for a gossip job,
   * the platforms it builds when it will not offer (requester not trusted,
   * requirement not met, network), so a requester learns why nobody builds.
   */
  const onJob = async (m: Extract<OpenedFrame, { type: 'job' }>, via: FrameSource): Promise<void> => {
    const env = m.envelope
    const job = env.payload
    const { platforms, reason } = matching(job, env.signer)
    const decline = (which: string[], why: string): void => {
      for (const platform of which) sendQuiet(env.signer, 'decline', { jobId: job.jobId, platform, reason: why.slice(0, MAX_REASON_CHARS) })
    }
    metrics?.inc('kiln_jobs_total', { state: 'received' })
    const trust = await policy.allows(env.signer, 'requester', m.certs)
    if (!trust.ok) {
      log('info', `job ${job.jobId} refused: requester ${trust.reason}`)
      const which = via === 'stream' ? job.platforms : platforms
      if (which.length > 0 && (via === 'stream' || (init.declineUntrusted !== false && mayDecline()))) decline(which, `requester not trusted: ${trust.reason}`)
      return
    }
    if (via === 'stream') decline(job.platforms.filter(p => !platforms.includes(p)), `builds ${init.platforms.join(', ')} only`)
    if (reason !== undefined) { decline(platforms, reason); return }
    const cacheHits = init.cacheHits !== undefined ? await init.cacheHits(job) : 0
    const hasContext = init.hasBlob !== undefined ? await init.hasBlob(job.context.digest) : false
    for (const platform of platforms) {
      metrics?.inc('kiln_jobs_total', { state: 'offered' })
      sendQuiet(env.signer, 'offer', {
        jobId: job.jobId, platform, queue: queue.length + active.size, cacheHits, hasContext,
        estimatedStartMs: Math.max(0, queue.length + active.size - concurrency + 1) * 60_000,
        ...(init.institution !== undefined ? { institution: init.institution } : {})
      })
    }
  }

  const onAward = async (m: Extract<OpenedFrame, { type: 'award' }>): Promise<void> => {
    const award = m.envelope
    if (award.payload.builder !== self || stopping) return
    const trust = await policy.allows(award.signer, 'requester', m.certs)
    if (!trust.ok) { log('warn', `award from untrusted ${award.signer}: ${trust.reason}`); return }
    // The job inside was signed earlier and may have been seen already: no replay cache here.
    const job = await verifyEnvelope(award.payload.job, { type: 'job', payload: JobPayloadSchema })
    if (job.signer !== award.signer || job.payload.jobId !== award.payload.jobId) { log('warn', 'award does not match its job'); return }
    const platform = award.payload.platform
    const fit = matching(job.payload, job.signer)
    if (!job.payload.platforms.includes(platform) || fit.reason !== undefined || !fit.platforms.includes(platform)) {
      sendQuiet(award.signer, 'decline', { jobId: job.payload.jobId, platform, reason: (fit.reason ?? 'awarded a job this agent does not match').slice(0, MAX_REASON_CHARS) })
      return
    }
    const k = keyOf(job.payload.jobId, platform)
    if (active.has(k) || queue.some(r => keyOf(r.job.payload.jobId, r.platform) === k)) return
    // A repeated award for a job already finished here (the requester restarted, or missed the result): answer it again.
    // A job handed back (this agent stopped or restarted) is built afresh: the requester asks again because it still wants it.
    const known = init.journal?.get(job.payload.jobId, platform)
    if (known?.result !== undefined && known.requester === award.signer && !isHandBack(known.result)) {
      sendQuiet(award.signer, 'result', known.result)
      return
    }
    let secrets: Record<string, Uint8Array> | undefined
    try {
      secrets = openAwardSecrets(award.payload, job.payload, award.signer)
    } catch (err) {
      // A clear failure, not a hand-back: another agent would be sent the same kind of award.
      const error = `cannot use the job's secrets: ${(err as Error).message}`.slice(0, MAX_REASON_CHARS)
      log('warn', `job ${job.payload.jobId} ${platform}: ${error}`)
      const now = Date.now()
      sendQuiet(award.signer, 'result', { jobId: job.payload.jobId, platform, status: 'failed', error, provenance: { builder: self, platform, startedAt: now, finishedAt: now } })
      return
    }
    queue.push({ job, platform, requester: award.signer, state: 'queued', abort: new AbortController(), seq: 0, pending: [], tail: [], ...(secrets !== undefined ? { secrets } : {}) })
    metrics?.inc('kiln_jobs_total', { state: 'awarded' })
    init.journal?.accepted({ jobId: job.payload.jobId, platform, requester: award.signer, job })
    sendQuiet(award.signer, 'progress', { jobId: job.payload.jobId, platform, state: 'queued' })
    pump()
  }

  /**
   * The secrets an award carries, opened with this agent's key; undefined
   * for a job without secrets. Throws SecretsError when the job lists ids
   * and the award has none (a requester that resumed the job without
   * them), or they do not open, or the ids differ from the job's.
   */
  const openAwardSecrets = (award: { jobId: string, platform: string, secrets?: SealedSecrets }, job: JobPayload, requester: string): Record<string, Uint8Array> | undefined => {
    const ids = job.secrets ?? []
    if (award.secrets === undefined) {
      if (ids.length === 0) return undefined
      throw new SecretsError(`the job needs the secrets ${ids.join(', ')} and its award carries none (kiln keeps no secret: a resumed job needs them given again, kiln jobs resume --secret)`)
    }
    if (ids.length === 0) throw new SecretsError('the award carries secrets the job does not list')
    const opened = openSecrets(key, award.secrets, { jobId: award.jobId, platform: award.platform, builder: self, requester })
    const got = Object.keys(opened).sort()
    if (got.join('\0') !== [...ids].sort().join('\0')) {
      for (const v of Object.values(opened)) v.fill(0)
      throw new SecretsError(`the award's secrets are ${got.join(', ') || 'none'}, the job lists ${ids.join(', ')}`)
    }
    return opened
  }

  const onCancel = (m: Extract<OpenedFrame, { type: 'cancel' }>): void => {
    const { jobId, platform, reason } = m.envelope.payload
    const hit = (r: Running): boolean => r.job.payload.jobId === jobId && (platform === undefined || r.platform === platform) && r.requester === m.envelope.signer
    for (let i = queue.length - 1; i >= 0; i--) {
      const r = queue[i] as Running
      if (!hit(r)) continue
      queue.splice(i, 1)
      finish(r, { jobId, platform: r.platform, status: 'cancelled', error: `cancelled: ${reason}` })
    }
    for (const r of active.values()) if (hit(r)) r.abort.abort(new Error(`cancelled: ${reason}`))
  }

  const flushLogs = async (r: Running): Promise<void> => {
    while (r.pending.length > 0) {
      const lines = r.pending.splice(0, MAX_LOG_LINES)
      const seq = r.seq
      r.seq += lines.length
      await send(r.requester, 'log', { jobId: r.job.payload.jobId, platform: r.platform, seq, lines } as never).catch(() => {})
    }
  }

  const progress = (r: Running, state: JobState, extra: { step?: number, steps?: number, detail?: string } = {}): void => {
    if (r.state !== state) init.journal?.state(r.job.payload.jobId, r.platform, state)
    r.state = state
    sendQuiet(r.requester, 'progress', { jobId: r.job.payload.jobId, platform: r.platform, state, ...extra })
  }

  const finish = (r: Running, result: ResultPayload): void => {
    r.state = result.status
    metrics?.inc('kiln_jobs_total', { state: result.status })
    init.journal?.finished(result.jobId, result.platform, result)
    if (finished.length >= MAX_FINISHED_KEPT) finished.shift()
    if (r.tail.length > 0) {
      tails.set(keyOf(result.jobId, result.platform), r.tail)
      for (const k of tails.keys()) { if (tails.size <= MAX_TAILS_KEPT) break; tails.delete(k) }
    }
    finished.push({ jobId: r.job.payload.jobId, platform: r.platform, requester: r.requester, state: result.status, ...(result.status === 'succeeded' ? { digest: result.digest } : { error: result.error }) })
    sendQuiet(r.requester, 'result', result)
  }

  const run = async (r: Running): Promise<void> => {
    const job = r.job.payload
    const startedAt = Date.now()
    const recipeDigest = sha256Digest(job.recipe.text)
    const base: Omit<Provenance, 'finishedAt' | 'baseDigests'> = { recipeDigest, contextDigest: job.context.digest, builder: self, platform: r.platform, startedAt }
    let release: (() => Promise<void>) | undefined
    const timed = (outcome: string): void => { metrics?.observe('kiln_build_duration_seconds', { platform: r.platform, outcome }, (Date.now() - startedAt) / 1000) }
    try {
      if (recipeDigest !== job.recipe.digest) throw new Error(`recipe digest mismatch: job says ${job.recipe.digest}, text hashes to ${recipeDigest}`)
      progress(r, 'fetching')
      const ctx = await init.context.open(job.context, r.requester, r.abort.signal)
      release = ctx.release
      const bases = (job.bases ?? []).filter(b => b.platform === r.platform)
      if (bases.length > 0 && init.bases !== undefined) {
        const held = await init.bases.open(bases, r.requester, r.abort.signal)
        release = async () => { held.release(); await ctx.release() }
      }
      progress(r, 'building')
      const out = await init.builder.build({
        recipe: job.recipe, contextDir: ctx.dir, platform: r.platform, buildArgs: job.buildArgs, network: job.network, requester: r.requester,
        ...(r.secrets !== undefined ? { secrets: r.secrets } : {}),
        ...(job.target !== undefined ? { target: job.target } : {}),
        ...(bases.length > 0 ? { bases } : {})
      }, {
        signal: r.abort.signal,
        onLog: line => {
          const cut = line.length > MAX_LOG_LINE_CHARS ? line.slice(0, MAX_LOG_LINE_CHARS) : line
          r.pending.push(cut)
          r.tail.push(cut)
          if (r.tail.length > LOG_TAIL_LINES) r.tail.shift()
          r.flushing ??= new Promise<void>(resolve => setTimeout(resolve, 100)).then(async () => { await flushLogs(r) }).finally(() => { r.flushing = undefined })
        },
        onProgress: (step, steps, detail) => { progress(r, 'building', { step, steps, ...(detail !== undefined ? { detail: detail.slice(0, 1024) } : {}) }) }
      })
      await r.flushing
      await flushLogs(r)
      timed('succeeded')
      if (out.steps !== undefined) progress(r, 'exporting', { step: out.cachedSteps ?? 0, steps: out.steps, detail: `${out.cachedSteps ?? 0} of ${out.steps} steps cached` })
      finish(r, {
        jobId: job.jobId, platform: r.platform, status: 'succeeded', digest: out.digest, mediaType: out.mediaType, size: out.size, blobs: out.blobs,
        provenance: { ...base, baseDigests: out.baseDigests, finishedAt: Date.now(), ...(out.sandbox !== undefined ? { sandbox: out.sandbox } : {}) }
      })
    } catch (err) {
      await r.flushing
      await flushLogs(r)
      const message = (err as Error).message.slice(0, 1024)
      timed(r.abort.signal.aborted ? 'cancelled' : 'failed')
      if (r.abort.signal.aborted) finish(r, { jobId: job.jobId, platform: r.platform, status: 'cancelled', error: message })
      else finish(r, { jobId: job.jobId, platform: r.platform, status: 'failed', error: message, provenance: { ...base, finishedAt: Date.now() } })
    } finally {
      for (const v of Object.values(r.secrets ?? {})) v.fill(0)
      delete r.secrets
      await release?.().catch(() => {})
    }
  }

  const pump = (): void => {
    while (active.size < concurrency && queue.length > 0) {
      const r = queue.shift() as Running
      const k = keyOf(r.job.payload.jobId, r.platform)
      active.set(k, r)
      run(r).finally(() => { active.delete(k); pump() }).catch(() => {})
    }
  }

  const heartbeat = (): void => {
    for (const r of [...active.values(), ...queue]) sendQuiet(r.requester, 'heartbeat', { jobId: r.job.payload.jobId, platform: r.platform, state: r.state })
  }

  const onFrame = (bytes: Uint8Array, from: string, via: FrameSource): void => {
    (async () => {
      const m = await openFrame(bytes, { replayCache: replay })
      if (m.envelope.signer !== from && via === 'stream') throw new Error(`frame relayed by ${from} for ${m.envelope.signer}`)
      if (m.type === 'job') await onJob(m, via)
      else if (m.type === 'award') await onAward(m)
      else if (m.type === 'cancel') onCancel(m)
    })().catch(err => {
      // A job published on several platforms' topics reaches an agent that builds several of them once per topic,
      // and a requester that found this agent through the DHT may also send it the job it already had by gossip.
      const level = isErrorOf(err, ReplayError) ? 'info' : 'warn'
      log(level, `dropped frame from ${from}: ${(err as Error).name}: ${(err as Error).message}`)
    })
  }

  // Gauges are read at scrape time from what the agent holds, so they never drift.
  const collect = (): void => {
    if (metrics === undefined) return
    const held = [...active.values(), ...queue]
    for (const state of JOB_STATES) metrics.set('kiln_jobs', { state }, held.filter(r => r.state === state).length)
    metrics.set('kiln_queue_length', {}, queue.length)
  }
  let offCollect: (() => void) | undefined
  let stopping = false

  return {
    peerId: self,
    start () {
      offCollect = metrics?.onCollect(collect)
      for (const rec of init.journal?.unfinished() ?? []) {
        const result: ResultPayload = { jobId: rec.jobId, platform: rec.platform, status: 'failed', error: `the agent restarted while the job was ${rec.state}; it is handed back`, provenance: { builder: self, platform: rec.platform } }
        log('warn', `job ${rec.jobId} ${rec.platform} was ${rec.state} when the agent stopped: reporting it failed to ${rec.requester}`)
        init.journal?.finished(rec.jobId, rec.platform, result)
        finished.push({ jobId: rec.jobId, platform: rec.platform, requester: rec.requester, state: 'failed', error: result.error })
        sendQuiet(rec.requester, 'result', result)
      }
      off = t.onFrame(onFrame)
      for (const p of init.platforms) t.subscribe(jobTopic(p))
      timer = setInterval(heartbeat, heartbeatMs)
      timer.unref()
    },
    async stop (options = {}) {
      stopping = true
      off?.()
      off = undefined
      for (const p of init.platforms) t.unsubscribe(jobTopic(p))
      // Hand every held job back (a cancelled result), so that its requester awards it elsewhere at once.
      for (const r of queue.splice(0)) finish(r, { jobId: r.job.payload.jobId, platform: r.platform, status: 'cancelled', error: 'the agent is stopping; the job is handed back' })
      // Draining: running builds may finish (heartbeats go on meanwhile) until the deadline.
      const deadline = Date.now() + (options.drainMs ?? 0)
      while (active.size > 0 && Date.now() < deadline && options.signal?.aborted !== true) await new Promise(resolve => setTimeout(resolve, 50))
      clearInterval(timer)
      offCollect?.()
      for (const r of active.values()) r.abort.abort(new Error('the agent is stopping; the job is handed back'))
      while (active.size > 0) await new Promise(resolve => setTimeout(resolve, 10))
      // Let those results leave before the node goes (bounded: a requester that is gone must not hold the stop).
      await Promise.race([Promise.allSettled([...sending]), new Promise(resolve => setTimeout(resolve, STOP_SEND_WAIT_MS).unref())])
      stopped.abort()
    },
    configure (settings) {
      if (settings.policy !== undefined) policy = settings.policy
      if (settings.allowNetwork !== undefined) allowNetwork = settings.allowNetwork
      if (settings.concurrency !== undefined && settings.concurrency !== concurrency) {
        concurrency = settings.concurrency
        pump()
      }
    },
    status: () => [
      ...[...active.values(), ...queue].map(r => ({ jobId: r.job.payload.jobId, platform: r.platform, requester: r.requester, state: r.state })),
      ...finished
    ],
    logTail: (jobId, platform) => {
      const key = keyOf(jobId, platform)
      const running = active.get(key) ?? queue.find(r => keyOf(r.job.payload.jobId, r.platform) === key)
      return [...(running?.tail ?? tails.get(key) ?? [])]
    }
  }
}
