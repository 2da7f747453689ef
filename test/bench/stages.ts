/**
 * Parallel stages benchmark: a recipe of 4 independent stages and a final
 * stage that copies from all of them, built by `kiln build --no-cache` with
 * `--jobs 1` (one stage after another: the reference) and with the default
 * (as many stages at once as cores), in the same run, as uid 65534 when run
 * as root (through the copy the e2e tests use). Each stage's RUN waits 2 s
 * (what a download is to a real stage) and compresses 64 MiB (CPU). Prints
 * the median of 3 runs each and the ratio; goal (issue 21 item 3): <= 0.6.
 *
 * Run: npm run bench -- stages
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { makeBusyboxBase } from '../helpers/busybox-base.ts'
import { makeUnprivileged } from '../helpers/unprivileged.ts'

const RUNS = 3
const load = (): string => loadavg().map(l => l.toFixed(2)).join(' ')
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

const u = makeUnprivileged()
try {
  console.log(`load average at start: ${load()}; ${availableParallelism()} cores`)
  const layout = makeBusyboxBase(u)
  const stage = (name: string): string => [
    `FROM oci:${layout}:base AS ${name}`,
    `RUN sleep 2 && dd if=/dev/zero bs=1M count=64 2>/dev/null | gzip -6 > /${name}.gz && echo ${name} > /${name}.txt`
  ].join('\n')
  const names = ['one', 'two', 'three', 'four']
  const dockerfile = [...names.map(stage), `FROM oci:${layout}:base`, ...names.map(n => `COPY --from=${n} /${n}.txt /${n}.txt`), ''].join('\n')
  const ctx = join(u.work, 'ctx')
  mkdirSync(ctx)
  writeFileSync(join(ctx, 'Dockerfile'), dockerfile)
  u.give(ctx)
  const build = (jobs: string[]): number => {
    const t0 = performance.now()
    const r = u.kiln(['build', '--no-cache', ...jobs, ctx], { timeoutMs: 600_000 })
    if (r.status !== 0) throw new Error(`kiln build ${jobs.join(' ')} failed (${String(r.status)}): ${r.stderr.slice(-2000)}`)
    return (performance.now() - t0) / 1000
  }
  build([]) // warm: the base unpacked, the sandbox probed
  const sequential: number[] = []
  const parallel: number[] = []
  for (let i = 0; i < RUNS; i++) {
    sequential.push(build(['--jobs', '1']))
    parallel.push(build([]))
  }
  console.log(`kiln --jobs 1           ${median(sequential).toFixed(2)} s  (runs: ${sequential.map(s => s.toFixed(2)).join(', ')})`)
  console.log(`kiln (default: ${availableParallelism()} at once) ${median(parallel).toFixed(2)} s  (runs: ${parallel.map(s => s.toFixed(2)).join(', ')})`)
  console.log(`ratio parallel/sequential ${(median(parallel) / median(sequential)).toFixed(2)} (goal <= 0.6)`)
  console.log(`load average at end: ${load()}`)
} finally {
  u.cleanup()
}
