import type { Stage } from './ir.ts'

/** Indexes of the stages a stage reads from: its base, every copy source and every RUN bind mount's. */
export function stageDependencies (stage: Stage): number[] {
  const deps: number[] = []
  if (stage.base.kind === 'stage') deps.push(stage.base.stage)
  for (const step of stage.steps) {
    if (step.op === 'copy' && step.from.kind === 'stage') deps.push(step.from.stage)
    if (step.op === 'run') {
      for (const m of step.mounts ?? []) if (m.type === 'bind' && m.from.kind === 'stage') deps.push(m.from.stage)
    }
  }
  return deps
}

/**
 * The stages the target needs (itself included), in recipe order; stages
 * after the target and stages nothing reads from are dropped.
 */
export function pruneStages (stages: readonly Stage[], target: number): Stage[] {
  const byIndex = new Map(stages.map(s => [s.index, s]))
  const needed = new Set<number>()
  const pending = [target]
  while (pending.length > 0) {
    const index = pending.pop()
    if (index === undefined || needed.has(index)) continue
    needed.add(index)
    const stage = byIndex.get(index)
    if (stage !== undefined) pending.push(...stageDependencies(stage))
  }
  return stages.filter(s => needed.has(s.index))
}
