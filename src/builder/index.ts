/**
 * The rootless builder: turns a BuildPlan (src/recipe) into an OCI image in
 * the content store, running RUN steps in a sandbox (src/builder/sandbox) as
 * an ordinary user, one layer per filesystem step, with a step cache in the
 * store's database and reproducible output (SOURCE_DATE_EPOCH, default 0).
 *
 * Terms: a step's *key* hashes its parent's key, its canonical text and its
 * inputs (context file hashes, stage keys, env, platform); a *snapshot* is
 * the overlay upper dir a step left, kept under workDir/snapshots/k-<key>
 * as a lower dir for the steps after it (a snapshot under
 * workDir/snapshots/<diffID hex>, as src/export imports them, serves a
 * cache hit too).
 *
 * The step cache (createStepCache: get/put/list of key -> layer records) is
 * the API for whoever moves cache records between stores (src/export); a
 * `remoteCache` on the builder is asked for the steps the local one lacks.
 *
 * Every build holds a build lock on its work dir (./build-locks.ts) while it
 * runs, so that scratch sweeping and snapshot collection (./stale-scratch.ts,
 * ./snapshots.ts) never remove what a live build uses.
 *
 * @example
 * ```ts
 * const builder = createBuilder({ store: local.content, db: local.db, refs: local.refs, workDir: join(dataDir, 'build') })
 * const plan = parseRecipe(text, { filename: 'Dockerfile' })
 * const contextIgnore = await readContextIgnore('.', { recipeFile: 'Dockerfile' })
 * const result = await builder.build(plan, { contextDir: '.', contextIgnore, onEvent: e => { ... } })
 * local.refs.set('app', 'latest', result.descriptor)
 * ```
 */
import { createBuilder as createUnlockedBuilder } from './builder.ts'
import { lockingBuilder } from './build-locks.ts'
import type { Builder, BuilderInit } from './types.ts'

export function createBuilder (init: BuilderInit): Builder {
  return lockingBuilder(createUnlockedBuilder(init), init.workDir)
}
export { instructionText, instructionSummary } from './instruction-text.ts'
export { checkPlanRuns, planRecipe, runRecipe } from './run-recipe.ts'
export type { RecipeLogLine, RecipeRequest, RecipeRun, RunRecipeOptions } from './run-recipe.ts'
export type * from './types.ts'
export * from './errors.ts'
export { resolveBase } from './base.ts'
export { ContainerSetupError, runContainer } from './container.ts'
export type { ContainerOptions, ContainerResult, VolumeSpec } from './container.ts'
export type { BaseResolverInit, PullPolicy, ResolvedBase } from './base.ts'
export { createSandbox, probeSandboxes } from './sandbox/index.ts'
export { readContextIgnore, parseIgnoreFile, NO_IGNORE_RULES, IgnorePatternError } from './context/index.ts'
export type { IgnoreRules } from './context/index.ts'
export type { Sandbox, SandboxDriverName, HostProbe, DriverProbe } from './sandbox/index.ts'
