/**
 * How Apptainer's actions start inside an image (its
 * `/.singularity.d/actions/*` scripts): first every
 * `/.singularity.d/env/*.sh` is sourced, in name order, then the action's
 * script runs. The builder's entrypoint for Apptainer images (`run`) and the
 * front end's `%test` check (`test`) share this text.
 */

/** Shell text sourcing the image's environment scripts, as every Apptainer action does first. */
export const SOURCE_ENVIRONMENT = 'for f in /.singularity.d/env/*.sh; do [ -r "$f" ] && . "$f"; done'

/** Where `%test` is kept; `apptainer test` executes it. */
export const TEST_SCRIPT = '/.singularity.d/test'

/** What `apptainer test` runs: the environment, then the test script. */
export const TEST_COMMAND = `${SOURCE_ENVIRONMENT}; exec ${TEST_SCRIPT}`

/** Single-quotes a string for /bin/sh. */
export function shellQuote (value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`
}
