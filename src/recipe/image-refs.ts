/**
 * The images a plan names: each stage's base image (`FROM`, Apptainer
 * `Bootstrap`/`From`) and each `COPY --from=IMAGE`, as containers-transports
 * references after substitution. Earlier stages and `scratch` are not images.
 * A requester pins these refs to digests before it signs a job, and a builder
 * rewrites them to the pinned digests (protocols/job.md §3.1).
 */
import type { BuildPlan, Stage, Step } from './ir.ts'

/** The distinct image refs of a plan, in recipe order. */
export function imageRefsOf (plan: BuildPlan): string[] {
  const refs = new Set<string>()
  mapImageRefs(plan, ref => { refs.add(ref); return ref })
  return [...refs]
}

/** A copy of the plan with every image ref replaced by `map(ref)`; the steps' canonical text stays as written. */
export function mapImageRefs (plan: BuildPlan, map: (ref: string) => string): BuildPlan {
  const step = (s: Step): Step => s.op === 'copy' && s.from.kind === 'image' ? { ...s, from: { kind: 'image', ref: map(s.from.ref) } } : s
  const stage = (s: Stage): Stage => ({
    ...s,
    base: s.base.kind === 'image' ? { kind: 'image', ref: map(s.base.ref) } : s.base,
    steps: s.steps.map(step)
  })
  return { ...plan, stages: plan.stages.map(stage) }
}
