/**
 * The requester (protocols/job.md §5): signs and publishes a job, gathers
 * offers for a window, awards each platform to the best one (or the best N
 * with `verify`), follows progress, logs and heartbeats, re-awards when a
 * builder goes silent, verifies the result and fetches its blobs.
 *
 * Reach: a job is published on each platform's gossip topic, which hands it
 * to the subscribers this node is connected to (they forward it through
 * their meshes); at the same time it is sent directly to the agents of the
 * platform that earlier searches found (`known`), and, while the offer
 * window runs, the agents of each platform are searched for through the DHT
 * and sent the job directly when nothing else handed it to them. The peers
 * a publication is known to have reached are those it was handed or sent
 * to; the window closes early only once every one of them has answered and
 * either the search has ended or the offers in hand are enough for the
 * award.
 */
import { z } from 'zod'
import type { Envelope } from '../../protocols/envelope.ts'
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_MISSES, OFFER_WINDOW_MS, jobTopic, parseRequirement } from '../../protocols/job.ts'
import { JobPayload as JobPayloadSchema } from '../../protocols/job.ts'
import type { JobPayload, OfferPayload, ResultPayload } from '../../protocols/job.ts'
import { sha256Digest } from '../content/digest.ts'
import { createMemoryReplayCache, peerIdOf } from '../trust/index.ts'
import { BuildError, BuilderLostError, JobCancelledError, JobInvalidError, NoOffersError, ReproducibilityError, RequesterStoppedError, ResultInvalidError } from './errors.ts'
import type { Answer } from './errors.ts'
import type { JobEvent, PlatformResult, Requester, RequesterInit, ResumeSpec, SubmitResult, SubmitSpec } from './index.ts'
import { checkSecrets, isHandBack, openFrame, seal, sealSecrets } from '../jobs/index.ts'
import type { OpenedFrame } from '../jobs/index.ts'

const ManifestRefs = z.looseObject({
  config: z.looseObject({ digest: z.string() }),
  layers: z.array(z.looseObject({ digest: z.string() })).max(1024)
})

interface Offer { builder: string, payload: OfferPayload }
interface Assignment {
  builder: string
  lastHeard: number
  /** Its result arrived and is being checked and fetched: the builder has stopped heartbeating, it is not silent. */
  reported?: boolean
  result?: PlatformResult
  failed?: Error
}
interface PlatformState {
  /** Offers heard for this platform (a re-publication starts a new list). */
  offers: Offer[]
  /** Builders awarded since the job was last published. */
  tried: Set<string>
  /** Who answered the current publication: an offer, a decline, or an offer refused by our policy (with the reason). */
  answers: Map<string, { kind: 'offer' } | { kind: 'declined' | 'refused', reason: string }>
  /** Peers known to have the current publication: the topic's subscribers it was handed to, and the peers it was sent to. */
  reached: Set<string>
  /** While the search for this platform's agents (and the sends it started) runs, `reached` may still grow. */
  searching: boolean
  /** Ends that search (the window closed, the job ended). */
  stopSearch?: () => void
  /** Agents the last search found building this platform; undefined when no search ran. */
  advertised?: number
  /** Wakes a wait (offer window, re-publication back-off) early: an answer came, or the platform settled. */
  wake?: () => void
  assignments: Assignment[]
  settled: boolean
  resolve: (r: PlatformResult) => void
  reject: (e: Error) => void
  promise: Promise<PlatformResult>
}
interface Job {
  envelope: Envelope<JobPayload>
  /** The job's secret values (protocols/job.md §6), sealed anew for each award; in memory only. */
  secrets?: Readonly<Record<string, Uint8Array>>
  /** The peers a direct job went to; absent: published on the platforms' topics. */
  to?: string[]
  verify: number
  offerWindowMs: number
  platforms: Map<string, PlatformState>
  onEvent: (e: JobEvent) => void
  /** The platforms each agent found through the DHT builds, as its signed record says. */
  builds: Map<string, Set<string>>
  /** The current publication (none for a direct job): its frame, the platforms it is for, and the sends of it, one per peer. */
  current?: { frame: Uint8Array, platforms: Set<string>, sends: Sends }
  /** Set when follow() returns: loops that re-publish the job stop. */
  closed: boolean
  /** Rejects the job's follow() when the requester stops. */
  abandon?: (err: Error) => void
}

