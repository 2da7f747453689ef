/**
 * Build contexts for the e2e tests: a fresh directory under the
 * unprivileged user's work dir (test/helpers/unprivileged.ts), owned by
 * that user, holding a recipe and other files.
 *
 * @example
 * ```ts
 * const context = (dockerfile: string, files?: Record<string, string>): string =>
 *   makeContext(u, { Dockerfile: dockerfile, ...files }, { LAYOUT: layout })
 * u.kiln(['build', context('FROM oci:LAYOUT:base\nCOPY a.txt /\n', { 'a.txt': 'hello\n' })])
 * ```
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Unprivileged } from './unprivileged.ts'

/** The recipes a context may hold: placeholders are replaced in these files only. */
const RECIPES = new Set(['Dockerfile', 'Containerfile', 'Singularity.def'])

/**
 * Writes `files` (path in the context → content; parent directories made) into
 * a new directory `<u.work>/<name>-XXXXXX` and gives it to the user. In the
 * recipe files, every occurrence of a key of `replace` (e.g. `LAYOUT`) is
 * replaced by its value. Returns the directory.
 */
export function makeContext (u: Unprivileged, files: Record<string, string | Uint8Array>, replace: Record<string, string> = {}, name = 'ctx'): string {
  const ctx = mkdtempSync(join(u.work, `${name}-`))
  for (const [path, text] of Object.entries(files)) {
    const file = join(ctx, path)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, RECIPES.has(path) && typeof text === 'string' ? replaceAll(text, replace) : text)
  }
  u.give(ctx)
  return ctx
}

function replaceAll (text: string, replace: Record<string, string>): string {
  return Object.entries(replace).reduce((t, [from, to]) => t.replaceAll(from, to), text)
}
