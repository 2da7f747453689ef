/**
 * The fault scenario at full size (issue 20 item 1; test/e2e/faults/scenario.ts):
 * 10 agents, 3 requesters, 40 jobs and 40 pulls, every kiln process in its own
 * network namespace as uid 65534, run twice in this process: once with no
 * fault (the reference) and once while agents are SIGKILLed and restarted,
 * partitioned and healed, given loss or a rate limit at random. Prints both
 * runs' figures and the ratio of their work times. Needs root (namespaces)
 * and ip, nft, tc, setpriv.
 *
 * Run: npm run bench -- faults   (KILN_FAULTS_SEED, KILN_FAULTS_AGENTS, _REQUESTERS, _JOBS, _PULLS, _CHAOS_S)
 */
import { loadavg } from 'node:os'
import { createScenario, figures } from '../e2e/faults/scenario.ts'
import type { ScenarioOptions, ScenarioReport } from '../e2e/faults/scenario.ts'

if (process.getuid?.() !== 0) {
  console.log('faults: skipped, network namespaces need root')
  process.exit(0)
}
const env = (name: string, fallback: number): number => Number(process.env[`KILN_FAULTS_${name}`] ?? fallback)
const seed = env('SEED', Math.floor(Math.random() * 2 ** 31))
const base: ScenarioOptions = {
  agents: env('AGENTS', 10),
  requesters: env('REQUESTERS', 3),
  jobs: env('JOBS', 40),
  pulls: env('PULLS', 40),
  chaosMs: env('CHAOS_S', 240) * 1000,
  workMs: 900_000,
  payloadKiB: 256,
  attempts: 3,
  seed,
  log: line => { console.log(`  ${line}`) }
}

const once = async (label: string, options: ScenarioOptions): Promise<ScenarioReport> => {
  console.log(`\n${label} (load average ${loadavg().map(l => l.toFixed(1)).join(' ')})`)
  const s = createScenario(options)
  try {
    const r = await s.run()
    for (const line of figures(r)) console.log(`  ${line}`)
    const twice = [...r.completions.values()].filter(a => a.length > 1).length
    console.log(`  jobs built to completion on more than one agent: ${twice}`)
    return r
  } finally { await s.close() }
}

const reference = await once('reference: no faults', { ...base, chaosMs: 0 })
const faulted = await once(`with faults for up to ${base.chaosMs / 1000} s`, base)
console.log(`\nwork time with faults / without: ${(faulted.workSeconds / reference.workSeconds).toFixed(2)}x (load average ${loadavg().map(l => l.toFixed(1)).join(' ')})`)
