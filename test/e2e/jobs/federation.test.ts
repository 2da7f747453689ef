/**
 * Federation end to end, every party its own `kiln` process (as uid 65534
 * when the tests run as root): institutions uni-a and uni-b, each with its
 * own root key and three certified agents. Only one agent, at uni-b,
 * advertises linux/riscv64 (a recipe without RUN builds for any platform,
 * no emulator needed). A requester of uni-a trusts both roots' builders.
 *
 * - Until uni-b's agents trust uni-a's root for the requester role, the
 *   riscv64 agent declines the job; `kiln submit` prints why and exits 6.
 * - After `kiln trust add-root` and SIGHUP (the agents read their trust
 *   policy again), the same submit is built at uni-b and the image comes
 *   back verified.
 * - The agent building an amd64 job is SIGKILLed mid-build: the requester
 *   notices the silence and the job completes on another agent.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { addressOf, kilnProcs, waitFor } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'

const BENCH = join(import.meta.dirname, '../../../../shared/bench')
const AGENTS = ['a1', 'a2', 'a3', 'b1', 'b2', 'b3'] as const
type AgentName = typeof AGENTS[number]
/** b1 alone builds riscv64; the others amd64, from a busybox base in their store. */
const platformOf = (name: AgentName): string => name === 'b1' ? 'linux/riscv64' : 'linux/amd64'

interface Summary { jobId: string, digest: string, platforms: Array<{ platform: string, digest: string, builders: string[] }> }

