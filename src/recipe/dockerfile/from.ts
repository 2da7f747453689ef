import { DEFAULT_PATH, DEFAULT_SHELL, MAX_STAGES } from '../constants.ts'
import { RecipeSyntaxError, RecipeTooLargeError } from '../errors.ts'
import type { BaseRef } from '../ir.ts'
import type { Instruction, StageState } from './context.ts'
import { globalEnv } from './context.ts'
import { parseFlags } from './flags.ts'
import { splitRawWords } from './words.ts'

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/

/** Earlier stage by name (case-insensitive) or index; undefined when none. */
export function findStage (stages: readonly StageState[], ref: string): StageState | undefined {
  if (/^\d+$/.test(ref)) return stages[Number(ref)]
  const name = ref.toLowerCase()
  return stages.find(s => s.name === name)
}

/**
 * What ENV and the instructions after FROM expand against: the parent
 * stage's environment, or the base image's (`options.baseEnv`) with PATH
 * the default when the base sets none, as BuildKit always has a PATH.
 */
function baseEnvOf (ins: Instruction, base: BaseRef): Map<string, string> {
  if (base.kind === 'stage') return new Map(ins.ctx.stages[base.stage]?.env)
  const env = new Map(Object.entries(base.kind === 'image' ? ins.ctx.options.baseEnv?.(base.ref) ?? {} : {}))
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH)
  return env
}

/** FROM [--platform=P] IMAGE [AS NAME]: starts a stage. Substitution uses global args only. */
export function handleFrom (ins: Instruction): void {
  const { ctx } = ins
  const flags = parseFlags(ins.raw.args, { values: ['platform'] }, 'FROM', ins.loc)
  const words = splitRawWords(flags.rest, ctx.escape)
  const asWord = words[1]
  if (!(words.length === 1 || (words.length === 3 && asWord?.toLowerCase() === 'as'))) {
    throw ins.syntaxError('requires either one or three arguments', 'FROM image [AS name]')
  }
  if (ctx.stages.length >= MAX_STAGES) throw new RecipeTooLargeError(ins.loc, `more than ${MAX_STAGES} stages`)
  const env = globalEnv(ctx)
  const image = ins.word(words[0] ?? '', env)
  if (image === '') throw ins.syntaxError(`base name (${words[0] ?? ''}) should not be blank`, 'give the ARG a default or pass it as a build arg')
  let name: string | undefined
  if (words[2] !== undefined) {
    name = ins.word(words[2], env).toLowerCase()
    if (!STAGE_NAME.test(name)) throw ins.syntaxError(`invalid name for build stage: '${words[2]}'`, 'a stage name starts with a letter and holds letters, digits, -, _ and .')
    if (findStage(ctx.stages, name) !== undefined) throw new RecipeSyntaxError(ins.loc, `FROM: duplicate stage name '${name}'`)
  }
  const parent = /^\d+$/.test(image) ? undefined : findStage(ctx.stages, image)
  const base: BaseRef = image.toLowerCase() === 'scratch'
    ? { kind: 'scratch' }
    : parent !== undefined ? { kind: 'stage', stage: parent.index } : { kind: 'image', ref: image }
  const platformFlag = flags.values.get('platform')
  const stage: StageState = {
    index: ctx.stages.length,
    base,
    source: ins.loc,
    steps: [],
    env: baseEnvOf(ins, base),
    args: new Map(),
    shell: parent?.shell.slice() ?? [...DEFAULT_SHELL]
  }
  if (name !== undefined) stage.name = name
  if (platformFlag !== undefined) stage.platform = ins.word(platformFlag, env)
  ctx.stages.push(stage)
  ctx.current = stage
}