/** Sends of one publication's frame, one per peer: whether it was delivered. */
type Sends = Map<string, Promise<boolean>>

/** Bound on a discover() without a signal (the transport bounds each search too). */
const JOB_DISCOVER_TIMEOUT_MS = 10_000

/** Longest wait between two re-publications of a job nobody offers for any more. */
const REPUBLISH_MAX_BACKOFF_MS = 60_000

export function createRequester (init: RequesterInit): Requester {
  const self = peerIdOf(init.key)
  const t = init.transport
  const replay = init.replayCache ?? createMemoryReplayCache()
  const heartbeatMs = init.heartbeatMs ?? HEARTBEAT_INTERVAL_MS
  const misses = init.heartbeatMisses ?? HEARTBEAT_MISSES
  const certs = init.certs ?? []
  const jobs = new Map<string, Job>()
  /**
   * Agents that searches found (a job's, or discover()'s), with the
   * platforms their signed records say they build: the next job of one of
   * those platforms is sent to them at once, with the gossip publication,
   * instead of after a DHT search. An agent a send fails to is forgotten.
   */
  const known = new Map<string, Set<string>>()

  const rank = (a: Offer, b: Offer): number =>
    a.payload.queue - b.payload.queue || b.payload.cacheHits - a.payload.cacheHits ||
    Number(b.payload.hasContext) - Number(a.payload.hasContext) || a.payload.estimatedStartMs - b.payload.estimatedStartMs

  /** Offers not yet tried from builders not already building this platform, best first. */
  const candidates = (ps: PlatformState): Offer[] => {
    const busy = new Set(ps.assignments.filter(a => a.failed === undefined).map(a => a.builder))
    return ps.offers.filter(o => !ps.tried.has(o.builder) && !busy.has(o.builder)).sort(rank)
  }

  /** Waits `ms`, or less when `ps.wake` is called and `until()` holds, or the platform settles or the job closes. */
  const wait = async (job: Job, ps: PlatformState, ms: number, until: () => boolean = () => false): Promise<void> => {
    if (ps.settled || job.closed || until()) return
    await new Promise<void>(resolve => {
      const done = (): void => { clearTimeout(timer); ps.wake = undefined; resolve() }
      const timer = setTimeout(done, ms)
      ps.wake = () => { if (ps.settled || job.closed || until()) done() }
    })
  }

  /**
   * Whether the window may close early: every peer the publication is known
   * to have reached has answered, and either the search for more agents has
   * ended or the offers in hand are enough for the award (`verify` of them):
   * a search still running on a busy network must not hold an award that
   * the agents already reached can make. Nobody known to have it may only
   * mean that subscriptions and search results have not arrived yet: then
   * the window decides.
   */
  const allAnswered = (job: Job, ps: PlatformState): boolean =>
    ps.reached.size > 0 && [...ps.reached].every(peer => ps.answers.has(peer)) &&
    (!ps.searching || candidates(ps).length >= job.verify)

  /**
   * The offer window of one publication: every offer that arrives in it
   * counts. It closes early only once every agent known to have the job has
   * answered; a search still running when it closes is ended.
   */
  const gather = async (job: Job, ps: PlatformState): Promise<void> => {
    if (ps.settled || job.closed) return
    await new Promise<void>(resolve => {
      const done = (): void => { clearTimeout(timer); ps.wake = undefined; resolve() }
      const timer = setTimeout(done, job.offerWindowMs)
      ps.wake = () => { if (ps.settled || job.closed || allAnswered(job, ps)) done() }
      ps.wake()
    })
    ps.stopSearch?.()
  }

  /** Sends the frame to a peer once per publication; resolves to whether it was delivered. */
  const sendOnce = (sends: Sends, peer: string, frame: Uint8Array): Promise<boolean> => {
    let sending = sends.get(peer)
    if (sending === undefined) {
      sending = t.send(peer, [frame]).then(() => true, (err: Error) => {
        known.delete(peer)
        init.log?.('info', `could not send the job to ${peer}: ${err.message}`)
        return false
      })
      sends.set(peer, sending)
    }
    return sending
  }

  /**
   * Sends the job's current publication to an agent that builds some of
   * its platforms, unless the gossip handed it over already, and counts it
   * as reached for each of them once delivered. Only while a platform is
   * still to be awarded: an agent found later gets nothing.
   */
  const reach = (job: Job, peer: string, platforms: Set<string>): Promise<unknown> | undefined => {
    const cur = job.current
    if (cur === undefined || job.closed || peer === self) return undefined
    const open = [...platforms].flatMap(p => {
      const ps = job.platforms.get(p)
      return cur.platforms.has(p) && ps !== undefined && !ps.settled && !ps.assignments.some(a => a.failed === undefined) ? [ps] : []
    })
    if (open.length === 0) return undefined
    job.builds.set(peer, platforms)
    if (open.every(ps => ps.reached.has(peer)) && !cur.sends.has(peer)) return undefined
    return sendOnce(cur.sends, peer, cur.frame).then(ok => {
      if (!ok || job.current !== cur) return
      for (const ps of open) { ps.reached.add(peer); ps.wake?.() }
    })
  }

  /** Notes an agent a search found, and sends it every job still gathering offers for a platform it builds. */
  const learn = (peer: string, platforms: string[]): Array<Promise<unknown>> => {
    if (peer === self) return []
    const builds = new Set(platforms)
    known.set(peer, builds)
    return [...jobs.values()].flatMap(job => reach(job, peer, builds) ?? [])
  }

  /**
   * Searches the DHT for the agents of one platform while the window runs
   * and sends the job to each that the gossip publication did not hand it
   * to. A peer sent the job directly answers for every platform of the job
   * (protocols/job.md §3), so it counts as reached for each platform its
   * record says it builds.
   */
  const search = async (job: Job, platform: string): Promise<void> => {
    const ps = job.platforms.get(platform)
    if (t.findAgents === undefined || ps === undefined) return
    const stop = new AbortController()
    const mine = (): void => { stop.abort() }
    ps.stopSearch = mine
    const delivering: Array<Promise<unknown>> = []
    const found = new Set<string>()
    const capabilities = [...new Set(job.envelope.payload.requirements.map(r => parseRequirement(r).name))]
    try {
      await t.findAgents({
        platform,
        capabilities,
        signal: stop.signal,
        onAgent: agent => {
          found.add(agent.peer)
          delivering.push(...learn(agent.peer, agent.platforms))
        }
      })
    } catch (err) {
      init.log?.('warn', `searching for agents of ${platform} failed: ${(err as Error).message}`)
    } finally {
      await Promise.allSettled(delivering)
      // A re-publication may have started another search meanwhile: that one owns the state now.
      if (ps.stopSearch === mine) {
        ps.stopSearch = undefined
        ps.searching = false
        ps.advertised = found.size
        ps.wake?.()
      }
    }
  }

  /**
   * Publishes (or sends) a job frame, and records for each platform who is
   * known to have it. A published job also goes at once to the agents of
   * its platforms that earlier searches found, and a search starts for
   * agents neither reaches (it ends with the platform's offer window).
   */
  const publish = async (job: Job, frame: Uint8Array, platforms: string[]): Promise<void> => {
    const states = platforms.flatMap(p => job.platforms.get(p) ?? [])
    for (const ps of states) {
      ps.stopSearch?.()
      ps.reached = new Set()
      ps.searching = job.to === undefined && t.findAgents !== undefined
      ps.advertised = undefined
    }
    if (job.to !== undefined) {
      await Promise.allSettled(job.to.map(async peer => {
        await t.send(peer, [frame])
        for (const ps of states) ps.reached.add(peer)
      }))
      return
    }
    job.current = { frame, platforms: new Set(platforms), sends: new Map() }
    for (const [peer, builds] of known) void reach(job, peer, builds)
    for (const p of platforms) {
      if (job.platforms.get(p)?.searching === true) void search(job, p)
    }
    for (const p of platforms) {
      const { recipients } = await t.publish(jobTopic(p), frame)
      const ps = job.platforms.get(p)
      for (const peer of recipients) ps?.reached.add(peer)
    }
  }

  const noOffers = (platform: string, ps: PlatformState, needed: number): NoOffersError => {
    const of = (kind: 'declined' | 'refused'): Answer[] =>
      [...ps.answers].flatMap(([builder, a]) => a.kind === kind ? [{ builder, reason: a.reason }] : [])
    const declined = of('declined')
    const refused = of('refused')
    const why = [...declined.map(a => `${a.builder} declined: ${a.reason}`), ...refused.map(a => `offer from ${a.builder} refused: ${a.reason}`)]
    // No answer, nobody subscribed to the topic and nobody found through the DHT: no agent builds it.
    const nobody = ps.answers.size === 0 && ps.reached.size === 0 && ps.advertised === 0
    const detail = why.length > 0 ? why.join('; ') : nobody ? `nobody advertises ${platform}` : 'no agent answered'
    return new NoOffersError(`no trusted agent offered to build ${platform} (${ps.offers.length} offer(s), ${needed} needed); ${detail}`, { declined, refused })
  }

  const sendAward = async (job: Job, platform: string, builder: string): Promise<void> => {
    const jobId = job.envelope.payload.jobId
    // Sealed to this builder alone, bound to the job and platform: a frame that goes astray opens for nobody else.
    const secrets = job.secrets !== undefined ? { secrets: sealSecrets(job.secrets, { jobId, platform, builder, requester: self }) } : {}
    const { frame } = await seal(init.key, 'award', { jobId, platform, builder, job: job.envelope, ...secrets }, { certs, ttlMs: Math.max(60_000, job.envelope.expiresAt - Date.now()) })
    await t.send(builder, [frame])
  }

  const award = async (job: Job, platform: string, ps: PlatformState): Promise<boolean> => {
    const next = candidates(ps)[0]
    if (next === undefined) return false
    ps.tried.add(next.builder)
    const a: Assignment = { builder: next.builder, lastHeard: Date.now() }
    ps.assignments.push(a)
    job.onEvent({ kind: 'award', platform, builder: next.builder })
    try {
      await sendAward(job, platform, next.builder)
    } catch (err) {
      a.failed = new BuilderLostError(`cannot reach ${next.builder}: ${(err as Error).message}`)
      job.onEvent({ kind: 'lost', platform, builder: next.builder })
      return await award(job, platform, ps)
    }
    return true
  }

  /**
   * Replaces a builder that went away or handed the platform back: the next
   * offer of the round, else the job published again (freshly signed, same
   * payload and expiry) and awarded to whoever offers then, with a growing
   * pause between publications, until the job expires.
   */
  const replace = async (job: Job, platform: string, ps: PlatformState): Promise<void> => {
    let pause = job.offerWindowMs
    while (!ps.settled && !job.closed) {
      if (await award(job, platform, ps)) return
      const ttlMs = job.envelope.expiresAt - Date.now()
      if (ttlMs <= 1000) break
      const { frame } = await seal(init.key, 'job', job.envelope.payload, { certs, ttlMs })
      ps.offers = []
      ps.tried.clear()
      ps.answers.clear()
      await publish(job, frame, [platform])
      job.onEvent({ kind: 'republished', platform })
      await gather(job, ps)
      if (candidates(ps).length > 0) continue
      // A late offer ends the pause: it is awarded at the top of the loop.
      await wait(job, ps, Math.min(pause, Math.max(0, job.envelope.expiresAt - Date.now())), () => candidates(ps).length > 0)
      pause = Math.min(pause * 2, REPUBLISH_MAX_BACKOFF_MS)
    }
    if (!ps.settled && !job.closed) {
      fail(job, platform, ps, new BuilderLostError(`every builder of ${platform} went away or gave it back, and no other offered before the job expired`))
    }
  }

  const fail = (job: Job, platform: string, ps: PlatformState, err: Error): void => {
    if (ps.settled) return
    ps.settled = true
    ps.wake?.()
    job.onEvent({ kind: 'failed', platform, error: err.message })
    init.journal?.platformFailed(job.envelope.payload.jobId, platform, err)
    ps.reject(err)
  }

  const checkDone = (job: Job, platform: string, ps: PlatformState): void => {
    if (ps.settled) return
    const done = ps.assignments.filter(a => a.result !== undefined)
    const live = ps.assignments.filter(a => a.failed === undefined)
    if (live.length === 0 || done.length < live.length || done.length < job.verify) return
    const digests = Object.fromEntries(done.map(a => [a.builder, (a.result as PlatformResult).digest]))
    if (new Set(Object.values(digests)).size > 1) { fail(job, platform, ps, new ReproducibilityError(platform, digests)); return }
    ps.settled = true
    ps.wake?.()
    const result = { ...(done[0]?.result as PlatformResult), builders: done.map(a => a.builder) }
    init.journal?.platformDone(job.envelope.payload.jobId, result)
    ps.resolve(result)
  }

  /** The builder went silent, handed back, or sent a result that cannot count: award its part again. */
  const lose = (job: Job, platform: string, ps: PlatformState, a: Assignment, err: Error, reason?: string): void => {
    a.failed = err
    job.onEvent({ kind: 'lost', platform, builder: a.builder, ...(reason !== undefined ? { reason } : {}) })
    replace(job, platform, ps).catch((e: Error) => { fail(job, platform, ps, e) })
  }

  const onResult = async (job: Job, platform: string, ps: PlatformState, a: Assignment, env: Envelope<ResultPayload>, certsOfSigner: unknown[]): Promise<void> => {
    const r = env.payload
    a.reported = true
    // Trusted when it offered is not enough: the result is what we keep (protocols/job.md §5.6).
    const trust = await init.policy.allows(env.signer, 'builder', certsOfSigner)
    if (!trust.ok) {
      const reason = `result refused: ${trust.reason}`
      job.onEvent({ kind: 'refused', of: 'result', platform, builder: a.builder, reason: trust.reason })
      lose(job, platform, ps, a, new ResultInvalidError(`${platform}: ${reason}`), reason)
      return
    }
    if (r.status !== 'succeeded') {
      if (isHandBack(r)) {
        const reason = `handed back: ${r.error}`
        lose(job, platform, ps, a, new BuilderLostError(`${a.builder} ${reason}`), reason)
      } else {
        a.failed = new BuildError(`${platform} failed on ${a.builder}: ${r.error}`)
        fail(job, platform, ps, a.failed)
      }
      return
    }
    const jp = job.envelope.payload
    const p = r.provenance
    const problems = [
      p.builder !== env.signer && `provenance names builder ${p.builder}, result signed by ${env.signer}`,
      p.platform !== platform && `provenance platform ${p.platform}, awarded ${platform}`,
      p.contextDigest !== jp.context.digest && `context ${p.contextDigest}, job has ${jp.context.digest}`,
      p.recipeDigest !== jp.recipe.digest && `recipe ${p.recipeDigest}, job has ${jp.recipe.digest}`,
      p.finishedAt < p.startedAt && 'provenance finishes before it starts'
    ].filter((x): x is string => typeof x === 'string')
    if (problems.length > 0) { a.failed = new ResultInvalidError(`result from ${a.builder}: ${problems.join('; ')}`); fail(job, platform, ps, a.failed); return }
    try {
      job.onEvent({ kind: 'fetching', platform, builder: a.builder, digest: r.digest })
      const manifest = await init.blobs.fetch({ digest: r.digest, size: r.size }, [a.builder])
      const refs = ManifestRefs.safeParse(JSON.parse(new TextDecoder().decode(manifest)))
      if (!refs.success) throw new ResultInvalidError(`${r.digest} is not an image manifest`)
      const listed = new Map(r.blobs.map(b => [b.digest, b.size]))
      for (const d of [refs.data.config.digest, ...refs.data.layers.map(l => l.digest)]) {
        if (!listed.has(d)) throw new ResultInvalidError(`manifest ${r.digest} references ${d}, which the result does not list`)
      }
      for (const b of r.blobs) await init.blobs.fetch(b, [a.builder], { discard: true })
      a.result = { platform, digest: r.digest, mediaType: r.mediaType, size: r.size, builders: [a.builder], provenance: p, result: env }
      job.onEvent({ kind: 'result', platform, builder: a.builder, digest: r.digest })
      checkDone(job, platform, ps)
    } catch (err) {
      if (err instanceof Error && err.name === ResultInvalidError.name) { a.failed = err; fail(job, platform, ps, err); return }
      // Not a lie, as far as we know: the builder may have gone right after sending. Another builder can make the image.
      const reason = `its image could not be fetched: ${(err as Error).message}`
      lose(job, platform, ps, a, new BuilderLostError(`${a.builder}: ${reason}`), reason)
    }
  }

  const onFrame = (bytes: Uint8Array, from: string): void => {
    (async () => {
      const m: OpenedFrame = await openFrame(bytes, { replayCache: replay })
      if (m.envelope.signer !== from) return
      const p = m.envelope.payload as { jobId: string, platform?: string }
      const job = jobs.get(p.jobId)
      if (job === undefined || p.platform === undefined) return
      const ps = job.platforms.get(p.platform)
      if (ps === undefined || ps.settled) return
      if (m.type === 'offer') {
        if (ps.offers.some(o => o.builder === from)) return
        const trust = await init.policy.allows(from, 'builder', m.certs)
        if (!trust.ok) {
          ps.answers.set(from, { kind: 'refused', reason: trust.reason })
          job.onEvent({ kind: 'refused', platform: p.platform, builder: from, reason: trust.reason })
        } else {
          ps.answers.set(from, { kind: 'offer' })
          ps.offers.push({ builder: from, payload: m.envelope.payload })
          job.onEvent({ kind: 'offer', platform: p.platform, builder: from, queue: m.envelope.payload.queue })
        }
        ps.wake?.()
        return
      }
      if (m.type === 'decline') {
        // Sent the job directly, an agent also declines the job's platforms it does not build: nobody asked it for those.
        if (!ps.reached.has(from) && job.builds.get(from)?.has(p.platform) === false) return
        if (!ps.answers.has(from)) ps.answers.set(from, { kind: 'declined', reason: m.envelope.payload.reason })
        job.onEvent({ kind: 'decline', platform: p.platform, builder: from, reason: m.envelope.payload.reason })
        ps.wake?.()
        return
      }
      const a = ps.assignments.find(x => x.builder === from && x.failed === undefined)
      if (a === undefined) {
        if (m.type === 'result') {
          init.log?.('warn', `job ${p.jobId}: result for ${p.platform} from ${from}, which was not awarded it: refused`)
          job.onEvent({ kind: 'refused', of: 'result', platform: p.platform, builder: from, reason: 'this peer was not awarded the platform' })
        }
        return
      }
      a.lastHeard = Date.now()
      if (m.type === 'progress') job.onEvent({ kind: 'progress', platform: p.platform, builder: from, state: m.envelope.payload.state, ...(m.envelope.payload.detail !== undefined ? { detail: m.envelope.payload.detail } : {}) })
      else if (m.type === 'log') job.onEvent({ kind: 'log', platform: p.platform, builder: from, seq: m.envelope.payload.seq, lines: m.envelope.payload.lines })
      else if (m.type === 'result') await onResult(job, p.platform, ps, a, m.envelope, m.certs)
    })().catch(err => { init.log?.('warn', `dropped frame from ${from}: ${(err as Error).name}: ${(err as Error).message}`) })
  }

  const watch = (job: Job): NodeJS.Timeout => setInterval(() => {
    const now = Date.now()
    for (const [platform, ps] of job.platforms) {
      if (ps.settled) continue
      for (const a of ps.assignments) {
        if (a.failed !== undefined || a.reported === true || now - a.lastHeard <= heartbeatMs * misses) continue
        lose(job, platform, ps, a, new BuilderLostError(`${a.builder} went silent building ${platform}`))
      }
    }
  }, Math.max(10, Math.floor(heartbeatMs / 2)))

  const off = t.onFrame(onFrame)

  const open = (envelope: Envelope<JobPayload>, options: { verify: number, offerWindowMs?: number, to?: string[], secrets?: Readonly<Record<string, Uint8Array>>, onEvent?: (e: JobEvent) => void }): Job => {
    const jobId = envelope.payload.jobId
    const onEvent = options.onEvent
    const job: Job = {
      envelope,
      verify: options.verify,
      offerWindowMs: options.offerWindowMs ?? init.offerWindowMs ?? OFFER_WINDOW_MS,
      platforms: new Map(),
      builds: new Map(),
      closed: false,
      ...(options.to !== undefined && options.to.length > 0 ? { to: options.to } : {}),
      ...(options.secrets !== undefined ? { secrets: options.secrets } : {}),
      onEvent: (e) => {
        init.journal?.event(jobId, e)
        onEvent?.(e)
      }
    }
    for (const p of envelope.payload.platforms) {
      let resolve!: (r: PlatformResult) => void
      let reject!: (e: Error) => void
      const promise = new Promise<PlatformResult>((res, rej) => { resolve = res; reject = rej })
      promise.catch(() => {})
      job.platforms.set(p, { offers: [], tried: new Set(), answers: new Map(), reached: new Set(), searching: false, assignments: [], settled: false, resolve, reject, promise })
    }
    jobs.set(jobId, job)
    return job
  }

  /** Runs `start` (publish and award, or re-award), then waits for every platform; cancels the job on failure. */
  const follow = async (job: Job, signal: AbortSignal | undefined, start: () => Promise<void>): Promise<SubmitResult> => {
    const jobId = job.envelope.payload.jobId
    const timer = watch(job)
    const onAbort = (): void => { void cancel(jobId, 'cancelled by the requester') }
    signal?.addEventListener('abort', onAbort, { once: true })
    const stopped = new Promise<never>((_resolve, reject) => { job.abandon = reject })
    stopped.catch(() => {})
    try {
      if (signal?.aborted === true) throw new JobCancelledError('cancelled by the requester')
      await Promise.race([start(), stopped])
      const results = await Promise.race([Promise.all([...job.platforms.values()].map(async ps => await ps.promise)), stopped])
      const out: SubmitResult = { jobId, job: job.envelope, platforms: results }
      if (results.length > 1) {
        const index = canonicalIndex(results)
        out.index = { digest: sha256Digest(index), size: index.byteLength, bytes: index }
      }
      init.journal?.finished(jobId, { state: 'succeeded', ...(out.index !== undefined ? { index: { digest: out.index.digest, size: out.index.size } } : {}) })
      return out
    } catch (err) {
      // Stopped, not failed: the builders go on and the journal keeps the job running, to be resumed.
      if ((err as Error).name === RequesterStoppedError.name) throw err
      for (const [platform, ps] of job.platforms) fail(job, platform, ps, err as Error)
      await cancel(jobId, `requester gave up: ${(err as Error).message}`).catch(() => {})
      init.journal?.finished(jobId, { state: (err as Error).name === JobCancelledError.name ? 'cancelled' : 'failed', error: (err as Error).message })
      throw err
    } finally {
      job.closed = true
      for (const ps of job.platforms.values()) { ps.stopSearch?.(); ps.wake?.() }
      clearInterval(timer)
      signal?.removeEventListener('abort', onAbort)
      jobs.delete(jobId)
    }
  }

  return {
    peerId: self,
    async submit (spec: SubmitSpec): Promise<SubmitResult> {
      const verify = spec.verify ?? 1
      const jobId = spec.jobId ?? newJobId()
      const secrets = spec.secrets !== undefined && Object.keys(spec.secrets).length > 0 ? spec.secrets : undefined
      if (secrets !== undefined) {
        try { checkSecrets(secrets) } catch (err) { throw new JobInvalidError(`the job's secrets are not valid: ${(err as Error).message}`) }
      }
      const parsed = JobPayloadSchema.safeParse({
        jobId,
        recipe: { ...spec.recipe, digest: sha256Digest(spec.recipe.text) },
        context: spec.context,
        platforms: spec.platforms,
        requirements: spec.requirements ?? [],
        buildArgs: spec.buildArgs ?? {},
        network: spec.network ?? false,
        // Left out when empty, so that builders older than the field take the job (protocols/job.md §3.1).
        ...(spec.bases !== undefined && spec.bases.length > 0 ? { bases: spec.bases } : {}),
        // The ids only: the values travel in the awards, sealed to each builder (protocols/job.md §6).
        ...(secrets !== undefined ? { secrets: Object.keys(secrets).sort() } : {}),
        ...(spec.target !== undefined ? { target: spec.target } : {}),
        ...(spec.output !== undefined ? { output: spec.output } : {})
      })
      // Refused here, before anything is signed or sent: agents would refuse it anyway (protocols/job.md §1).
      if (!parsed.success) throw new JobInvalidError(`the job is not valid: ${parsed.error.issues.map(i => `${i.path.join('.') || '(job)'}: ${i.message}`).join('; ')}`)
      const payload: JobPayload = parsed.data
      const { envelope, frame } = await seal(init.key, 'job', payload, { certs, ttlMs: spec.ttlMs ?? 24 * 3600_000 })
      init.journal?.created(envelope, { verify })
      const job = open(envelope, { verify, onEvent: spec.onEvent, ...(secrets !== undefined ? { secrets } : {}), ...(spec.offerWindowMs !== undefined ? { offerWindowMs: spec.offerWindowMs } : {}), ...(spec.to !== undefined ? { to: spec.to } : {}) })
      return await follow(job, spec.signal, async () => {
        await publish(job, frame, spec.platforms)
        job.onEvent({ kind: 'published', jobId })
        await Promise.all([...job.platforms].map(async ([platform, ps]) => {
          await gather(job, ps)
          if (ps.settled || job.closed) return
          if (candidates(ps).length < verify) { fail(job, platform, ps, noOffers(platform, ps, verify)); return }
          for (let i = 0; i < verify; i++) await award(job, platform, ps)
        }))
      })
    },
    async resume (spec: ResumeSpec): Promise<SubmitResult> {
      const ids = spec.job.payload.secrets ?? []
      const given = Object.keys(spec.secrets ?? {})
      const stray = given.filter(id => !ids.includes(id))
      if (stray.length > 0) throw new JobInvalidError(`job ${spec.job.payload.jobId} lists no secret ${stray.join(', ')}${ids.length > 0 ? `; it lists ${ids.join(', ')}` : ''}`)
      const missing = ids.filter(id => !given.includes(id))
      // All or none: an award carries every secret the job lists, or none (the agent then fails the platform, saying so).
      if (given.length > 0 && missing.length > 0) throw new JobInvalidError(`job ${spec.job.payload.jobId} needs the secrets ${missing.join(', ')} too`)
      const job = open(spec.job, { verify: spec.verify, ...(given.length > 0 && spec.secrets !== undefined ? { secrets: spec.secrets } : {}), ...(spec.onEvent !== undefined ? { onEvent: spec.onEvent } : {}) })
      return await follow(job, spec.signal, async () => {
        for (const [platform, ps] of job.platforms) {
          const known = spec.platforms.find(p => p.platform === platform)
          if (known?.done !== undefined) { ps.settled = true; ps.resolve(known.done); continue }
          const builders = known?.builders ?? []
          if (builders.length === 0) { void replace(job, platform, ps).catch((e: Error) => { fail(job, platform, ps, e) }); continue }
          for (const builder of builders) {
            ps.tried.add(builder)
            ps.assignments.push({ builder, lastHeard: Date.now() })
            job.onEvent({ kind: 'award', platform, builder })
            // An unreachable builder is not lost yet: the heartbeat watch decides, as for any award.
            await sendAward(job, platform, builder).catch((err: Error) => { init.log?.('warn', `re-award of ${platform} to ${builder}: ${err.message}`) })
          }
        }
      })
    },
    async discover (spec) {
      const findAgents = t.findAgents
      if (findAgents === undefined) return 0
      const found = new Set<string>()
      const capabilities = [...new Set((spec.requirements ?? []).map(r => parseRequirement(r).name))]
      const signal = spec.signal ?? AbortSignal.timeout(JOB_DISCOVER_TIMEOUT_MS)
      await Promise.all([...new Set(spec.platforms)].map(async platform => {
        await findAgents({
          platform,
          capabilities,
          signal,
          onAgent: agent => { found.add(agent.peer); void Promise.all(learn(agent.peer, agent.platforms)) }
        }).catch((err: Error) => { init.log?.('info', `searching for agents of ${platform} failed: ${err.message}`) })
      }))
      return found.size
    },
    cancel,
    stop: () => {
      off()
      for (const job of jobs.values()) job.abandon?.(new RequesterStoppedError(`the requester stopped while following job ${job.envelope.payload.jobId}`))
    }
  }

  async function cancel (jobId: string, reason: string, extra: string[] = []): Promise<void> {
    const job = jobs.get(jobId)
    const builders = new Set<string>(extra)
    for (const [platform, ps] of job?.platforms ?? []) {
      for (const a of ps.assignments) if (a.failed === undefined && a.result === undefined) builders.add(a.builder)
      if (job !== undefined) fail(job, platform, ps, new JobCancelledError(reason))
    }
    if (builders.size === 0) return
    const { frame } = await seal(init.key, 'cancel', { jobId, reason: reason.slice(0, 1024) }, { certs })
    await Promise.allSettled([...builders].map(async b => { await t.send(b, [frame]) }))
  }
}

/** An OCI image index over the platform manifests, in platform order. */
function canonicalIndex (results: PlatformResult[]): Uint8Array {
  const manifests = results.map(r => {
    const [os, architecture, variant] = r.platform.split('/')
    return { mediaType: r.mediaType, digest: r.digest, size: r.size, platform: { architecture, os, ...(variant !== undefined ? { variant } : {}) } }
  })
  return new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }))
}

/**
 * A fresh job id: 12 random bytes, base64url (16 characters), never
 * starting with `-`, which a shell user would then have to pass to
 * `kiln jobs show` after `--` (commander takes `-I7K...` for an option).
 */
export function newJobId (): string {
  for (;;) {
    const id = Buffer.from(crypto.getRandomValues(new Uint8Array(12))).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}
