/**
 * kiln's heap tuning (src/util/heap.ts): streaming fresh Buffers through a
 * process must not set off a full collection per 64 MiB of them.
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const heapModule = join(import.meta.dirname, '..', '..', '..', 'src', 'util', 'heap.ts')

/** Major (mark-compact) collections while 1 GiB passes through 1 MiB Buffers, a few alive at a time. */
function majorCollections (tuned: boolean): number {
  const script = `
    import { PerformanceObserver, constants } from 'node:perf_hooks'
    ${tuned ? `import { tuneHeapForBulkData } from ${JSON.stringify(heapModule)}; tuneHeapForBulkData()` : ''}
    let majors = 0
    const obs = new PerformanceObserver(list => { for (const e of list.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++ })
    obs.observe({ entryTypes: ['gc'] })
    const live = []
    for (let i = 0; i < 1024; i++) { live.push(Buffer.allocUnsafe(1 << 20).fill(i)); if (live.length > 8) live.shift() }
    await new Promise(resolve => setTimeout(resolve, 100))
    console.log(majors)
  `
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(r.stderr)
  return Number(r.stdout.trim())
}

describe('tuneHeapForBulkData', () => {
  it('cuts the full collections that 1 GiB of short-lived Buffers sets off', () => {
    const stock = majorCollections(false)
    const tuned = majorCollections(true)
    expect(stock).toBeGreaterThanOrEqual(8)
    expect(tuned).toBeLessThanOrEqual(stock / 4)
  })
})
