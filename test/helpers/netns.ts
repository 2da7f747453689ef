/**
 * A small network of Linux network namespaces for fault-injection tests
 * (needs root, `ip`, `nft` and `tc`): a hub namespace holding a bridge, and
 * N node namespaces, each joined to the bridge by a veth pair and given
 * 10.77.X.Y/16. Nothing is created in the test's own namespace, so the
 * host's network and firewall are untouched, and deleting the namespaces
 * removes every bridge, veth and rule with them.
 *
 * Faults are applied inside a node's namespace, on its side of the link:
 * - partition(a, b) / heal(a, b): every packet between the two groups is
 *   dropped (an nftables set of blocked addresses in each node), so open TCP
 *   connections stall as on a real cut, and resume if healed in time;
 * - loss(node, pct): random loss in and out (nftables `numgen random`);
 * - rate(node, kbit): egress rate limit (`tc tbf`; this kernel has no netem);
 * - dropInbound(node): only connections the node opened itself (and
 *   loopback) get in, like a compute node behind a cluster firewall;
 * - clear(node): removes all of the above from that node.
 *
 * Names start with a per-run prefix `kfn<pid base 36>`; `createNetLab`
 * first deletes namespaces left by a run whose process is gone (a killed
 * test), and `destroy()` (call it in afterAll) deletes this run's.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess, SpawnOptions } from 'node:child_process'

export interface NetNode {
  /** The namespace's name (`ip netns exec NAME ...`). */
  ns: string
  /** Its address on the lab network, e.g. 10.77.0.3. */
  ip: string
}

export interface NetLab {
  prefix: string
  nodes: NetNode[]
  /** Adds a node namespace joined to the bridge. */
  add: (label: string) => NetNode
  partition: (a: NetNode[], b: NetNode[]) => void
  heal: (a: NetNode[], b: NetNode[]) => void
  loss: (node: NetNode, pct: number) => void
  rate: (node: NetNode, kbit: number) => void
  dropInbound: (node: NetNode) => void
  clear: (node: NetNode) => void
  /** Runs a command in the node's namespace to its end; returns stdout. */
  run: (node: NetNode, file: string, args: string[]) => string
  /** Starts a command in the node's namespace (`ip netns exec`). */
  spawn: (node: NetNode, file: string, args: string[], options?: SpawnOptions) => ChildProcess
  /** Deletes every namespace of this run (and with them its links and rules). */
  destroy: () => void
}

const PREFIX_RE = /^kfn([0-9a-z]+)-/
const TABLE = 'kilnfaults'

function sh (file: string, args: string[], input?: string): string {
  return execFileSync(file, args, { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: 30_000 })
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/** The namespaces `ip netns list` shows. */
function namespaces (): string[] {
  return sh('ip', ['netns', 'list']).split('\n').map(l => l.split(' ')[0] ?? '').filter(n => n !== '')
}

/** Deletes the namespaces of earlier runs whose process no longer exists. */
export function removeStaleLabs (): string[] {
  const removed: string[] = []
  for (const ns of namespaces()) {
    const m = PREFIX_RE.exec(ns)
    if (m === null) continue
    const pid = parseInt(m[1] as string, 36)
    if (pid !== process.pid && alive(pid)) continue
    try { sh('ip', ['netns', 'del', ns]); removed.push(ns) } catch { /* gone meanwhile */ }
  }
  return removed
}

export function createNetLab (): NetLab {
  removeStaleLabs()
  const prefix = `kfn${process.pid.toString(36)}`
  const hub = `${prefix}-hub`
  const created: string[] = []
  const nodes: NetNode[] = []
  const inNs = (ns: string, file: string, args: string[], input?: string): string => sh('ip', ['netns', 'exec', ns, file, ...args], input)
  const nft = (node: NetNode, script: string): void => { inNs(node.ns, 'nft', ['-f', '-'], script) }

  const lab: NetLab = {
    prefix,
    nodes,
    add: (label) => {
      const i = nodes.length
      if (i >= 250 * 250) throw new Error('netns lab: too many nodes')
      const ns = `${prefix}-${label}`.slice(0, 40)
      const ip = `10.77.${Math.floor(i / 250)}.${(i % 250) + 2}`
      sh('ip', ['netns', 'add', ns])
      created.push(ns)
      const host = `v${i}`
      sh('ip', ['-n', hub, 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
      sh('ip', ['-n', hub, 'link', 'set', host, 'master', 'br0', 'up'])
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
      sh('ip', ['-n', ns, 'addr', 'add', `${ip}/16`, 'dev', 'eth0'])
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'])
      const node = { ns, ip }
      // One table per node: a set of cut-off peers, a loss chain and an inbound chain, filled by the faults below.
      nft(node, `table inet ${TABLE} {
  set blocked { type ipv4_addr; }
  chain loss { }
  chain inbound { }
  chain input { type filter hook input priority 0; policy accept; ip saddr @blocked drop; jump loss; jump inbound; }
  chain output { type filter hook output priority 0; policy accept; ip daddr @blocked drop; jump loss; }
}
`)
      nodes.push(node)
      return node
    },
    partition: (a, b) => {
      for (const [side, other] of [[a, b], [b, a]] as const) {
        for (const n of side) nft(n, `add element inet ${TABLE} blocked { ${other.map(o => o.ip).join(', ')} }\n`)
      }
    },
    heal: (a, b) => {
      for (const [side, other] of [[a, b], [b, a]] as const) {
        // `delete element` fails on an absent element: flush and re-add what stays blocked would race nothing here, so delete one by one.
        for (const n of side) for (const o of other) { try { nft(n, `delete element inet ${TABLE} blocked { ${o.ip} }\n`) } catch { /* was not blocked */ } }
      }
    },
    loss: (node, pct) => {
      if (!(pct >= 0 && pct <= 100)) throw new Error(`loss ${pct}: expected 0..100`)
      nft(node, `flush chain inet ${TABLE} loss\n${pct > 0 ? `add rule inet ${TABLE} loss meta iifname != "lo" meta oifname != "lo" numgen random mod 100 < ${Math.round(pct)} drop\n` : ''}`)
    },
    rate: (node, kbit) => {
      inNs(node.ns, 'tc', ['qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', `${Math.max(16, Math.ceil(kbit / 8 / 10))}kb`, 'latency', '200ms'])
    },
    dropInbound: (node) => {
      nft(node, `flush chain inet ${TABLE} inbound\nadd rule inet ${TABLE} inbound iifname "lo" accept\nadd rule inet ${TABLE} inbound ct state established,related accept\nadd rule inet ${TABLE} inbound drop\n`)
    },
    clear: (node) => {
      nft(node, `flush set inet ${TABLE} blocked\nflush chain inet ${TABLE} loss\nflush chain inet ${TABLE} inbound\n`)
      try { inNs(node.ns, 'tc', ['qdisc', 'del', 'dev', 'eth0', 'root']) } catch { /* no qdisc of ours */ }
    },
    run: (node, file, args) => inNs(node.ns, file, args),
    spawn: (node, file, args, options = {}) => spawn('ip', ['netns', 'exec', node.ns, file, ...args], options),
    destroy: () => {
      for (const ns of created.splice(0).reverse()) { try { sh('ip', ['netns', 'del', ns]) } catch { /* already gone */ } }
    }
  }

  try {
    sh('ip', ['netns', 'add', hub])
    created.push(hub)
    sh('ip', ['-n', hub, 'link', 'add', 'br0', 'type', 'bridge'])
    sh('ip', ['-n', hub, 'link', 'set', 'br0', 'up'])
  } catch (err) {
    lab.destroy()
    throw err
  }
  return lab
}
