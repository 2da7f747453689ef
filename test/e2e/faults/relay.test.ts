/**
 * A compute node that accepts no inbound connection is reached through a
 * relay (issue 20 item 5), in network namespaces (test/helpers/netns.ts):
 * - `login`: `kiln agent --relay`, the only node the compute node dials;
 * - `compute`: nftables drops every inbound packet that is not part of a
 *   connection it opened; `kiln agent --listen '' --relay-via LOGIN`, the
 *   only agent advertising the capability `compute`;
 * - `req`: `kiln submit --require compute`, bootstrapped to the login node;
 * - `pull`: a fresh data dir that pulls the result from the compute agent.
 * The job is built by the compute agent and its result comes back to the
 * requester through the relay. The result (a layer of random bytes) is then
 * pulled once through the relay and once straight from a reachable peer
 * holding it (the requester's data dir, now serving as an agent, with the
 * puller cut off from the relay), and the two rates are printed with their
 * ratio (docs/benchmarks.md). KILN_RELAY_PAYLOAD_MIB sets the layer's size
 * (default 32). Last, the login agent is SIGKILLed and started again (same
 * key, same address): the compute agent reserves a slot on it again and
 * announces itself again (src/p2p/relay-via.ts, agent/relay-renewal.ts), and
 * a new `--require compute` job is built there and comes back.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetLab } from '../../helpers/netns.ts'
import type { NetLab, NetNode } from '../../helpers/netns.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { kilnProcs } from '../../helpers/kiln-procs.ts'
import type { KilnProcs, Proc } from '../../helpers/kiln-procs.ts'
import { canMakeNamespaces, configFile, copyContext, labAddress, openDataDir } from './farm.ts'

const PAYLOAD_MIB = Number(process.env.KILN_RELAY_PAYLOAD_MIB ?? 32)

interface Summary { jobId: string, digest: string, platforms: Array<{ platform: string, digest: string, builders: string[] }> }
interface Pulled { digest: string, blobs: number, size: number, fetched: number, peers: string[] }

describe.skipIf(!canMakeNamespaces())('a job reaches an agent only a relay can reach', () => {
  let lab: NetLab
  let u: Unprivileged
  let k: KilnProcs
  const nodes: Record<'login' | 'compute' | 'req' | 'pull', NetNode> = {} as never
  let login: Proc
  let reqAgent: Proc | undefined
  let compute: Proc
  let loginAddr = ''
  let computeId = ''
  let summary: Summary
  // A fixed port (the namespace is the test's own), so that a restarted login agent has the address the compute agent was given.
  const loginArgs = (): string[] => ['agent', '--relay', '--listen', `/ip4/${nodes.login.ip}/tcp/4001`, '--no-mdns', '--platform', 'linux/amd64', '--log-level', 'info']
  const logs = (): string => `--- login:\n${login?.stderr()}\n--- compute:\n${compute?.stderr()}`

  beforeAll(async () => {
    lab = createNetLab()
    for (const name of ['login', 'compute', 'req', 'pull'] as const) nodes[name] = lab.add(name)
    lab.dropInbound(nodes.compute)
    u = makeUnprivileged()
    k = kilnProcs(u)
    for (const name of ['login', 'compute', 'req', 'pull']) openDataDir(u, name)
    computeId = await k.peerId(`${u.work}/compute`)
    const computeConfig = configFile(u, 'compute.yaml', 'agent:\n  capabilities: ["compute"]\n')
    login = k.start(loginArgs(), `${u.work}/login`, {}, nodes.login.ns)
    loginAddr = await labAddress(login, nodes.login.ip)
    compute = k.start(['agent', '--listen', '', '--relay-via', loginAddr, '--no-mdns', '--platform', 'linux/amd64', '--log-level', 'info'], `${u.work}/compute`, { KILN_CONFIG: computeConfig }, nodes.compute.ns)
    await compute.waitFor(/listening: \S+\/p2p-circuit\/p2p\/\S+/, 180_000)
    await compute.waitFor(/capability record published/, 180_000)
  }, 600_000)

  afterAll(async () => {
    await k?.stopAll()
    lab?.destroy()
    u?.cleanup()
  }, 60_000)

  it('the compute node is not dialable: a direct TCP connect to it times out', () => {
    // Its agent listens on nothing directly; a port that would answer if packets got in (ssh-like probe on a closed port gets an RST only if they do).
    const probe = lab.spawn(nodes.req, 'bash', ['-c', `exec 3<>/dev/tcp/${nodes.compute.ip}/9 && echo open || echo closed`])
    return new Promise<void>((resolve, reject) => {
      let out = ''
      probe.stdout?.on('data', (d: Buffer) => { out += d.toString() })
      const timer = setTimeout(() => { probe.kill('SIGKILL') }, 3000)
      probe.on('exit', () => {
        clearTimeout(timer)
        // Dropped packets: no RST comes back, so bash is still waiting when killed (no output at all).
        try { expect(out).toBe(''); resolve() } catch (err) { reject(err as Error) }
      })
    })
  })

  /** `kiln submit --require compute` of a context with `bytes` from the req namespace; asserts the compute agent built it and the result is whole. */
  const submitToCompute = async (name: string, bytes: Buffer): Promise<Summary> => {
    const ctx = copyContext(u, name, bytes)
    const p = k.start(['submit', '--platform', 'linux/amd64', '--require', 'compute', '--bootstrap', loginAddr, '--listen', `/ip4/${nodes.req.ip}/tcp/0`, '--no-mdns', '--offer-window', '5000', '--timeout', '240', '--json', ctx], `${u.work}/req`, {}, nodes.req.ns)
    const code = await p.exited
    expect(code, `${p.stderr()}\n${logs()}`).toBe(0)
    const result = JSON.parse(p.stdout()) as Summary
    expect(result.platforms[0]?.builders).toEqual([computeId])
    // The requester's store holds the whole, verified result.
    const verify = await k.exec(['store', 'verify', '--json'], `${u.work}/req`)
    expect(verify.code, verify.stderr).toBe(0)
    return result
  }

  it('--require compute: built by the compute agent, result back through the relay', { timeout: 300_000 }, async () => {
    summary = await submitToCompute('ctx', randomBytes(PAYLOAD_MIB * 1024 * 1024))
  })

  it('a result pulled through the relay and straight from a peer: rates and their ratio', { timeout: 300_000 }, async () => {
    expect(summary, 'the job above must have succeeded').toBeDefined()
    const pull = async (from: string, bootstrap: string, dataDir: string): Promise<{ pulled: Pulled, seconds: number }> => {
      const started = performance.now()
      const r = await k.exec(['pull', summary.digest, '--from', from, '--bootstrap', bootstrap, '--listen', `/ip4/${nodes.pull.ip}/tcp/0`, '--no-mdns', '--json'], dataDir, 240_000, nodes.pull.ns)
      const seconds = (performance.now() - started) / 1000
      expect(r.code, `${r.stderr}\n${logs()}`).toBe(0)
      return { pulled: JSON.parse(r.stdout) as Pulled, seconds }
    }
    const relayed = await pull(computeId, loginAddr, `${u.work}/pull`)
    expect(relayed.pulled.peers).toEqual([computeId])
    expect(relayed.pulled.fetched).toBe(relayed.pulled.size)

    // The reference: the requester's data dir, which holds the result, serves it from a reachable namespace.
    reqAgent = k.start(['agent', '--no-jobs', '--listen', `/ip4/${nodes.req.ip}/tcp/0`, '--bootstrap', loginAddr, '--no-mdns', '--log-level', 'warn'], `${u.work}/req`, {}, nodes.req.ns)
    const reqAddr = await labAddress(reqAgent, nodes.req.ip)
    const reqId = reqAddr.split('/p2p/')[1] as string
    // Cut off from the relay, the puller can only fetch from the reachable peer (a pull fetches from every provider it finds).
    lab.partition([nodes.pull], [nodes.login])
    const direct = await pull(reqId, reqAddr, openDataDir(u, 'pull-direct'))
    lab.heal([nodes.pull], [nodes.login])
    expect(direct.pulled.peers).toEqual([reqId])

    const mib = relayed.pulled.size / 1024 / 1024
    const relayRate = mib / relayed.seconds
    const directRate = mib / direct.seconds
    console.log(`relay transfer: ${mib.toFixed(1)} MiB through the relay in ${relayed.seconds.toFixed(2)} s (${relayRate.toFixed(1)} MiB/s, whole kiln pull); straight from a peer in ${direct.seconds.toFixed(2)} s (${directRate.toFixed(1)} MiB/s); relay/direct ${(relayRate / directRate).toFixed(2)}`)
    const v = await k.exec(['store', 'verify', '--json'], `${u.work}/pull`)
    expect(v.code, v.stderr).toBe(0)
  })

  it('the relay restarts: the compute agent reserves again, and a new --require compute job reaches it and comes back', { timeout: 600_000 }, async () => {
    // The requester's agent would still hold the compute agent's DHT records; without it, only the compute agent can put them back.
    if (reqAgent !== undefined) { reqAgent.child.kill('SIGTERM'); await reqAgent.exited }
    login.child.kill('SIGKILL')
    await login.exited
    const killed = performance.now()
    const killedAt = Date.now()
    const lost = compute.waitFor(/relay reservation lost, re-reserving/, 60_000)
    login = k.start(loginArgs(), `${u.work}/login`, {}, nodes.login.ns)
    expect(await labAddress(login, nodes.login.ip)).toBe(loginAddr)
    await lost
    await compute.waitFor(/relay reservation renewed/, 180_000)
    const renewed = performance.now()
    // The capability record and the store are announced again, to the restarted relay's empty DHT among others.
    await compute.waitFor(/store announced again/, 180_000)
    const announced = performance.now()
    // A capability search finds a record signed after the restart, naming the address through the relay.
    const peers = await k.exec(['peers', '--capability', 'compute', '--bootstrap', loginAddr, '--listen', `/ip4/${nodes.req.ip}/tcp/0`, '--no-mdns', '--json'], `${u.work}/req`, 120_000, nodes.req.ns)
    expect(peers.code, `${peers.stderr}\n${logs()}`).toBe(0)
    const record = (JSON.parse(peers.stdout) as Array<{ peerId: string, issuedAt: number, addresses: string[] }>).find(r => r.peerId === computeId)
    expect(record, `no capability record of the compute agent found: ${peers.stdout}`).toBeDefined()
    expect(record?.issuedAt).toBeGreaterThan(killedAt)
    expect(record?.addresses).toContain(`${loginAddr}/p2p-circuit/p2p/${computeId}`)
    const again = await submitToCompute('ctx-after-restart', randomBytes(1024 * 1024))
    expect(again.digest).not.toBe(summary?.digest)
    console.log(`relay restart: reservation renewed ${((renewed - killed) / 1000).toFixed(1)} s after the relay was killed, announced again after ${((announced - killed) / 1000).toFixed(1)} s, a new job built through it after ${((performance.now() - killed) / 1000).toFixed(1)} s`)
  })
})
