/**
 * One recipe, run: parse it for a platform and target, build the plan, and
 * turn the builder's events into log lines. `kiln build`, the gateway's local
 * builds (src/node) and the agent's jobs (agent/jobs) all go through here,
 * so a build says the same thing wherever it runs.
 *
 * Terms: a *recipe request* is the recipe text with the name it was read
 * under, its front-end when known, build args, target and platform; a *log
 * line* is one line for a person, already formatted (`[2/5] RUN ...`,
 * `  cached`, `warning: ...`, or one line of a step's output), with its kind
 * so that a sink can send step lines and output to different places.
 *
 * @example
 * ```ts
 * const { result } = await runRecipe(builder, { recipe: { text, file: 'Dockerfile' } }, {
 *   contextDir: '.', onLine: line => { console.log(line.text) }
 * })
 * ```
 */
import { TextDecoder } from 'node:util'
import { parseRecipe } from '../recipe/index.ts'
import type { BuildPlan } from '../recipe/index.ts'
import { instructionSummary } from './instruction-text.ts'
import type { BuildEvent, BuildOptions, BuildResult, Builder } from './types.ts'

export interface RecipeRequest {
  /** `file` is the name the recipe was read under (it picks the front-end when `kind` is absent). */
  recipe: { text: string, file: string, kind?: 'dockerfile' | 'apptainer' }
  buildArgs?: Record<string, string>
  /** Stage name or index; default the last. */
  target?: string
  /** os/arch[/variant]; default the host's. */
  platform?: string
  /** Apptainer: leave %test out (`kiln build --notest`). */
  skipTest?: boolean
}

export type RecipeLogLine =
  /** `instruction`: the step's full text (may span lines); `text` shows its summary. */
  | { kind: 'step', text: string, index: number, total: number, instruction: string }
  | { kind: 'output' | 'warning' | 'cached', text: string }

export interface RunRecipeOptions extends Omit<BuildOptions, 'platform' | 'onEvent'> {
  /**
   * Called with the plan before anything runs; throwing refuses the build
   * (e.g. bases a job may not use). A plan returned is built instead (e.g.
   * with pinned bases put in).
   */
  admit?: (plan: BuildPlan) => BuildPlan | undefined
  onLine?: (line: RecipeLogLine) => void
}

export interface RecipeRun {
  plan: BuildPlan
  result: BuildResult
}

/**
 * The plan of a request: what `runRecipe` builds, and what `--dry-run` prints. Throws RecipeError subclasses.
 * `baseEnv` gives the environment of a base image by its name in the recipe (see `runRecipe`).
 */
export function planRecipe (request: RecipeRequest, baseEnv?: (ref: string) => Record<string, string> | undefined): BuildPlan {
  return parseRecipe(request.recipe.text, {
    ...(baseEnv !== undefined ? { baseEnv } : {}),
    filename: request.recipe.file,
    ...(request.recipe.kind !== undefined ? { frontend: request.recipe.kind } : {}),
    buildArgs: request.buildArgs ?? {},
    ...(request.target !== undefined ? { target: request.target } : {}),
    ...(request.platform !== undefined ? { platform: request.platform } : {}),
    ...(request.skipTest === true ? { skipTest: true } : {})
  })
}

/**
 * Throws UnsupportedStepError, before anything is built, when the plan has a
 * RUN in a stage whose platform (its `FROM --platform`, else `platform`)
 * this node cannot run: what a build of several platforms checks first, so
 * that one platform it cannot build does not fail it after the others.
 */
export async function checkPlanRuns (plan: BuildPlan, platform: string): Promise<void> {
  const [{ parsePlatform }, { checkRunnable }] = await Promise.all([import('../oci/index.ts'), import('./executor/run.ts')])
  for (const stage of plan.stages) {
    const run = stage.steps.find(s => s.op === 'run')
    if (run !== undefined) checkRunnable(parsePlatform(stage.platform ?? platform), run.source)
  }
}

