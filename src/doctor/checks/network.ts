/**
 * The network: can this node reach its bootstrap peers (TCP connect to each
 * multiaddr's host and port), and, if it must be reached through a relay,
 * is there a relay to use: a libp2p dial to each reachable bootstrap peer
 * (identity, encryption, pnet key) that answers identify with the circuit
 * relay hop protocol.
 */
import { CONNECT_TIMEOUT_MS, DIAL_TIMEOUT_MS, RELAY_HOP_PROTOCOL } from '../constants.ts'
import type { Check, CheckResult, SystemAccess } from '../types.ts'

/** Host and TCP port of a multiaddr like /ip4/10.0.0.1/tcp/4001/p2p/..., /dns4/login1/tcp/4001, /ip6/::1/tcp/4001. */
export function tcpTarget (multiaddr: string): { host: string, port: number } | undefined {
  const m = /^\/(ip4|ip6|dns4|dns6|dns)\/([^/]+)\/tcp\/(\d{1,5})(\/|$)/.exec(multiaddr)
  if (m === null) return undefined
  const port = Number(m[3])
  return port > 0 && port < 65536 ? { host: m[2] as string, port } : undefined
}

interface Reach { addr: string, ok: boolean, detail: string }

async function reach (system: SystemAccess, addr: string): Promise<Reach> {
  const target = tcpTarget(addr)
  if (target === undefined) return { addr, ok: false, detail: 'not a TCP multiaddr (/ip4|ip6|dns*/HOST/tcp/PORT)' }
  const started = system.now()
  try {
    await system.connect(target.host, target.port, CONNECT_TIMEOUT_MS)
    return { addr, ok: true, detail: `${target.host}:${target.port} in ${system.now() - started} ms` }
  } catch (err) {
    return { addr, ok: false, detail: `${target.host}:${target.port}: ${(err as Error).message}` }
  }
}

export const checkNetwork: Check = async ({ config, system }) => {
  const out: CheckResult[] = []
  const { bootstrap, relayClient, mdns } = config.node
  const results = await Promise.all(bootstrap.map(async a => await reach(system, a)))
  const reachable = results.filter(r => r.ok)
  if (bootstrap.length === 0) {
    out.push({ id: 'network.bootstrap', title: 'bootstrap peers', status: 'skip', detail: `none configured${mdns ? ': peers are found by mDNS on the local network only' : ''}`, ...(mdns ? {} : { fix: 'set node.bootstrap in kiln.yaml (or --bootstrap) to join a network beyond this host' }) })
  } else {
    const lines = results.map(r => `${r.ok ? 'reachable' : 'unreachable'} ${r.addr} (${r.detail})`).join('; ')
    const fix = 'check the address and that the peer runs; on a cluster, a firewall between nodes is the usual cause (see docs/hpc-deployment.md#firewall)'
    out.push(reachable.length === results.length
      ? { id: 'network.bootstrap', title: 'bootstrap peers', status: 'ok', detail: lines }
      : reachable.length > 0
        ? { id: 'network.bootstrap', title: 'bootstrap peers', status: 'warn', detail: lines, fix }
        : { id: 'network.bootstrap', title: 'bootstrap peers', status: 'problem', detail: lines, fix })
  }

  const { relayVia } = config.node
  if (relayVia.length > 0) {
    const relays = await Promise.all(relayVia.map(async a => await reach(system, a)))
    const up = relays.filter(r => r.ok)
    out.push(up.length > 0
      ? await checkRelays(system, up.map(r => r.addr))
      : { id: 'network.relay', title: 'relay', status: 'problem', detail: `no relay of node.relayVia is reachable: ${relays.map(r => `${r.addr} (${r.detail})`).join('; ')}`, fix: 'check the address and that the login-node agent runs with node.relay: true (kiln agent --relay); see docs/hpc-deployment.md' })
  } else if (!relayClient) {
    out.push({ id: 'network.relay', title: 'relay', status: 'skip', detail: config.node.relay ? 'this node serves as a relay for others (node.relay)' : 'not used (node.relayClient is off: this node must be dialable)' })
  } else if (reachable.length === 0) {
    out.push({ id: 'network.relay', title: 'relay', status: 'problem', detail: 'node.relayClient is on but no bootstrap peer is reachable to relay through', fix: 'bootstrap through a peer that runs with node.relay: true (the login node agent) and that this node can reach' })
  } else {
    out.push(await checkRelays(system, reachable.map(r => r.addr)))
  }
  return out
}

async function checkRelays (system: SystemAccess, addrs: string[]): Promise<CheckResult> {
  const dials = await Promise.all(addrs.map(async addr => {
    try {
      const peer = await system.dialPeer(addr, DIAL_TIMEOUT_MS)
      return { addr, dialled: true, relay: peer.protocols.includes(RELAY_HOP_PROTOCOL), detail: `peer ${peer.peerId}` }
    } catch (err) {
      return { addr, dialled: false, relay: false, detail: (err as Error).message }
    }
  }))
  const lines = dials.map(d => `${d.relay ? 'relay' : d.dialled ? 'not a relay' : 'libp2p dial failed'}: ${d.addr} (${d.detail})`).join('; ')
  const relays = dials.filter(d => d.relay)
  if (relays.length > 0) return { id: 'network.relay', title: 'relay', status: 'ok', detail: `${relays.length} of ${dials.length} bootstrap peer(s) relay: ${lines}` }
  if (dials.some(d => d.dialled)) {
    return { id: 'network.relay', title: 'relay', status: 'problem', detail: `no bootstrap peer offers to relay: ${lines}`, fix: 'run the login-node agent with node.relay: true (or kiln agent --relay) and restart it' }
  }
  return {
    id: 'network.relay',
    title: 'relay',
    status: 'problem',
    detail: `TCP reaches the bootstrap peers but no libp2p connection works: ${lines}`,
    fix: 'check the /p2p/ peer id in node.bootstrap against `kiln key show` on that peer, and that both use the same pnet key (node.pnet) or none'
  }
}
