/** Limits and defaults of the recipe front-ends. */

/** Largest recipe text accepted, in characters: recipes are code, not data. */
export const MAX_RECIPE_LENGTH = 1024 * 1024

/** Most stages a recipe may declare. */
export const MAX_STAGES = 128

/** Shell used for RUN / CMD / ENTRYPOINT shell forms until SHELL changes it (Dockerfile reference). */
export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c']

/** PATH a stage expands `$PATH` against when its base sets none (BuildKit's default for Linux). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Target platform when the caller gives none. */
export const DEFAULT_PLATFORM = 'linux/amd64'

/** Suggestions ("did you mean RUN?") are offered within this edit distance. */
export const MAX_SUGGESTION_DISTANCE = 2
