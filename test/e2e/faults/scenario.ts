/**
 * The fault scenario of issue 20 item 1, shared by test/e2e/faults/churn.test.ts
 * (a size CI affords) and `npm run bench -- faults` (the full size): agents and
 * requesters, each `kiln` process in its own network namespace
 * (test/helpers/netns.ts) as uid 65534; the requesters submit jobs and pull
 * each other's results while agents are SIGKILLed and restarted, partitioned
 * and healed, given loss or a rate limit, at random from a seeded PRNG, for a
 * bounded time. Then every fault is undone, the agents are stopped, and what
 * happened is gathered for the caller to judge:
 * - each job's outcome (result digest and builders, or the reason it failed),
 *   each pull's (verified by kiln pull, which re-hashes every blob);
 * - `kiln store verify --json` of every agent's and requester's store;
 * - the jobs each agent built to completion (its job store, table agent_jobs);
 * - figures: jobs done, retries, time from each heal or restart to the first
 *   job or pull that the agent took part in.
 * Recipes are FROM scratch + COPY of a few hundred KiB of seeded random bytes,
 * so no sandbox is needed and every job's result is distinct.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { createNetLab } from '../../helpers/netns.ts'
import type { NetLab, NetNode } from '../../helpers/netns.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'
import { copyContext, openDataDir } from './farm.ts'
import { mapLimit } from '../../../src/util/map-limit.ts'

export interface ScenarioOptions {
  agents: number
  requesters: number
  jobs: number
  pulls: number
  seed: number
  /** Faults are injected for at most this long from the first submit. */
  chaosMs: number
  /** The whole run (after the agents are up) gives up on work not done by then. */
  workMs: number
  /** Size of each job's COPY payload. */
  payloadKiB: number
  /** Attempts per job (a failed submit is submitted again, as a new job) and per pull. */
  attempts: number
  log: (line: string) => void
}

export interface JobOutcome {
  index: number
  requester: number
  ok: boolean
  attempts: number
  /** Job ids of every attempt, in order. */
  jobIds: string[]
  digest?: string
  builders?: string[]
  /** Why the last attempt failed (the error kiln submit printed). */
  reason?: string
  /** stderr of every attempt. */
  stderr: string[]
  at: number
}

export interface PullOutcome {
  index: number
  requester: number
  digest: string
  ok: boolean
  attempts: number
  peers?: string[]
  size?: number
  reason?: string
  at: number
}

export interface FaultEvent { at: number, kind: 'kill' | 'restart' | 'partition' | 'heal' | 'loss' | 'rate' | 'clear', agents: number[], detail?: string }

export interface StoreCheck { name: string, ok: boolean, blobs: number, problems: unknown[], output: string }

export interface ScenarioReport {
  seed: number
  jobs: JobOutcome[]
  pulls: PullOutcome[]
  events: FaultEvent[]
  stores: StoreCheck[]
  /** Per job id, the agents whose job store records it succeeded. */
  completions: Map<string, string[]>
  /** Per heal (partition healed, agent restarted), ms to the first job or pull that agent took part in; undefined when none came. */
  recoveries: Array<{ event: FaultEvent, ms?: number }>
  agentIds: string[]
  workSeconds: number
}

export interface Scenario {
  run: () => Promise<ScenarioReport>
  /** Stops every process and removes the namespaces and temp dirs; safe to call twice. */
  close: () => Promise<void>
  /** Agent logs, for a failing assertion's message. */
  logs: () => string
}

