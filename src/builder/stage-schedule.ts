/**
 * When the stages of a build run: a stage starts once every stage it reads
 * from (its `FROM <stage>`, `COPY --from`, `RUN --mount from=`; see
 * src/recipe/prune.ts) has finished, with at most `limit` stages running at
 * once, ready stages taken in recipe order. Independent stages of a
 * multi-stage recipe so run side by side, as BuildKit runs them.
 *
 * The first stage to fail aborts `stop` (the build's signal, which the
 * sandboxes of running steps follow), the others are waited for, and that
 * first failure is thrown.
 */
import type { Stage } from '../recipe/ir.ts'
import { stageDependencies } from '../recipe/index.ts'

export async function runStages (
  stages: readonly Stage[],
  limit: number,
  run: (stage: Stage, signal: AbortSignal) => Promise<void>,
  stop: AbortController
): Promise<void> {
  const done = new Map<number, Promise<void>>()
  let running = 0
  const waiting: Array<() => void> = []
  const acquire = async (): Promise<void> => {
    while (running >= Math.max(1, limit)) await new Promise<void>(resolve => { waiting.push(resolve) })
    running++
  }
  const release = (): void => {
    running--
    waiting.shift()?.()
  }
  let failed = false
  let first: unknown
  for (const stage of stages) {
    // Recipes name earlier stages only; a later or missing one is reported by the stage itself when it reads it.
    const deps = stageDependencies(stage).map(i => done.get(i)).filter(p => p !== undefined)
    const p = (async () => {
      await Promise.all(deps)
      await acquire()
      try {
        stop.signal.throwIfAborted()
        await run(stage, stop.signal)
      } finally {
        release()
      }
    })()
    p.catch((err: unknown) => {
      if (failed) return
      failed = true
      first = err
      stop.abort(err)
    })
    done.set(stage.index, p)
  }
  await Promise.allSettled(done.values())
  if (failed) throw first
}
