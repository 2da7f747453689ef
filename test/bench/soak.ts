/**
 * The long soak (issue 20 item 4): test/e2e/soak/agent-soak.test.ts, one
 * agent under a steady load of jobs and pulls, run for KILN_SOAK_SECONDS
 * (default 1800 here; the test suite runs it for 180). It prints the jobs
 * and pulls done and the agent's RSS, open fds, store size, leases and
 * scratch dirs over time, and fails if any of them grew. The reference is
 * the run's own start: the first third of the samples against the last.
 *
 * Run: npm run bench -- soak   (KILN_SOAK_SECONDS=600 npm run bench -- soak for 10 min)
 */
import { spawnSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'

const REPO = resolve(import.meta.dirname, '../..')
const seconds = process.env.KILN_SOAK_SECONDS ?? '1800'
console.log(`soak for ${seconds} s; load average at start: ${loadavg().map(l => l.toFixed(2)).join(' ')}`)
const r = spawnSync(join(REPO, 'node_modules/.bin/vitest'), ['run', '--reporter', 'verbose', 'test/e2e/soak/agent-soak.test.ts'], {
  cwd: REPO,
  env: { ...process.env, KILN_SOAK_SECONDS: seconds },
  encoding: 'utf8',
  maxBuffer: 64 * 1024 * 1024
})
for (const line of `${r.stdout}\n${r.stderr}`.split('\n')) if (/^soak |✓|×|AssertionError/.test(line)) console.log(line)
console.log(`load average at end: ${loadavg().map(l => l.toFixed(2)).join(' ')}`)
process.exit(r.status ?? 1)