/** mulberry32: a small seeded PRNG, so a run is replayed from its seed. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const AGENT_PORT = 4001

interface Undo { at: number, run: () => Promise<void> | void }

export function createScenario (o: ScenarioOptions): Scenario {
  const rand = prng(o.seed)
  const between = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1))
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)] as T
  let lab: NetLab | undefined
  let u: Unprivileged | undefined
  let k: KilnProcs | undefined
  const agentProcs: Array<Proc | undefined> = []
  const agentNodes: NetNode[] = []
  const reqNodes: NetNode[] = []
  const agentIds: string[] = []
  const disturbed = new Set<number>()
  const events: FaultEvent[] = []
  const t0 = Date.now()
  const now = (): number => Date.now() - t0
  const event = (e: Omit<FaultEvent, 'at'>): void => {
    const full = { at: now(), ...e }
    events.push(full)
    o.log(`${(full.at / 1000).toFixed(1)}s ${e.kind} agent${e.agents.length > 1 ? 's' : ''} ${e.agents.join(',')}${e.detail !== undefined ? ` (${e.detail})` : ''}`)
  }
  const dir = (name: string): string => join((u as Unprivileged).work, name)

  const agentArgs = (i: number): string[] => {
    const ip = (agentNodes[i] as NetNode).ip
    // Every agent joins through the first three (but itself): a restarted agent finds the network again.
    const seeds = [0, 1, 2].filter(j => j !== i && j < o.agents).map(j => agentAddr(j))
    return ['agent', '--listen', `/ip4/${ip}/tcp/${AGENT_PORT},/ip4/${ip}/tcp/${AGENT_PORT + 1}/tls`, '--bootstrap', seeds.join(','),
      '--no-mdns', '--platform', 'linux/amd64', '--max-builds', '2', '--drain-timeout', '5s', '--log-level', 'info']
  }
  const agentAddr = (i: number): string => `/ip4/${(agentNodes[i] as NetNode).ip}/tcp/${AGENT_PORT}/p2p/${agentIds[i] as string}`
  const startAgent = async (i: number): Promise<void> => {
    const p = (k as KilnProcs).start(agentArgs(i), dir(`a${i}`), {}, (agentNodes[i] as NetNode).ns)
    agentProcs[i] = p
    await p.waitFor(/listening: /, 180_000)
  }

  const close = async (): Promise<void> => {
    await k?.stopAll()
    lab?.destroy()
    u?.cleanup()
    k = undefined
    lab = undefined
    u = undefined
  }

  const run = async (): Promise<ScenarioReport> => {
    o.log(`fault scenario: seed ${o.seed}, ${o.agents} agents, ${o.requesters} requesters, ${o.jobs} jobs, ${o.pulls} pulls, faults for ${o.chaosMs / 1000} s`)
    lab = createNetLab()
    u = makeUnprivileged()
    k = kilnProcs(u)
    const procs = k
    for (let i = 0; i < o.agents; i++) agentNodes.push(lab.add(`a${i}`))
    for (let r = 0; r < o.requesters; r++) reqNodes.push(lab.add(`r${r}`))
    for (let i = 0; i < o.agents; i++) agentIds.push(await procs.peerId(openDataDir(u, `a${i}`)))
    for (let r = 0; r < o.requesters; r++) openDataDir(u, `r${r}`)
    const contexts = Array.from({ length: o.jobs }, (_, j) => {
      const bytes = Buffer.alloc(o.payloadKiB * 1024)
      for (let b = 0; b < bytes.length; b += 4) bytes.writeUInt32LE(Math.floor(rand() * 2 ** 32), b)
      return copyContext(u as Unprivileged, `ctx${j}`, bytes)
    })
    // Two at a time: an agent's start is CPU-bound and the machine is shared.
    for (let i = 0; i < o.agents; i += 2) await Promise.all([i, i + 1].filter(j => j < o.agents).map(startAgent))
    await Promise.all(agentProcs.map(async p => await p?.waitFor(/capability record published/, 180_000)))
    o.log(`${o.agents} agents up after ${(now() / 1000).toFixed(1)} s`)

    const workStart = now()
    const bootstrap = (): string => agentIds.map((_, i) => agentAddr(i)).join(',')
    const jobs: JobOutcome[] = []
    const pulls: PullOutcome[] = []
    const pullQueue: Array<{ index: number, source: number }> = []
    let pullsQueued = 0
    let wake: (() => void) | undefined
    const changed = (): void => { const w = wake; wake = undefined; w?.() }
    const deadline = workStart + o.workMs
    const late = (): boolean => now() > deadline

    const lastLine = (stderr: string): string => {
      const lines = stderr.split('\n').map(l => l.replace(/.*\r/, '').trim()).filter(l => l !== '')
      return lines.findLast(l => /^(error|kiln:)/i.test(l)) ?? lines.at(-1) ?? ''
    }

    const submit = async (j: number, r: number): Promise<void> => {
      const outcome: JobOutcome = { index: j, requester: r, ok: false, attempts: 0, jobIds: [], stderr: [], at: 0 }
      while (outcome.attempts < o.attempts && !late()) {
        outcome.attempts++
        const res = await procs.exec(['submit', '--platform', 'linux/amd64', '--bootstrap', bootstrap(), '--listen', `/ip4/${(reqNodes[r] as NetNode).ip}/tcp/0`,
          '--no-mdns', '--offer-window', '5000', '--timeout', '150', '--json', contexts[j] as string], dir(`r${r}`), 200_000, (reqNodes[r] as NetNode).ns)
        outcome.stderr.push(res.stderr)
        const id = /\bjob ([A-Za-z0-9_-]{8,})/.exec(res.stderr)?.[1]
        if (res.code === 0) {
          const s = JSON.parse(res.stdout) as { jobId: string, digest: string, platforms: Array<{ builders: string[] }> }
          outcome.jobIds.push(s.jobId)
          Object.assign(outcome, { ok: true, digest: s.digest, builders: s.platforms.flatMap(p => p.builders) })
          delete outcome.reason
          break
        }
        if (id !== undefined) outcome.jobIds.push(id)
        outcome.reason = `exit ${res.code}: ${lastLine(res.stderr)}`
        o.log(`job ${j} attempt ${outcome.attempts} failed: ${outcome.reason}`)
      }
      outcome.at = now()
      jobs.push(outcome)
      if (pullsQueued < o.pulls) { pullQueue.push({ index: pullsQueued++, source: j }); changed() }
    }

    const pull = async (index: number, source: number, r: number): Promise<void> => {
      // The job's own result, or (it failed) another requester's result.
      const done = jobs.filter(x => x.ok && x.requester !== r)
      const job = jobs.find(x => x.index === source && x.ok) ?? (done.length > 0 ? pick(done) : undefined)
      if (job?.digest === undefined) { pulls.push({ index, requester: r, digest: '', ok: false, attempts: 0, reason: 'no job succeeded to pull the result of', at: now() }); return }
      const outcome: PullOutcome = { index, requester: r, digest: job.digest, ok: false, attempts: 0, at: 0 }
      while (outcome.attempts < o.attempts && !late()) {
        // Again after a pause: the builder announces a result in the DHT after sending it, and a lost provider may come back.
        if (outcome.attempts > 0) await new Promise(resolve => setTimeout(resolve, 5000 * outcome.attempts))
        outcome.attempts++
        const res = await procs.exec(['pull', job.digest, '--bootstrap', bootstrap(), '--listen', `/ip4/${(reqNodes[r] as NetNode).ip}/tcp/0`, '--no-mdns', '--json'],
          dir(`r${r}`), 150_000, (reqNodes[r] as NetNode).ns)
        if (res.code === 0) {
          const s = JSON.parse(res.stdout) as { peers: string[], size: number }
          Object.assign(outcome, { ok: true, peers: s.peers, size: s.size })
          delete outcome.reason
          break
        }
        outcome.reason = `exit ${res.code}: ${lastLine(res.stderr)}`
        o.log(`pull ${index} attempt ${outcome.attempts} failed: ${outcome.reason}`)
      }
      outcome.at = now()
      pulls.push(outcome)
    }

    // Each requester works through its share of the jobs, pulling a finished result of another requester between submits.
    const requester = async (r: number): Promise<void> => {
      const mine = Array.from({ length: o.jobs }, (_, j) => j).filter(j => j % o.requesters === r)
      for (;;) {
        const q = pullQueue.findIndex(p => p.source % o.requesters !== r || o.requesters === 1)
        if (q >= 0) {
          const [task] = pullQueue.splice(q, 1)
          await pull(task!.index, task!.source, r)
        } else if (mine.length > 0) {
          await submit(mine.shift() as number, r)
        } else if (jobs.length + pulls.length < o.jobs + Math.min(o.pulls, o.jobs) && !late()) {
          await new Promise<void>(resolve => { const prev = wake; wake = () => { prev?.(); resolve() }; setTimeout(resolve, 5000) })
        } else break
      }
      // Out of time: what is still queued is recorded as not run, so that the caller sees it.
      for (const task of pullQueue.splice(0)) pulls.push({ index: task.index, requester: r, digest: '', ok: false, attempts: 0, reason: 'not run: the work time ran out', at: now() })
    }

    // Faults, while the work runs: at most a third of the agents disturbed at once.
    const undos: Undo[] = []
    let working = true
    const chaos = async (): Promise<void> => {
      const maxDisturbed = Math.max(1, Math.floor(o.agents / 3))
      const until = now() + o.chaosMs
      while (working && now() < until) {
        await new Promise(resolve => setTimeout(resolve, between(2000, 6000)))
        for (const d of undos.filter(x => x.at <= now())) { undos.splice(undos.indexOf(d), 1); await d.run() }
        if (!working || now() >= until) break
        const free = agentIds.map((_, i) => i).filter(i => !disturbed.has(i))
        if (disturbed.size >= maxDisturbed || free.length === 0) continue
        const roll = rand()
        const i = pick(free)
        disturbed.add(i)
        if (roll < 0.35) {
          agentProcs[i]?.child.kill('SIGKILL')
          await agentProcs[i]?.exited
          event({ kind: 'kill', agents: [i] })
          undos.push({ at: now() + between(2000, 8000), run: async () => { await startAgent(i); disturbed.delete(i); event({ kind: 'restart', agents: [i] }) } })
        } else if (roll < 0.7) {
          const group = [i, ...(rand() < 0.4 && free.length > 1 && disturbed.size < maxDisturbed ? [pick(free.filter(x => x !== i))] : [])]
          for (const g of group) disturbed.add(g)
          const rest = [...agentNodes.filter((_, x) => !group.includes(x)), ...reqNodes]
          const cut = group.map(g => agentNodes[g] as NetNode)
          ;(lab as NetLab).partition(cut, rest)
          // Some partitions outlast the requesters' heartbeat window (15 s), so the platform is awarded again.
          event({ kind: 'partition', agents: group })
          undos.push({ at: now() + between(4000, 22000), run: () => { (lab as NetLab).heal(cut, rest); for (const g of group) disturbed.delete(g); event({ kind: 'heal', agents: group }) } })
        } else if (roll < 0.85) {
          const pct = between(5, 25)
          ;(lab as NetLab).loss(agentNodes[i] as NetNode, pct)
          event({ kind: 'loss', agents: [i], detail: `${pct}% each way` })
          undos.push({ at: now() + between(5000, 12000), run: () => { (lab as NetLab).clear(agentNodes[i] as NetNode); disturbed.delete(i); event({ kind: 'clear', agents: [i] }) } })
        } else {
          const kbit = between(2000, 16000)
          ;(lab as NetLab).rate(agentNodes[i] as NetNode, kbit)
          event({ kind: 'rate', agents: [i], detail: `${kbit} kbit/s out` })
          undos.push({ at: now() + between(5000, 12000), run: () => { (lab as NetLab).clear(agentNodes[i] as NetNode); disturbed.delete(i); event({ kind: 'clear', agents: [i] }) } })
        }
      }
      // Undo everything still in force.
      for (const d of undos.splice(0).sort((a, b) => a.at - b.at)) await d.run()
    }

    const chaosDone = chaos()
    await Promise.all(Array.from({ length: o.requesters }, async (_, r) => { await requester(r) }))
    working = false
    await chaosDone
    const workSeconds = (now() - workStart) / 1000
    o.log(`work done after ${workSeconds.toFixed(1)} s: ${jobs.filter(j => j.ok).length}/${o.jobs} jobs, ${pulls.filter(p => p.ok).length}/${pulls.length} pulls`)

    // Every agent stopped (a drain), then its store and job store read.
    await procs.stopAll()
    const names = [...agentIds.map((_, i) => `a${i}`), ...reqNodes.map((_, r) => `r${r}`)]
    const stores: StoreCheck[] = await mapLimit(names, 3, async name => {
      const res = await procs.exec(['store', 'verify', '--json'], dir(name), 300_000)
      let report: { blobs?: number, problems?: unknown[] } = {}
      try { report = JSON.parse(res.stdout) as typeof report } catch { /* reported through ok: false */ }
      return { name, ok: res.code === 0 && Array.isArray(report.problems), blobs: report.blobs ?? 0, problems: report.problems ?? [], output: `${res.stdout}\n${res.stderr}` }
    })
    const completions = new Map<string, string[]>()
    const copies = mkdtempSync(join(tmpdir(), 'kiln-faults-db-'))
    try {
      for (let i = 0; i < o.agents; i++) {
        // A copy, so that opening it as root leaves no root-owned -wal or -shm file in the agent's data dir.
        const db = join(dir(`a${i}`), 'kiln.db')
        for (const suffix of ['', '-wal', '-shm']) if (existsSync(db + suffix)) copyFileSync(db + suffix, join(copies, `a${i}.db${suffix}`))
        const sql = new DatabaseSync(join(copies, `a${i}.db`))
        try {
          const rows = sql.prepare("SELECT job_id FROM agent_jobs WHERE state = 'succeeded'").all() as Array<{ job_id: string }>
          for (const row of rows) completions.set(row.job_id, [...completions.get(row.job_id) ?? [], agentIds[i] as string])
        } finally { sql.close() }
      }
    } finally { rmSync(copies, { recursive: true, force: true }) }

    // Recovery: from a heal or restart to the first job or pull that the agent took part in.
    const ops = [
      ...jobs.filter(j => j.ok).map(j => ({ at: j.at, peers: j.builders ?? [] })),
      ...pulls.filter(p => p.ok).map(p => ({ at: p.at, peers: p.peers ?? [] }))
    ]
    const recoveries = events.filter(e => e.kind === 'heal' || e.kind === 'restart').map(e => {
      const ids = e.agents.map(a => agentIds[a])
      const first = ops.filter(op => op.at >= e.at && op.peers.some(p => ids.includes(p))).sort((a, b) => a.at - b.at)[0]
      return { event: e, ...(first !== undefined ? { ms: first.at - e.at } : {}) }
    })
    return { seed: o.seed, jobs, pulls, events, stores, completions, recoveries, agentIds, workSeconds }
  }

  const logs = (): string => agentProcs.map((p, i) => `--- agent ${i}:\n${(p?.stderr() ?? '').slice(-4000)}`).join('\n')
  return { run, close, logs }
}

