/**
 * The Apptainer definition-file front-end: headers, sections and
 * `{{ var }}` templates to a build plan: SCIF apps (./apps.ts), %test as a
 * check at the end of its stage, %setup inside the sandbox, and
 * `Bootstrap: debootstrap` bases (./debootstrap.ts).
 *
 * @example
 * ```ts
 * const plan = parseApptainer(text, { filename: 'app.def', buildArgs: { VERSION: '2' } })
 * ```
 */
export { parseApptainer } from './parse.ts'
export { normalizeDockerName } from './base-ref.ts'
export { SOURCE_ENVIRONMENT, TEST_SCRIPT } from './in-image.ts'
