/**
 * ONBUILD: a *trigger* is an instruction recorded, as written and not
 * substituted, in the image config's `OnBuild` list; it runs in a later
 * build whose stage starts FROM that image, right after the FROM
 * (https://docs.docker.com/reference/dockerfile/#onbuild). Docker refuses
 * ONBUILD ONBUILD, ONBUILD FROM and ONBUILD MAINTAINER; so does kiln.
 *
 * `parseTriggers` reads a base's triggers with the same front end as the
 * recipe, as the instructions of a stage: errors name the base and the
 * trigger (its 1-based position in the list is the line).
 */
import { RecipeError, RecipeSyntaxError } from '../errors.ts'
import type { SourceLoc, Step } from '../ir.ts'
import type { ParseOptions } from '../options.ts'
import type { Instruction } from './context.ts'

const REFUSED = new Set(['ONBUILD', 'FROM', 'MAINTAINER'])

export function handleOnBuild (ins: Instruction): void {
  const trigger = ins.raw.args.trim()
  const keyword = (/^\S+/.exec(trigger)?.[0] ?? '').toUpperCase()
  if (keyword === '') throw ins.syntaxError('requires an instruction', 'ONBUILD RUN make')
  if (REFUSED.has(keyword)) throw ins.syntaxError(`${keyword} isn't allowed as an ONBUILD trigger`)
  if (ins.raw.heredocs.length > 0) throw ins.syntaxError('a trigger cannot hold a heredoc', 'write the file into the context and COPY it')
  ins.add({ op: 'onbuild', trigger, source: ins.loc })
}

/** How parseTriggers reads a base's triggers. */
export interface TriggerOptions extends Pick<ParseOptions, 'buildArgs' | 'platform' | 'buildPlatform'> {
  /** The base image as the recipe names it, for messages. */
  base: string
  /** The base's environment (its config's Env), which triggers substitute from as any step after FROM does. */
  env?: Record<string, string>
}

type Parse = (text: string, options: ParseOptions) => { stages: Array<{ steps: Step[] }> }

/**
 * The steps of a base's triggers. Each trigger is one line after a FROM
 * that the parse needs but the steps do not keep, so line n + 1 is
 * trigger n; locations are moved back to say "trigger n of base".
 */
export function parseTriggers (triggers: readonly string[], options: TriggerOptions, parse: Parse): Step[] {
  const file = `ONBUILD trigger of ${options.base}`
  const at = (line: number): SourceLoc => ({ file, line: line - 1 })
  const { base: _base, env, ...rest } = options
  for (const [i, t] of triggers.entries()) {
    if (t.includes('\n')) throw new RecipeSyntaxError({ file, line: i + 1 }, 'a trigger must be one line')
    const keyword = (/^\S+/.exec(t.trim())?.[0] ?? '').toUpperCase()
    if (REFUSED.has(keyword)) throw new RecipeSyntaxError({ file, line: i + 1 }, `${keyword} isn't allowed as an ONBUILD trigger`)
  }
  try {
    const plan = parse(`FROM onbuild-base\n${triggers.join('\n')}\n`, { ...rest, filename: file, baseEnv: () => env })
    return (plan.stages.at(-1)?.steps ?? []).map(s => ({ ...s, source: at(s.source.line) }))
  } catch (err) {
    if (!(err instanceof RecipeError)) throw err
    const Class = err.constructor as new (loc: SourceLoc, detail: string, hint?: string) => RecipeError
    throw new Class(at(err.line), err.detail, err.hint)
  }
}
