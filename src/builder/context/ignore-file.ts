/**
 * Which ignore file a build honours, as BuildKit chooses: the recipe's own
 * `<recipe file name>.dockerignore` in the recipe's directory (e.g.
 * `build/app.Dockerfile.dockerignore` for `-f build/app.Dockerfile`) wins
 * over the context's `.dockerignore`; with neither, nothing is excluded.
 */
import { readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { isErrno } from '../../util/fs.ts'
import { NO_IGNORE_RULES, parseIgnoreFile } from './rules.ts'
import type { IgnoreRules } from './rules.ts'

export const CONTEXT_IGNORE_FILE = '.dockerignore'

export interface ReadIgnoreOptions {
  /** Path of the recipe file; its `<name>.dockerignore` beside it comes first. */
  recipeFile?: string
  signal?: AbortSignal
}

/** The ignore files that would apply, most specific first. */
export function ignoreFileCandidates (contextDir: string, recipeFile?: string): string[] {
  const own = recipeFile === undefined ? [] : [join(dirname(recipeFile), `${basename(recipeFile)}${CONTEXT_IGNORE_FILE}`)]
  return [...own, join(contextDir, CONTEXT_IGNORE_FILE)]
}

/**
 * The rules for a build of contextDir. A missing file is no rules; any
 * other read failure is thrown (a secret must not slip into a build because
 * its ignore file could not be read), and so is IgnorePatternError.
 */
export async function readContextIgnore (contextDir: string, options: ReadIgnoreOptions = {}): Promise<IgnoreRules> {
  for (const file of ignoreFileCandidates(contextDir, options.recipeFile)) {
    let text: string
    try {
      text = await readFile(file, { encoding: 'utf8', ...(options.signal !== undefined ? { signal: options.signal } : {}) })
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue
      throw err
    }
    return parseIgnoreFile(text, file)
  }
  return NO_IGNORE_RULES
}
