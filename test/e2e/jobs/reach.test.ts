/**
 * Jobs reach every matching agent of a connected network, whoever is in
 * `--bootstrap` (issue 17): eight `kiln agent` processes (as uid 65534 when
 * the tests run as root) in a line, each bootstrapped to the one before it;
 * `kiln submit` is bootstrapped to the first, which does not match. Only the
 * two farthest agents advertise `cuda=12.4` (kiln.yaml `agent.capabilities`),
 * so `--require cuda>=12` must be built by one of them and `--verify 2` by
 * both, with the same digest. The recipe has no RUN step, so no sandbox is
 * needed; every party trusts every other (an open trust.yaml).
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'
import { mapLimit } from '../../../src/util/map-limit.ts'

const AGENTS = 8
/** The agents that match: the two farthest from the requester's bootstrap agent (index 0). */
const MATCHING = [AGENTS - 2, AGENTS - 1]

interface Summary { jobId: string, digest: string, platforms: Array<{ platform: string, digest: string, builders: string[] }> }

describe.skipIf(!haveTools('setpriv'))(`a job reaches the farthest of ${AGENTS} agents in a line`, () => {
  let u: Unprivileged
  let k: KilnProcs
  const agents: Proc[] = []
  const ids: string[] = []
  let first: string
  let cudaConfig: string
  const dir = (name: string): string => join(u.work, name)
  let ctx = ''
  const agentLogs = (): string => agents.map((a, i) => `--- agent ${i}:\n${a.stderr()}`).join('\n')

  /** A data dir that trusts everyone (a closed test network). */
  const openDataDir = (name: string): string => {
    const d = dir(name)
    mkdirSync(join(d, 'trust'), { recursive: true, mode: 0o700 })
    writeFileSync(join(d, 'trust', 'trust.yaml'), 'version: 1\nopen: true\n', { mode: 0o600 })
    chmodSync(d, 0o700)
    u.give(d)
    return d
  }

  beforeAll(async () => {
    u = makeUnprivileged()
    k = kilnProcs(u)
    cudaConfig = join(u.work, 'cuda.yaml')
    writeFileSync(cudaConfig, 'agent:\n  capabilities: ["cuda=12.4"]\n')
    u.give(cudaConfig)
    ctx = makeContext(u, { Dockerfile: 'FROM scratch\nCOPY greeting.txt /greeting.txt\n', 'greeting.txt': 'hello from the far end\n' })
    openDataDir('requester')
    ids.push(...await mapLimit([...Array(AGENTS).keys()], 2, async i => await k.peerId(openDataDir(`agent${i}`))))
    // A line: each agent knows only the one before it; the matching ones log at info, for "published".
    let previous: string | undefined
    for (let i = 0; i < AGENTS; i++) {
      const matching = MATCHING.includes(i)
      const args = ['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--platform', 'linux/amd64', '--log-level', matching ? 'info' : 'warn', ...(previous !== undefined ? ['--bootstrap', previous] : [])]
      const agent = k.start(args, dir(`agent${i}`), matching ? { KILN_CONFIG: cudaConfig } : {})
      agents.push(agent)
      // Bounded generously: the machine is shared, and an agent's start (imports, sandbox and capability probes) is CPU-bound.
      previous = (await agent.waitFor(/listening: (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)/, 180_000))[1] as string
      if (i === 0) first = previous
    }
    // Their capability records and keys are in the DHT (stored by at least one other agent).
    for (const i of MATCHING) await agents[i]!.waitFor(/capability record published/, 120_000)
  }, 1_200_000)

  afterAll(async () => {
    await k?.stopAll()
    u?.cleanup()
  }, 60_000)

  const submit = async (extra: string[]): Promise<{ summary: Summary, stderr: string }> => {
    const p = k.start(['submit', '--platform', 'linux/amd64', '--require', 'cuda>=12', ...extra, '--bootstrap', first, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--offer-window', '8000', '--timeout', '120', '--json', ctx], dir('requester'))
    const code = await p.exited
    expect(code, `${p.stderr()}\n${agentLogs()}`).toBe(0)
    return { summary: JSON.parse(p.stdout()) as Summary, stderr: p.stderr() }
  }
  const short = (id: string): string => id.slice(-6)

  it('--require: built by one of the two farthest agents; the bootstrap agent declined', { timeout: 240_000 }, async () => {
    const { summary, stderr } = await submit([])
    const builders = summary.platforms[0]?.builders ?? []
    expect(builders).toHaveLength(1)
    expect(MATCHING.map(i => ids[i])).toContain(builders[0])
    expect(stderr).toMatch(new RegExp(`${short(ids[0]!)} declined: lacks cuda>=12`))
    // Both matching agents offered, though neither is connected to the requester's bootstrap agent.
    for (const i of MATCHING) expect(stderr).toMatch(new RegExp(`offer from \\S*${short(ids[i]!)}`))
  })

  it('--verify 2: built by both farthest agents, with the same digest', { timeout: 240_000 }, async () => {
    const { summary } = await submit(['--verify', '2'])
    expect([...summary.platforms[0]?.builders ?? []].sort()).toEqual(MATCHING.map(i => ids[i]).sort())
    expect(summary.digest).toBe(summary.platforms[0]?.digest)
  })
})
