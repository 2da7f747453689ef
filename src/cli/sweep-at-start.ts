/**
 * What `kiln build`, `kiln agent`, `kiln up` and `kiln gateway` do first:
 * remove the scratch a killed kiln left behind (src/builder/stale-scratch.ts).
 * It never fails the command: what cannot be removed now is tried again at
 * the next start.
 */
import type { Logger } from 'pino'

export async function sweepAtStart (dataDir: string, log?: Logger): Promise<void> {
  const { sweepStaleScratch } = await import('../builder/stale-scratch.ts')
  try {
    const removed = await sweepStaleScratch({ dataDir })
    if (removed.length > 0) log?.info({ removed }, `removed ${removed.length} stale scratch dir(s) of a kiln that was killed`)
  } catch (err) {
    log?.warn({ err: (err as Error).message }, 'sweeping stale scratch failed')
  }
}
