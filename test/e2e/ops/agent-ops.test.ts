/**
 * Running an agent the way a site does, every party its own process as
 * uid 65534: `kiln agent` with a metrics port and no trust in the
 * requester. A job sent to it is refused; after `kiln trust add-peer` and
 * SIGHUP the same job is built. A pull and the job later, the scrape parses
 * as Prometheus text with the exercised counters above zero. Then SIGTERM
 * during a build: the agent finishes it (inside --drain-timeout), the
 * requester gets its result, and the agent exits 0.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import { kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'

const BENCH = join(import.meta.dirname, '../../../../shared/bench')

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox'))('kiln agent at a site: metrics, SIGHUP, SIGTERM', () => {
  let u: Unprivileged
  let k: KilnProcs
  const dir: Record<'agent' | 'requester' | 'puller', string> = { agent: '', requester: '', puller: '' }
  const ids: Record<'agent' | 'requester', string> = { agent: '', requester: '' }
  let agent: Proc
  let addr = ''
  let metricsUrl = ''

  const kiln = async (dataDir: string, args: string[]): Promise<string> => {
    const r = await k.exec(args, dataDir)
    if (r.code !== 0) throw new Error(`kiln ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
    return r.stdout
  }
  const context = (name: string, dockerfile: string): string => makeContext(u, { Dockerfile: dockerfile, 'hello.txt': `hello from ${name}\n` }, {}, name)
  const net = (): string[] => ['--bootstrap', addr, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns']
  const submit = (ctx: string): Proc => k.start(['submit', '--platform', 'linux/amd64', '--to', ids.agent, ...net(), '--offer-window', '2000', '--timeout', '120', '--json', ctx], dir.requester)

  beforeAll(async () => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    for (const name of ['agent', 'requester', 'puller'] as const) {
      dir[name] = join(u.work, name)
      mkdirSync(dir[name])
    }
    const layout = join(u.work, 'busybox')
    execFileSync('sh', [join(BENCH, 'make-busybox-base.sh'), layout], { stdio: 'ignore' })
    u.give(u.work)
    for (const name of ['agent', 'requester'] as const) ids[name] = (JSON.parse(await kiln(dir[name], ['key', 'show', '--json'])) as { peerId: string }).peerId
    await kiln(dir.agent, ['image', 'import', `oci:${layout}:base`, '-t', 'kiln-test/busybox:base'])
    // The requester accepts this agent's results; the agent does not trust the requester yet.
    await kiln(dir.requester, ['trust', 'add-peer', ids.agent, '--roles', 'builder'])

    agent = k.start(['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--platform', 'linux/amd64', '--metrics-listen', '127.0.0.1:0', '--drain-timeout', '60s', '--log-level', 'info'], dir.agent)
    addr = (await agent.waitFor(/listening: (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)/))[1] as string
    metricsUrl = (await agent.waitFor(/metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/))[1] as string
  }, 240_000)

  afterAll(async () => {
    await k?.stopAll()
    u?.cleanup()
  }, 60_000)

  it('takes a job only after kiln trust add-peer and SIGHUP, and its scrape shows the job, the pull and the store', { timeout: 300_000 }, async () => {
    const ctx = context('scratch', 'FROM scratch\nCOPY hello.txt /hello.txt\n')
    const refused = submit(ctx)
    expect(await refused.exited, refused.stderr()).not.toBe(0)
    expect(refused.stderr()).toMatch(/not trusted/)

    await kiln(dir.agent, ['trust', 'add-peer', ids.requester, '--roles', 'requester'])
    agent.child.kill('SIGHUP')
    await agent.waitFor(/reloaded: trust changed[^\n]*changed=\["trust"\]/)

    const accepted = submit(ctx)
    expect(await accepted.exited, `${accepted.stderr()}\n--- agent:\n${agent.stderr()}`).toBe(0)
    const { digest } = JSON.parse(accepted.stdout()) as { digest: string }
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/)

    // A pull from the agent into a third store.
    await kiln(dir.puller, ['pull', digest, '--from', ids.agent, ...net()])

    const res = await fetch(metricsUrl)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    const families = new Map(parsePrometheusTextFormat(text).map(f => [f.name, f]))
    const sum = (name: string, labels: Record<string, string> = {}): number => (families.get(name)?.metrics ?? [])
      .filter(m => Object.entries(labels).every(([key, v]) => m.labels?.[key] === v))
      .reduce((n, m) => n + Number(m.value ?? m.count ?? 0), 0)
    expect(families.get('kiln_jobs_total')?.type).toBe('COUNTER')
    expect(sum('kiln_jobs_total', { state: 'received' })).toBeGreaterThanOrEqual(2)
    expect(sum('kiln_jobs_total', { state: 'awarded' })).toBe(1)
    expect(sum('kiln_jobs_total', { state: 'succeeded' })).toBe(1)
    expect(families.get('kiln_build_duration_seconds')?.type).toBe('HISTOGRAM')
    // The parser drops a histogram's labels: read its count line from the text.
    expect(text).toMatch(/^kiln_build_duration_seconds_count\{platform="linux\/amd64",outcome="succeeded"\} 1$/m)
    expect(sum('kiln_bytes_served_total', { peer: ids.requester })).toBeGreaterThan(0)
    expect(sum('kiln_bytes_served_total')).toBeGreaterThan(sum('kiln_bytes_served_total', { peer: ids.requester }))
    // The job's context came from the requester, found also through a DHT provider lookup.
    expect(sum('kiln_bytes_fetched_total', { peer: ids.requester })).toBeGreaterThan(0)
    expect(sum('kiln_dht_lookups_total', { kind: 'providers' })).toBeGreaterThan(0)
    expect(sum('kiln_store_blobs')).toBeGreaterThan(3)
    expect(sum('kiln_store_bytes')).toBeGreaterThan(0)
    expect(sum('kiln_queue_length')).toBe(0)
  })

  it('a SIGTERM the moment "listening" is printed stops the agent cleanly (exit 0), every time', { timeout: 300_000 }, async () => {
    const quick = join(u.work, 'quick')
    mkdirSync(quick)
    u.give(quick)
    for (let i = 0; i < 3; i++) {
      const p = k.start(['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-jobs'], quick)
      await p.waitFor(/listening: /, 120_000)
      p.child.kill('SIGTERM')
      expect(await p.exited, p.stderr()).toBe(0)
    }
  })

  it('on SIGTERM during a build, finishes it within the drain timeout, delivers the result and exits 0', { timeout: 300_000 }, async () => {
    const ctx = context('slow', 'FROM kiln-test/busybox:base\nRUN sleep 4 && echo drained > /drained.txt\n')
    const job = submit(ctx)
    await job.waitFor(/\[1\/1\] RUN/, 120_000)
    const signalled = Date.now()
    agent.child.kill('SIGTERM')
    await agent.waitFor(/stopping: no new jobs/)
    const code = await agent.exited
    expect(code, agent.stderr()).toBe(0)
    // It waited for the build rather than cancelling it.
    expect(Date.now() - signalled).toBeGreaterThan(1000)
    expect(await job.exited, `${job.stderr()}\n--- agent:\n${agent.stderr()}`).toBe(0)
    const summary = JSON.parse(job.stdout()) as { platforms: Array<{ builders: string[] }> }
    expect(summary.platforms[0]?.builders).toEqual([ids.agent])
    expect(agent.stderr()).not.toMatch(/the job is handed back/)
  })
})
