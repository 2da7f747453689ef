/**
 * Signed build jobs end to end, every party its own process, as uid 65534
 * (see test/helpers/unprivileged.ts): two institutions with their own root
 * keys, one `kiln agent` each (own data dir, loopback, mdns off, B
 * bootstrapped to A), both certified as builders by their institution and
 * trusting institution A's requesters; a requester trusting A's root only
 * as builder. `kiln submit` must award A only, get a verified result and
 * the image blobs peer to peer, tag it locally, and the RUN output must be
 * in the image's layer. `kiln jobs` then shows the job and its logs.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'
import { isRoot, makeUnprivileged, UNPRIVILEGED_UID } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { addressOf, kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'

const BENCH = join(import.meta.dirname, '../../../../shared/bench')

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox', 'tar'))('kiln submit across two institutions', () => {
  let u: Unprivileged
  const dirs: Record<string, string> = {}

  let k: KilnProcs
  const start = (args: string[], dataDir: string): Proc => k.start(args, dataDir)
  const kiln = (dataDir: string, args: string[]): string => {
    const r = u.kiln(args, { dataDir })
    if (r.status !== 0) throw new Error(`kiln ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
    return r.stdout
  }

  const peerId = (dataDir: string): string => (JSON.parse(kiln(dataDir, ['key', 'show', '--json'])) as { peerId: string }).peerId

  beforeAll(async () => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    for (const name of ['rootA', 'rootB', 'agentA', 'agentB', 'requester']) {
      dirs[name] = join(u.work, name)
      mkdirSync(dirs[name] as string)
    }
    const layout = join(u.work, 'busybox')
    execFileSync('sh', [join(BENCH, 'make-busybox-base.sh'), layout], { stdio: 'ignore' })
    u.give(u.work)
    const d = dirs as Record<'rootA' | 'rootB' | 'agentA' | 'agentB' | 'requester', string>

    // Two institutions, each with its root key.
    const pubA = (JSON.parse(kiln(d.rootA, ['trust', 'init-root', '--institution', 'uni-a', '--json'])) as { publicPath: string }).publicPath
    kiln(d.rootB, ['trust', 'init-root', '--institution', 'uni-b', '--json'])
    // Agents: certified builders of their institution, building for uni-a's requesters, the base in their store.
    for (const [agent, root] of [[d.agentA, d.rootA], [d.agentB, d.rootB]] as const) {
      const cert = join(u.work, `${agent.split('/').pop() ?? ''}.cert.json`)
      kiln(root, ['trust', 'issue', '--role', 'builder', peerId(agent), '-o', cert])
      kiln(agent, ['trust', 'add-cert', cert])
      kiln(agent, ['trust', 'add-root', pubA, '--roles', 'requester'])
      kiln(agent, ['image', 'import', `oci:${layout}:base`, '-t', 'kiln-test/busybox:base'])
    }
    // The requester: certified by uni-a as requester, trusting uni-a's builders only.
    const reqCert = join(u.work, 'requester.cert.json')
    kiln(d.rootA, ['trust', 'issue', '--role', 'requester', peerId(d.requester), '-o', reqCert])
    kiln(d.requester, ['trust', 'add-cert', reqCert])
    kiln(d.requester, ['trust', 'add-root', pubA, '--roles', 'builder'])
  }, 240_000)

  afterAll(async () => {
    await k?.stopAll()
    u?.cleanup()
  }, 60_000)

  let a: Proc
  let b: Proc
  let addrA: string
  let addrB: string
  const startAgents = async (): Promise<void> => {
    const d = dirs as Record<'agentA' | 'agentB', string>
    const agentArgs = ['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--platform', 'linux/amd64', '--log-level', 'warn']
    a = start([...agentArgs, '--institution', 'uni-a'], d.agentA)
    addrA = await addressOf(a)
    b = start([...agentArgs, '--institution', 'uni-b', '--bootstrap', addrA], d.agentB)
    addrB = await addressOf(b)
  }
  const netArgs = (): string[] => ['--bootstrap', `${addrA},${addrB}`, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns']

  it('builds on the trusted institution\'s agent only and brings the image back verified', { timeout: 300_000 }, async () => {
    const d = dirs as Record<'agentA' | 'agentB' | 'requester', string>
    await startAgents()
    expect(a.stdout()).toMatch(/taking jobs: up to 1 at once, 1 certificate presented/)

    const ctx = makeContext(u, { Dockerfile: 'FROM kiln-test/busybox:base\nRUN echo built-by-kiln-$((6*7)) > /hello.txt\nCOPY greeting.txt /greeting.txt\n', 'greeting.txt': 'hello from the context\n' })

    // No --platform: the host's (the agents advertise linux/amd64, as the test base is); durations in units.
    const iidfile = join(u.work, 'submit.iid')
    const submit = start(['submit', '-t', 'demo/app:1', ...netArgs(), '--offer-window', '4s', '--timeout', '4m', '--json', '--progress=json', '--log-format', 'json', '--iidfile', iidfile, ctx], d.requester)
    const code = await submit.exited
    expect(code, `${submit.stderr()}\n--- agent A:\n${a.stderr()}\n--- agent B:\n${b.stderr()}`).toBe(0)
    const summary = JSON.parse(submit.stdout()) as { jobId: string, digest: string, platforms: Array<{ platform: string, digest: string, builders: string[], steps: number }> }
    const idA = peerId(d.agentA)
    const idB = peerId(d.agentB)
    expect(summary.platforms).toHaveLength(1)
    expect(summary.platforms[0]?.platform).toBe('linux/amd64')
    expect(summary.platforms[0]?.builders).toEqual([idA])
    expect(summary.platforms[0]?.steps).toBe(2)
    expect(summary.digest).toBe(summary.platforms[0]?.digest)
    expect(readFileSync(iidfile, 'utf8')).toBe(summary.digest)
    // --progress=json and --log-format json: stderr is all JSON, events (with a type) and log records; the job's lines for people are notes (docs/cli.md "Progress events").
    const events = submit.stderr().trimEnd().split('\n').map(l => { try { return JSON.parse(l) as { type: string, phase?: string, id?: string, text?: string } } catch { throw new Error(`not an event: ${l}`) } })
    const notes = events.filter(e => e.type === 'note').map(e => e.text as string)
    // B offered (it trusts uni-a's requesters) and was refused as a builder; logs came live, prefixed.
    const refused = notes.filter(l => / refused: /.test(l))
    expect(refused, submit.stderr()).toHaveLength(1)
    expect(refused[0]).toContain(idB.slice(-6))
    expect(refused[0]).toMatch(/not trusted as builder/)
    expect(notes.join('\n')).toMatch(/\[linux\/amd64\] \[1\/2\] RUN/)
    // The context was packed once, and the result's manifest fetched from the builder, as tasks.
    expect(events.filter(e => e.type === 'done' && e.phase === 'context')).toHaveLength(1)
    expect(events.filter(e => e.type === 'done' && e.phase === 'fetch').map(e => e.id)).toContain(summary.digest)

    // The image is in the requester's store under its name, with the digest the builder signed.
    const inspect = JSON.parse(kiln(d.requester, ['image', 'inspect', 'demo/app:1', '--json'])) as { digest: string }
    expect(inspect.digest).toBe(summary.digest)
    const blob = (digest: string): string => join(d.requester, 'store', 'blobs', 'sha256', digest.slice(7))
    const manifest = JSON.parse(readFileSync(blob(summary.digest), 'utf8')) as { layers: Array<{ digest: string }> }
    const layerWith = (file: string): string | undefined => manifest.layers.map(l => blob(l.digest)).find(path =>
      execFileSync('tar', ['-tf', path], { encoding: 'utf8' }).split('\n').some(n => n.replace(/^\.?\//, '') === file))
    const runLayer = layerWith('hello.txt')
    expect(runLayer).toBeDefined()
    const hello = execFileSync('tar', ['-xOf', runLayer as string, '--wildcards', '*hello.txt'], { encoding: 'utf8' })
    expect(hello).toBe('built-by-kiln-42\n')
    const copyLayer = layerWith('greeting.txt')
    expect(execFileSync('tar', ['-xOf', copyLayer as string, '--wildcards', '*greeting.txt'], { encoding: 'utf8' })).toBe('hello from the context\n')

    // The requester's journal: the job, its builder and its logs; the agent ran as an ordinary user.
    const jobs = JSON.parse(kiln(d.requester, ['jobs', 'ls', '--json'])) as Array<{ id: string, state: string, platforms: Array<{ builders: string[], digest: string }> }>
    expect(jobs[0]).toMatchObject({ id: summary.jobId, state: 'succeeded', platforms: [{ builders: [idA], digest: summary.digest }] })
    expect(kiln(d.requester, ['jobs', 'logs', summary.jobId])).toMatch(/\[linux\/amd64\] \[1\/2\] RUN \/bin\/sh -c echo built-by-kiln/)
    if (isRoot()) {
      const uid = execFileSync('ps', ['-o', 'uid=', '-p', String(a.child.pid)], { encoding: 'utf8' }).trim()
      // setpriv execs node in place: the agent process itself runs as 65534.
      expect(Number(uid)).toBe(UNPRIVILEGED_UID)
    }
  })

  it('kiln jobs resume follows a job whose kiln submit was killed, and names the image as submit would have', { timeout: 300_000 }, async () => {
    const d = dirs as Record<'agentA' | 'requester', string>
    const ctx = makeContext(u, { Dockerfile: 'FROM kiln-test/busybox:base\nRUN sleep 8 && echo resumed > /resumed.txt\n' })
    const submit = start(['submit', '--platform', 'linux/amd64', '-t', 'demo/resumed:1', ...netArgs(), '--offer-window', '4000', '--json', ctx], d.requester)
    await expect.poll(() => /\[linux\/amd64\] building/.test(submit.stderr()), { timeout: 120_000, interval: 100 }).toBe(true)
    submit.child.kill('SIGKILL')
    await submit.exited
    const id = /job (\S+) published/.exec(submit.stderr())?.[1] as string
    expect((JSON.parse(kiln(d.requester, ['jobs', 'show', id, '--json'])) as { state: string }).state).toBe('running')

    const resume = start(['jobs', 'resume', id, ...netArgs(), '--timeout', '200', '--json'], d.requester)
    const code = await resume.exited
    expect(code, `${resume.stderr()}\n--- agent A:\n${a.stderr()}`).toBe(0)
    const summary = JSON.parse(resume.stdout()) as { jobId: string, digest: string, platforms: Array<{ builders: string[] }> }
    expect(summary.jobId).toBe(id)
    expect(summary.platforms[0]?.builders).toEqual([peerId(d.agentA)])
    expect((JSON.parse(kiln(d.requester, ['image', 'inspect', 'demo/resumed:1', '--json'])) as { digest: string }).digest).toBe(summary.digest)
    expect(JSON.parse(kiln(d.requester, ['jobs', 'show', id, '--json']))).toMatchObject({ state: 'succeeded', platforms: [{ state: 'succeeded', digest: summary.digest }] })
  })
})
