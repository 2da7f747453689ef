/**
 * The Dockerfile front-end: BuildKit's Dockerfile syntax to a build plan.
 *
 * @example
 * ```ts
 * const plan = parseDockerfile(text, { filename: 'Dockerfile', buildArgs: { BASE: 'oci:/x:base' } })
 * ```
 */
export { parseDockerfile, parseOnBuildTriggers } from './parse.ts'
export type { TriggerOptions } from './onbuild.ts'
