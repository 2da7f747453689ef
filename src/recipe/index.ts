/**
 * Recipe front-ends: a Dockerfile (BuildKit syntax) or an Apptainer
 * definition file, given as text, becomes a BuildPlan (see ./ir.ts) that the
 * builder executes. Pure code: no I/O; the caller reads the file.
 *
 * Terms (see ./ir.ts): plan, stage, step, canonical form.
 *
 * Errors are RecipeError subclasses carrying file, line, column and a hint;
 * branch on `name` (UnsupportedFeatureError, UnknownStageError...).
 *
 * @example
 * ```ts
 * const plan = parseRecipe(text, { filename: 'Dockerfile', buildArgs: { BASE: 'oci:/x:base' }, target: 'runtime' })
 * for (const stage of plan.stages) for (const step of stage.steps) console.log(step.canonical)
 * ```
 */
import { parseApptainer } from './apptainer/index.ts'
import { detectFrontend } from './detect.ts'
import { parseDockerfile } from './dockerfile/index.ts'
import type { BuildPlan } from './ir.ts'
import type { ParseOptions } from './options.ts'

export type * from './ir.ts'
export type { LocalImageKind, ParseOptions } from './options.ts'
export * from './errors.ts'
export { detectFrontend } from './detect.ts'
export { parseDockerfile, parseOnBuildTriggers } from './dockerfile/index.ts'
export type { TriggerOptions } from './dockerfile/index.ts'
export { parseApptainer, normalizeDockerName, SOURCE_ENVIRONMENT, TEST_SCRIPT } from './apptainer/index.ts'
export { imageRefsOf, mapImageRefs } from './image-refs.ts'
export { stageDependencies } from './prune.ts'
export { DEFAULT_PATH, DEFAULT_PLATFORM, DEFAULT_SHELL, MAX_RECIPE_LENGTH, MAX_STAGES } from './constants.ts'

/** Parses a recipe with the front-end named in options, or the detected one. */
export function parseRecipe (text: string, options: ParseOptions = {}): BuildPlan {
  const frontend = options.frontend ?? detectFrontend(options.filename, text)
  return frontend === 'apptainer' ? parseApptainer(text, options) : parseDockerfile(text, options)
}