/**
 * Parses, admits and builds one request; log lines go to `options.onLine` as they come.
 *
 * A Dockerfile is parsed twice when its bases have an environment: ENV and
 * the instructions after it expand `$PATH` and the like against the base
 * image's config, as BuildKit does, and the bases are only known once the
 * first parse has named them (and `admit` has pinned them). The builder
 * resolves them (what the build would do first anyway), then the recipe is
 * parsed again with their environments and admitted again.
 */
export async function runRecipe (builder: Builder, request: RecipeRequest, options: RunRecipeOptions): Promise<RecipeRun> {
  const { admit: _admit, onLine, ...build } = options
  const buildOptions = { ...build, ...(request.platform !== undefined ? { platform: request.platform } : {}) }
  const admit = (p: BuildPlan): BuildPlan => options.admit?.(p) ?? p
  const parsed = planRecipe(request)
  let plan = admit(parsed)
  const lines = logLines(onLine ?? (() => {}))
  try {
    if (plan.frontend === 'dockerfile' && builder.baseEnvs !== undefined && plan.stages.some(s => s.base.kind === 'image')) {
      const envs = await builder.baseEnvs(plan, { ...buildOptions, onEvent: lines.onEvent })
      if ([...envs.values()].some(e => Object.keys(e).length > 0)) {
        // By the name the recipe gives the base (admit may have pinned it): both parses have the same stages.
        const byRef = new Map<string, Record<string, string>>()
        parsed.stages.forEach((s, i) => { const env = envs.get(i); if (s.base.kind === 'image' && env !== undefined) byRef.set(s.base.ref, env) })
        plan = admit(planRecipe(request, ref => byRef.get(ref)))
      }
    }
    const result = await builder.build(plan, { ...buildOptions, onEvent: lines.onEvent })
    return { plan, result }
  } finally {
    lines.flush()
  }
}

/**
 * Build events as log lines: output is cut at newlines, per step, and a
 * step's unfinished last line is sent when it ends. While steps of several
 * stages run at once, their output lines are prefixed with the step's
 * number (`[3] ...`), so interleaved lines still say whose they are.
 */
function logLines (sink: (line: RecipeLogLine) => void): { onEvent: (e: BuildEvent) => void, flush: () => void } {
  /** Running steps (by index) and their unfinished line. */
  const open = new Map<number, { decoder: TextDecoder, partial: string }>()
  const prefix = (index: number): string => open.size > 1 && index >= 0 ? `[${index}] ` : ''
  const end = (index: number): void => {
    const o = open.get(index)
    if (o === undefined) return
    const text = o.partial + o.decoder.decode()
    if (text !== '') sink({ kind: 'output', text: prefix(index) + text })
    open.delete(index)
  }
  const flush = (): void => { for (const index of [...open.keys()]) end(index) }
  return {
    flush,
    onEvent: (e) => {
      if (e.type === 'step') {
        open.set(e.index, { decoder: new TextDecoder(), partial: '' })
        sink({ kind: 'step', text: `[${e.index}/${e.total}] ${instructionSummary(e.text)}`, index: e.index, total: e.total, instruction: e.text })
      } else if (e.type === 'output') {
        // Output of no known step (a bootstrap before the first step): a stream of its own, index -1.
        const index = e.index ?? -1
        let o = open.get(index)
        if (o === undefined) { o = { decoder: new TextDecoder(), partial: '' }; open.set(index, o) }
        const parts = (o.partial + o.decoder.decode(e.chunk, { stream: true })).split('\n')
        o.partial = parts.pop() ?? ''
        for (const text of parts) sink({ kind: 'output', text: prefix(index) + text })
      } else if (e.type === 'step-done') {
        end(e.index)
        end(-1)
        if (e.cached) sink({ kind: 'cached', text: '  cached' })
      } else if (e.type === 'warning') {
        sink({ kind: 'warning', text: `warning: ${e.message}` })
      }
    }
  }
}
