/**
 * Idle-node benchmark (docs/network.md#idle-cost): what a quiet node costs
 * with kiln's connection ping (once a minute) against libp2p's own (every
 * 10 s), measured in the same run, alternating.
 *
 * Each round starts KILN_BENCH_NODES nodes (default 30) in this process,
 * kiln's defaults on 127.0.0.1 but kad-dht alpha 3; each dials
 * KILN_BENCH_DIALS random others (default 8), a few dials at a time; after
 * 30 s to settle, the process's CPU is read over a minute of idleness (every
 * connection pinged once by kiln's monitor, six times by libp2p's), and
 * its RSS and JS heap after. The nodes stop, and the next configuration runs. Prints CPU per
 * node (% of one core), connections per node, RSS per node over the
 * process's before the round, and the ratio kiln / libp2p. KILN_BENCH_PROFILE_DIR=dir
 * writes a CPU profile of each idle window.
 *
 *   npm run bench -- idle     (KILN_BENCH_NODES=30 KILN_BENCH_DIALS=8 KILN_BENCH_ROUNDS=1)
 */
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { createKilnNode } from '../../src/p2p/index.ts'
import type { KilnNode, KilnNodeInit } from '../../src/p2p/index.ts'
import { mapLimit } from '../../src/util/map-limit.ts'

const NODES = Number(process.env.KILN_BENCH_NODES ?? 30)
const DIALS = Number(process.env.KILN_BENCH_DIALS ?? 8)
const ROUNDS = Number(process.env.KILN_BENCH_ROUNDS ?? 1)
const SETTLE_MS = 30_000
/** A whole minute: every connection is pinged once in it at kiln's interval, six times at libp2p's. */
const IDLE_MS = 60_000
const MiB = 2 ** 20
const load = (): string => loadavg().map(x => x.toFixed(1)).join(' ')

/** A deterministic pseudo-random sequence, so runs compare. */
function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}

interface Figures { cpuPerNode: number, connections: number, rssPerNode: number, heapPerNode: number }

async function round (label: string, init: KilnNodeInit): Promise<Figures> {
  const rand = rng(3)
  const before = process.memoryUsage()
  const nodes: KilnNode[] = []
  try {
    for (let i = 0; i < NODES; i++) nodes.push(await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'], dht: { alpha: 3 }, ...init }))
    // A few dials at a time, each tried again when its handshake timed out: on a loaded machine, all at once mostly time out.
    const dials = nodes.flatMap((n, i) => Array.from({ length: DIALS }, () => [n, nodes[(i + 1 + Math.floor(rand() * (NODES - 1))) % NODES]!] as const))
    await mapLimit(dials, 4, async ([from, to]) => {
      for (let attempt = 1; attempt <= 3; attempt++) {
        try { await from.dial(to.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(30_000) }); return } catch {}
      }
    })
    await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
    const profiler = process.env.KILN_BENCH_PROFILE_DIR !== undefined ? new Session() : undefined
    profiler?.connect()
    await profiler?.post('Profiler.enable')
    await profiler?.post('Profiler.start')
    const cpu0 = process.cpuUsage()
    await new Promise(resolve => setTimeout(resolve, IDLE_MS))
    const cpu = process.cpuUsage(cpu0)
    if (profiler !== undefined) {
      const { profile } = await profiler.post('Profiler.stop')
      await writeFile(join(process.env.KILN_BENCH_PROFILE_DIR!, `idle-${label}-${process.pid}.cpuprofile`), JSON.stringify(profile))
      profiler.disconnect()
    }
    const mem = process.memoryUsage()
    const f: Figures = {
      cpuPerNode: 100 * (cpu.user + cpu.system) / 1000 / IDLE_MS / NODES,
      connections: nodes.reduce((n, node) => n + node.getConnections().length, 0) / NODES,
      rssPerNode: (mem.rss - before.rss) / NODES / MiB,
      heapPerNode: (mem.heapUsed - before.heapUsed) / NODES / MiB
    }
    console.log(`  ${label.padEnd(28)} ${f.cpuPerNode.toFixed(3)}% of a core per node, ${f.connections.toFixed(1)} connections per node, RSS +${f.rssPerNode.toFixed(1)} MiB per node (JS heap +${f.heapPerNode.toFixed(1)}); load ${load()}`)
    return f
  } finally {
    await Promise.allSettled(nodes.map(async n => { await n.stop() }))
  }
}

async function main (): Promise<void> {
  console.log(`${NODES} idle nodes in one process, ${DIALS} dials each, CPU over ${IDLE_MS / 1000} s after ${SETTLE_MS / 1000} s to settle; load ${load()}; ${process.version}`)
  const kiln: Figures[] = []
  const stock: Figures[] = []
  for (let r = 0; r < ROUNDS; r++) {
    stock.push(await round('libp2p ping (every 10 s)', { pingInterval: 10_000 }))
    kiln.push(await round('kiln ping (every minute)', {}))
  }
  const mean = (fs: Figures[], k: keyof Figures): number => fs.reduce((n, f) => n + f[k], 0) / fs.length
  console.log(`kiln / libp2p: CPU per idle node ${(mean(kiln, 'cpuPerNode') / mean(stock, 'cpuPerNode')).toFixed(2)}x (${mean(kiln, 'cpuPerNode').toFixed(3)}% vs ${mean(stock, 'cpuPerNode').toFixed(3)}% of a core), at ${mean(kiln, 'connections').toFixed(1)} vs ${mean(stock, 'connections').toFixed(1)} connections per node; load ${load()}`)
}

await main().catch((err: unknown) => { console.error(err); process.exitCode = 1 })
process.exit()