describe.skipIf(!haveTools('setpriv', 'busybox', 'tar'))('federation: two institutions, three agents each', () => {
  let u: Unprivileged
  let k: KilnProcs
  const dir = (name: string): string => join(u.work, name)
  const ids: Partial<Record<AgentName | 'requester', string>> = {}
  const agents: Partial<Record<AgentName, Proc>> = {}
  const addrs: Partial<Record<AgentName, string>> = {}
  let pubA: string

  const startAgent = async (name: AgentName): Promise<void> => {
    // uni-b's agents log at info level: the test waits for their "reloaded" line.
    const args = ['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--platform', platformOf(name), '--institution', name.startsWith('a') ? 'uni-a' : 'uni-b', '--log-level', name.startsWith('a') ? 'warn' : 'info']
    if (name !== 'a1') args.push('--bootstrap', addrs.a1 as string)
    agents[name] = k.start(args, dir(name))
    addrs[name] = await addressOf(agents[name])
  }
  const netArgs = (): string[] => ['--bootstrap', AGENTS.map(n => addrs[n]).join(','), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns']
  const agentLogs = (): string => AGENTS.map(n => `--- ${n}:\n${agents[n]?.stderr() ?? ''}`).join('\n')

  beforeAll(async () => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    for (const name of ['rootA', 'rootB', 'requester', ...AGENTS]) mkdirSync(dir(name))
    const layout = join(u.work, 'busybox')
    execFileSync('sh', [join(BENCH, 'make-busybox-base.sh'), layout], { stdio: 'ignore' })
    u.give(u.work)

    const roots = await Promise.all(['uni-a', 'uni-b'].map(async (inst, i) =>
      (JSON.parse(await k.run(dir(i === 0 ? 'rootA' : 'rootB'), ['trust', 'init-root', '--institution', inst, '--json'])) as { publicPath: string }).publicPath))
    pubA = roots[0] as string
    const pubB = roots[1] as string
    // Each agent: certified builder of its institution, building for its own institution's requesters only.
    await Promise.all(AGENTS.map(async name => {
      const [root, pub] = name.startsWith('a') ? [dir('rootA'), pubA] : [dir('rootB'), pubB]
      ids[name] = await k.peerId(dir(name))
      const cert = join(u.work, `${name}.cert.json`)
      await k.run(root, ['trust', 'issue', '--role', 'builder', ids[name] as string, '-o', cert])
      await k.run(dir(name), ['trust', 'add-cert', cert])
      await k.run(dir(name), ['trust', 'add-root', pub, '--roles', 'requester'])
      if (platformOf(name) === 'linux/amd64') await k.run(dir(name), ['image', 'import', `oci:${layout}:base`, '-t', 'kiln-test/busybox:base'])
    }))
    // The requester: certified by uni-a, accepting builders of both institutions.
    ids.requester = await k.peerId(dir('requester'))
    const reqCert = join(u.work, 'requester.cert.json')
    await k.run(dir('rootA'), ['trust', 'issue', '--role', 'requester', ids.requester, '-o', reqCert])
    await k.run(dir('requester'), ['trust', 'add-cert', reqCert])
    await k.run(dir('requester'), ['trust', 'add-root', pubA, '--roles', 'builder'])
    await k.run(dir('requester'), ['trust', 'add-root', pubB, '--roles', 'builder'])

    await startAgent('a1')
    await Promise.all(AGENTS.filter(n => n !== 'a1').map(startAgent))
  }, 300_000)

  afterAll(async () => {
    await k?.stopAll()
    u?.cleanup()
  }, 60_000)

  it('builds for uni-a on uni-b\'s riscv64 agent only once uni-b trusts uni-a\'s root; before that the decline is shown', { timeout: 240_000 }, async () => {
    const ctx = makeContext(u, { Dockerfile: 'FROM scratch\nCOPY greeting.txt /greeting.txt\nLABEL org.example.built-for=riscv64\n', 'greeting.txt': 'hello from uni-a\n' })
    const submit = (): Proc => k.start(['submit', '--platform', 'linux/riscv64', '-t', 'fed/app:1', ...netArgs(), '--timeout', '120', '--json', ctx], dir('requester'))

    // uni-b does not trust uni-a's requesters yet: b1 declines, and says why.
    const refused = submit()
    const refusedCode = await refused.exited
    expect(refusedCode, refused.stderr()).toBe(6)
    expect(refused.stderr()).toMatch(/\[linux\/riscv64\] \S+ declined: requester not trusted: .* is not trusted as requester/)
    expect(refused.stderr()).toContain(ids.b1?.slice(-6))
    expect(refused.stderr()).toMatch(/no trusted agent offered to build linux\/riscv64/)
    expect(refused.stderr()).toMatch(/trust your institution's root: kiln trust add-root ROOT\.pub\.yaml --roles requester/)
    expect(refused.stdout()).toBe('')
    expect(await k.run(dir('requester'), ['image', 'ls', '--json'])).not.toContain('fed/app')

    // uni-b trusts uni-a's root for the requester role; its agents read the policy again on SIGHUP.
    await Promise.all((['b1', 'b2', 'b3'] as const).map(async name => {
      await k.run(dir(name), ['trust', 'add-root', pubA, '--roles', 'requester'])
      const agent = agents[name] as Proc
      agent.child.kill('SIGHUP')
      await waitFor(agent, /reloaded: trust changed/)
    }))

    const ok = submit()
    const code = await ok.exited
    expect(code, `${ok.stderr()}\n${agentLogs()}`).toBe(0)
    const summary = JSON.parse(ok.stdout()) as Summary
    expect(summary.platforms).toEqual([expect.objectContaining({ platform: 'linux/riscv64', builders: [ids.b1] })])
    const inspect = JSON.parse(await k.run(dir('requester'), ['image', 'inspect', 'fed/app:1', '--json'])) as { digest: string, platforms: string[] }
    expect(inspect).toMatchObject({ digest: summary.digest, platforms: ['linux/riscv64'] })
    // The COPY layer carries the context file: the image really came from the context, peer to peer.
    const blob = (digest: string): string => join(dir('requester'), 'store', 'blobs', 'sha256', digest.slice(7))
    const manifest = JSON.parse(readFileSync(blob(summary.digest), 'utf8')) as { layers: Array<{ digest: string }> }
    expect(execFileSync('tar', ['-xzOf', blob(manifest.layers[0]?.digest as string), '--wildcards', '*greeting.txt'], { encoding: 'utf8' })).toBe('hello from uni-a\n')
  })

  it('a builder SIGKILLed mid-build: the job completes on another agent', { timeout: 240_000 }, async () => {
    const ctx = makeContext(u, { Dockerfile: `FROM kiln-test/busybox:base\nRUN sleep 5 && echo survived-${Date.now()} > /survived.txt\n` })
    const submit = k.start(['submit', '--platform', 'linux/amd64', '-t', 'fed/survivor:1', ...netArgs(), '--timeout', '200', '--json', ctx], dir('requester'))
    await expect.poll(() => /\[linux\/amd64\] building/.test(submit.stderr()) || submit.child.exitCode !== null, { timeout: 120_000, interval: 100 }).toBe(true)
    const awarded = /\[linux\/amd64\] awarded to (\S+)/.exec(submit.stderr())?.[1]
    const victim = AGENTS.find(n => ids[n] === awarded)
    expect(victim, submit.stderr()).toBeDefined()
    agents[victim as AgentName]?.child.kill('SIGKILL')

    const code = await submit.exited
    expect(code, `${submit.stderr()}\n${agentLogs()}`).toBe(0)
    const summary = JSON.parse(submit.stdout()) as Summary
    const builder = summary.platforms[0]?.builders[0]
    expect(builder).toBeDefined()
    expect(builder).not.toBe(awarded)
    expect(submit.stderr()).toMatch(new RegExp(`${awarded?.slice(-6) ?? 'x'} went silent or away; the platform is awarded again`))
    expect(JSON.parse(await k.run(dir('requester'), ['jobs', 'show', summary.jobId, '--json']))).toMatchObject({ state: 'succeeded', platforms: [{ state: 'succeeded', builders: [builder] }] })
  })
})
