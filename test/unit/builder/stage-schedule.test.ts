/**
 * The stage scheduler (src/builder/stage-schedule.ts): a stage starts once
 * the stages it reads from are done, at most `limit` run at once, and the
 * first failure stops the others and is what the build throws.
 */
import { describe, expect, it } from 'vitest'
import { parseRecipe } from '../../../src/recipe/index.ts'
import type { Stage } from '../../../src/recipe/index.ts'
import { runStages } from '../../../src/builder/stage-schedule.ts'

const stagesOf = (text: string): Stage[] => parseRecipe(text, { filename: 'Dockerfile' }).stages

/** Runs every stage as a task that ends when the test releases it; records what ran when. */
function harness (): { run: (stage: Stage, signal: AbortSignal) => Promise<void>, started: number[], running: () => number[], finish: (index: number, err?: Error) => void, peak: () => number, signals: Map<number, AbortSignal> } {
  const started: number[] = []
  const live = new Map<number, { resolve: () => void, reject: (err: Error) => void }>()
  const signals = new Map<number, AbortSignal>()
  let peak = 0
  return {
    started,
    signals,
    running: () => [...live.keys()],
    peak: () => peak,
    run: async (stage, signal) => {
      started.push(stage.index)
      signals.set(stage.index, signal)
      peak = Math.max(peak, live.size + 1)
      await new Promise<void>((resolve, reject) => {
        live.set(stage.index, { resolve, reject })
        signal.addEventListener('abort', () => { reject(new Error(`stage ${stage.index} stopped`)) }, { once: true })
      }).finally(() => { live.delete(stage.index) })
    },
    finish: (index, err) => {
      const l = live.get(index)
      if (l === undefined) throw new Error(`stage ${index} is not running`)
      if (err === undefined) l.resolve()
      else l.reject(err)
    }
  }
}

const tick = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) }

const FOUR_AND_FINAL = [
  'FROM scratch AS a\nCOPY a /a',
  'FROM scratch AS b\nCOPY b /b',
  'FROM scratch AS c\nCOPY c /c',
  'FROM scratch AS d\nCOPY d /d',
  'FROM a\nCOPY --from=b /b /b\nCOPY --from=c /c /c\nCOPY --from=d /d /d',
  ''
].join('\n')

describe('runStages', () => {
  it('runs independent stages at once, up to the limit, and a stage only after those it reads from', async () => {
    const stages = stagesOf(FOUR_AND_FINAL)
    expect(stages.map(s => s.index)).toEqual([0, 1, 2, 3, 4])
    const h = harness()
    const done = runStages(stages, 2, h.run, new AbortController())
    await tick()
    expect(h.running().sort()).toEqual([0, 1])
    h.finish(1)
    await tick()
    expect(h.running().sort()).toEqual([0, 2])
    h.finish(0)
    h.finish(2)
    await tick()
    // The final stage reads from all four: it waits for d even though a slot is free.
    expect(h.running()).toEqual([3])
    h.finish(3)
    await tick()
    expect(h.running()).toEqual([4])
    h.finish(4)
    await done
    expect(h.started).toEqual([0, 1, 2, 3, 4])
    expect(h.peak()).toBe(2)
  })

  it('with a limit of 1 builds the stages one after another, in recipe order', async () => {
    const h = harness()
    const stages = stagesOf(FOUR_AND_FINAL)
    const done = runStages(stages, 1, h.run, new AbortController())
    for (const i of [0, 1, 2, 3, 4]) {
      await tick()
      expect(h.running()).toEqual([i])
      h.finish(i)
    }
    await done
    expect(h.peak()).toBe(1)
  })

  it('the first failure aborts the running stages, starts no other, and is the one thrown', async () => {
    const h = harness()
    const stop = new AbortController()
    const done = runStages(stagesOf(FOUR_AND_FINAL), 2, h.run, stop)
    await tick()
    h.finish(1, new Error('RUN failed in b'))
    await expect(done).rejects.toThrow('RUN failed in b')
    expect(stop.signal.aborted).toBe(true)
    expect(h.signals.get(0)?.aborted).toBe(true)
    expect(h.started.sort()).toEqual([0, 1])
  })
})
