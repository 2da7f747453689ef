/**
 * The Apptainer definition-file front-end: headers, sections and
 * `{{ var }}` templates to a build plan. %setup is refused unless allowed.
 *
 * @example
 * ```ts
 * const plan = parseApptainer(text, { filename: 'app.def', buildArgs: { VERSION: '2' } })
 * ```
 */
export { parseApptainer } from './parse.ts'
export { normalizeDockerName } from './base-ref.ts'