/** The figures docs/benchmarks.md records, as printable lines. */
export function figures (r: ScenarioReport): string[] {
  const ms = r.recoveries.flatMap(x => x.ms !== undefined ? [x.ms] : []).sort((a, b) => a - b)
  const q = (f: number): string => ms.length === 0 ? 'n/a' : `${(ms[Math.min(ms.length - 1, Math.floor(f * ms.length))]! / 1000).toFixed(1)} s`
  const count = (kind: FaultEvent['kind']): number => r.events.filter(e => e.kind === kind).length
  const retries = r.jobs.reduce((n, j) => n + Math.max(0, j.attempts - 1), 0)
  const pullRetries = r.pulls.reduce((n, p) => n + Math.max(0, p.attempts - 1), 0)
  const reawarded = r.jobs.reduce((n, j) => n + j.stderr.reduce((m, s) => m + (s.match(/awarded again/g)?.length ?? 0), 0), 0)
  return [
    `seed ${r.seed}; work took ${r.workSeconds.toFixed(1)} s`,
    `faults: ${count('kill')} SIGKILL+restart, ${count('partition')} partitions, ${count('loss')} loss, ${count('rate')} rate limits`,
    `jobs: ${r.jobs.filter(j => j.ok).length}/${r.jobs.length} done, ${r.jobs.filter(j => !j.ok).length} failed with a reason; ${retries} resubmitted; ${reawarded} platform(s) awarded again after a builder was lost`,
    `pulls: ${r.pulls.filter(p => p.ok).length}/${r.pulls.length} done (${pullRetries} retried)`,
    `stores verified: ${r.stores.filter(s => s.ok).length}/${r.stores.length} clean`,
    `recovery after a heal or restart (to the first job or pull with that agent): median ${q(0.5)}, max ${q(1)}; ${r.recoveries.length - ms.length} of ${r.recoveries.length} saw none before the work ended`
  ]
}
