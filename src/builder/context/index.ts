/**
 * The build context a build sees: a directory less what its ignore file
 * excludes, with Docker's rules (./patterns.ts) and BuildKit's choice of
 * file (`<recipe>.dockerignore` beside the recipe, else the context's
 * `.dockerignore`; ./ignore-file.ts).
 *
 * One implementation for both ways a context is used: `kiln build` reads
 * COPY/ADD sources through it (src/builder/context-files.ts), and `kiln
 * submit` packs exactly these entries into the context tar that agents
 * build (src/requester/context-pack.ts). It lives under src/builder, not
 * src/recipe or src/requester, because it reads the filesystem (the recipe
 * front-ends are pure text) and because the requester may depend on the
 * builder's modules while the builder must not depend on the requester.
 *
 * Terms: see ./patterns.ts (path, pattern, exception, excluded) and
 * ./walk.ts (the entries a build sees).
 *
 * @example
 * ```ts
 * const rules = await readContextIgnore(contextDir, { recipeFile: 'ctx/Dockerfile' })
 * for await (const e of walkContext(contextDir, rules)) console.log(e.type, e.path)
 * ```
 */
export { readContextIgnore, ignoreFileCandidates, CONTEXT_IGNORE_FILE } from './ignore-file.ts'
export type { ReadIgnoreOptions } from './ignore-file.ts'
export { parseIgnoreFile, NO_IGNORE_RULES } from './rules.ts'
export type { IgnoreRules } from './rules.ts'
export type { IgnorePattern } from './patterns.ts'
export { walkContext, listContext, isVisible } from './walk.ts'
export type { ContextEntry, WalkOptions } from './walk.ts'
export { IgnorePatternError } from './errors.ts'
