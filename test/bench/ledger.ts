/**
 * Ownership ledger benchmark: what keeping the owners set in RUN steps
 * costs a step (docs/building.md, "Ownership"). RUN steps on the Debian 12
 * base (test/helpers/debian-base.ts) run in the bwrap sandbox as an
 * unprivileged user (uid 65534 when run as root), with and without the
 * ledger (fakeroot's faked in the sandbox, libfakeroot preloaded),
 * alternating in the same run; printed: median milliseconds per step and
 * the ledger/plain ratio, for `true` (the fixed cost: faked's start and
 * stop), for `useradd -m` + `chown` (a step that records owners) and for
 * `cp -a /usr/share` (thousands of stat, chown and chmod calls, each a
 * message to faked: the ledger's worst case) and for `apt-get install
 * python3-minimal` from packages downloaded once before (what dpkg costs
 * under the ledger; the download needs the Debian mirror), plus
 * the builder's own work: reading the base layer's tar headers (once per
 * layer and process), writing faked's state file and applying the ledger.
 *
 * Run: npm run bench -- ledger   (KILN_BENCH_ROUNDS, default 7)
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { copyFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { debianBase } from '../helpers/debian-base.ts'
import { makeUnprivileged } from '../helpers/unprivileged.ts'
import { hostFakeroot } from '../../src/builder/sandbox/fakeroot.ts'

const rounds = Number(process.env.KILN_BENCH_ROUNDS ?? '7')
const base = debianBase()
if (base === undefined || spawnSync('bwrap', ['--version']).status !== 0 || hostFakeroot().pieces === undefined) {
  console.log(`ledger bench skipped: it needs the Debian base (${base === undefined ? 'missing, and making it needs root' : 'ok'}), bwrap, fakeroot and busybox-static (${hostFakeroot().refusal ?? 'ok'})`)
  process.exit(0)
}
const load = (): string => loadavg().map(l => l.toFixed(2)).join(' ')
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN }

const u = makeUnprivileged()
try {
  mkdirSync(join(u.root, 'test/bench'), { recursive: true })
  copyFileSync(join(import.meta.dirname, '_ledger-host.ts'), join(u.root, 'test/bench/_ledger-host.ts'))
  const work = join(u.work, 'ledger')
  mkdirSync(work)
  u.give(work)
  const before = load()
  const r = u.exec(join(u.root, 'node_modules/.bin/node'), ['--disable-warning=ExperimentalWarning', join(u.root, 'test/bench/_ledger-host.ts'), base, work, String(rounds)], { timeoutMs: 1_200_000 })
  if (r.status !== 0) throw new Error(`the bench child failed (${String(r.status)}): ${r.stderr.slice(-3000)}`)
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { times: Record<string, Record<string, number[]>>, readHeadersMs: number, stateFileMs: number, stateRecords: number, applyMs: number }
  console.log(`ledger bench: ${rounds} rounds per step and mode, uid ${u.uid}, bwrap on an overlay of the Debian 12 base; load average ${before} before, ${load()} after`)
  for (const [name, modes] of Object.entries(out.times)) {
    const plain = median(modes.plain ?? []); const ledger = median(modes.ledger ?? [])
    console.log(`  RUN ${name.padEnd(8)} plain ${plain.toFixed(0).padStart(6)} ms   ledger ${ledger.toFixed(0).padStart(6)} ms   ledger/plain ${(ledger / plain).toFixed(2)}x   (+${(ledger - plain).toFixed(0)} ms)`)
  }
  console.log(`  builder: base layer's owners from its tar headers ${out.readHeadersMs.toFixed(0)} ms (once per layer and process); state file of ${out.stateRecords} records ${out.stateFileMs.toFixed(0)} ms per step; ledger applied to the useradd layer ${out.applyMs.toFixed(0)} ms`)
} finally {
  u.cleanup()
}
