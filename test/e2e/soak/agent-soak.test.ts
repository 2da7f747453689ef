/**
 * A soak (issue 20 item 4): one `kiln agent` (uid 65534 when the tests run
 * as root) under a steady load of jobs and pulls for KILN_SOAK_SECONDS
 * (default 180 s in the test suite; `npm run bench -- soak` runs 30 min).
 * The jobs cycle through VARIANTS build args, so after the first
 * VARIANTS jobs every job is one the agent built before (same result, from
 * its step cache): the steady state of a farm rebuilding the same recipes.
 * Each pull fetches the result peer to peer into a second data dir. Every 10 s the agent's RSS, open file descriptors, store size,
 * leases and scratch dirs are sampled. At the end they must be flat: no
 * growth of fds, leases or scratch beyond a constant, RSS in the last third
 * within a bound of the first third, the store the size it had after the
 * first job. The figures are printed (docs/benchmarks.md keeps them).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'

const SECONDS = Number(process.env.KILN_SOAK_SECONDS ?? '180')
const SAMPLE_MS = 10_000
/** Distinct jobs (and so results) the load cycles through. */
const VARIANTS = 3

interface Sample { at: number, rssMiB: number, fds: number, storeBytes: number, leases: number, scratch: number, jobs: number, pulls: number }

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox'))(`an agent under steady jobs and pulls for ${SECONDS} s`, () => {
  let u: Unprivileged
  let k: KilnProcs
  let agent: Proc
  let addr = ''
  let agentId = ''
  const dir = { agent: '', requester: '', puller: '' }

  beforeAll(async () => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    for (const name of ['agent', 'requester', 'puller'] as const) {
      dir[name] = join(u.work, name)
      mkdirSync(dir[name], { mode: 0o700 })
    }
    const layout = makeBusyboxBase(u)
    u.give(u.work)
    const idOf = async (d: string): Promise<string> => await k.peerId(d)
    agentId = await idOf(dir.agent)
    const requesterId = await idOf(dir.requester)
    await k.run(dir.agent, ['image', 'import', `oci:${layout}:base`, '-t', 'kiln-test/busybox:base'])
    await k.run(dir.agent, ['trust', 'add-peer', requesterId, '--roles', 'requester'])
    await k.run(dir.requester, ['trust', 'add-peer', agentId, '--roles', 'builder'])
    agent = k.start(['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--platform', 'linux/amd64', '--log-level', 'warn'], dir.agent)
    addr = (await agent.waitFor(/listening: (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)/, 120_000))[1] as string
  }, 300_000)

  afterAll(async () => {
    await k?.stopAll()
    u?.cleanup()
  }, 60_000)

  it('keeps RSS, fds, store size, leases and scratch flat', { timeout: (SECONDS + 300) * 1000 }, async () => {
    const ctx = makeContext(u, { Dockerfile: 'FROM kiln-test/busybox:base\nARG ROUND\nRUN echo soak > /soak.txt && ls /bin | wc -l > /count.txt\n' })
    const pid = agent.child.pid as number
    const net = ['--bootstrap', addr, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns']
    const samples: Sample[] = []
    const digests = new Set<string>()
    let jobs = 0
    let pulls = 0
    const failures: string[] = []

    const leaseCount = (): number => {
      const db = new DatabaseSync(join(dir.agent, 'kiln.db'), { readOnly: true })
      try { return (db.prepare('SELECT COUNT(*) AS n FROM leases').get() as { n: number }).n } finally { db.close() }
    }
    const sample = (): void => {
      const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024
      const jobsDir = join(dir.agent, 'jobs')
      const contexts = existsSync(jobsDir) ? readdirSync(jobsDir).filter(n => n.startsWith('ctx-')).length : 0
      const scratch = readdirSync(join(dir.agent, 'build', 'tmp')).length + contexts
      samples.push({
        at: Date.now(),
        rssMiB: Math.round(rss),
        fds: readdirSync(`/proc/${pid}/fd`).length,
        storeBytes: Number(execFileSync('du', ['-sb', join(dir.agent, 'store')], { encoding: 'utf8' }).split('\t')[0]),
        leases: leaseCount(),
        scratch,
        jobs,
        pulls
      })
    }

    const deadline = Date.now() + SECONDS * 1000
    let nextSample = 0
    for (let round = 0; Date.now() < deadline; round++) {
      const job = await k.exec(['submit', '--platform', 'linux/amd64', '--to', agentId, ...net, '--offer-window', '1000', '--timeout', '120', '--build-arg', `ROUND=${round % VARIANTS}`, '--json', ctx], dir.requester, 180_000)
      if (job.code !== 0) { failures.push(`job ${round}: exit ${job.code}: ${job.stderr.slice(-500)}`); continue }
      jobs++
      const digest = (JSON.parse(job.stdout) as { digest: string }).digest
      digests.add(digest)
      const pull = await k.exec(['pull', digest, ...net, '--json'], dir.puller, 180_000)
      if (pull.code !== 0) failures.push(`pull ${round}: exit ${pull.code}: ${pull.stderr.slice(-500)}`)
      else pulls++
      // Sampled from when every variant was built once: the store then holds each result once.
      if (jobs >= VARIANTS && Date.now() >= nextSample) { sample(); nextSample = Date.now() + SAMPLE_MS }
    }
    // Idle a moment: what a job held is let go.
    await new Promise(resolve => setTimeout(resolve, 3_000))
    sample()

    const third = Math.max(1, Math.floor(samples.length / 3))
    const first = samples.slice(0, third)
    const last = samples.slice(-third)
    const max = (xs: Sample[], f: (s: Sample) => number): number => Math.max(...xs.map(f))
    const end = samples.at(-1) as Sample
    console.log(`soak ${SECONDS} s: ${jobs} jobs, ${pulls} pulls, ${failures.length} failures, ${digests.size} distinct result(s); ` +
      `RSS MiB first third max ${max(first, s => s.rssMiB)}, last third max ${max(last, s => s.rssMiB)}; ` +
      `fds ${samples[0]?.fds} -> ${end.fds} (max ${max(samples, s => s.fds)}); store bytes ${samples[0]?.storeBytes} -> ${end.storeBytes}; ` +
      `leases ${samples[0]?.leases} -> ${end.leases}; scratch at the end ${end.scratch}`)
    console.log(`soak samples (s, RSS MiB, fds, store bytes, leases, scratch): ${samples.map(s => `${Math.round((s.at - (samples[0]?.at ?? 0)) / 1000)},${s.rssMiB},${s.fds},${s.storeBytes},${s.leases},${s.scratch}`).join(' ')}`)

    expect(failures).toEqual([])
    expect(jobs).toBeGreaterThanOrEqual(VARIANTS + Math.min(5, Math.floor(SECONDS / 30)))
    // VARIANTS results, each built once and then taken from the step cache: the store does not grow after them.
    expect(digests.size).toBe(VARIANTS)
    expect(end.storeBytes).toBeLessThanOrEqual((samples[0]?.storeBytes ?? 0) + 64 * 1024)
    expect(end.leases).toBeLessThanOrEqual(samples[0]?.leases ?? 0)
    expect(end.scratch).toBe(0)
    expect(end.fds).toBeLessThanOrEqual((samples[0]?.fds ?? 0) + 16)
    // RSS: the heap settles after warm-up; the last third may not exceed the first by more than half plus 48 MiB.
    expect(max(last, s => s.rssMiB)).toBeLessThanOrEqual(max(first, s => s.rssMiB) * 1.5 + 48)
  })
})
