import { withCanonical } from '../canonical.ts'
import type { StepBody } from '../canonical.ts'
import { RecipeSyntaxError, UndefinedVariableError } from '../errors.ts'
import type { BaseRef, SourceLoc, Step } from '../ir.ts'
import type { ParseOptions } from '../options.ts'
import type { RawInstruction } from './lines.ts'
import { expandHeredoc, expandWord, expandWords, WordError } from './words.ts'
import type { Env } from './words.ts'

/** A stage while its instructions are read. */
export interface StageState {
  index: number
  name?: string
  base: BaseRef
  platform?: string
  source: SourceLoc
  steps: Step[]
  /** ENV values, starting from the base's. */
  env: Map<string, string>
  /** ARGs declared in the stage that have a value. */
  args: Map<string, string>
  shell: string[]
}

/** Everything an instruction handler reads or changes. */
export interface ParseContext {
  file: string
  escape: string
  options: ParseOptions
  buildArgs: ReadonlyMap<string, string>
  /** Automatic platform args (TARGETPLATFORM...). */
  automaticArgs: ReadonlyMap<string, string>
  /** ARGs declared before the first FROM; undefined value = declared without one. */
  globalArgs: Map<string, string | undefined>
  stages: StageState[]
  current?: StageState
}

/** The instruction being handled, with helpers that attach its location to errors. */
export class Instruction {
  readonly raw: RawInstruction
  readonly ctx: ParseContext
  readonly loc: SourceLoc
  /** Upper-case keyword. */
  readonly keyword: string

  constructor (raw: RawInstruction, ctx: ParseContext) {
    this.raw = raw
    this.ctx = ctx
    this.loc = { file: ctx.file, line: raw.line, column: raw.column }
    this.keyword = raw.keyword.toUpperCase()
  }

  get stage (): StageState {
    const stage = this.ctx.current
    if (stage === undefined) throw new Error('instruction handled outside a stage')
    return stage
  }

  syntaxError (detail: string, hint?: string): RecipeSyntaxError {
    return new RecipeSyntaxError(this.loc, `${this.keyword}: ${detail}`, hint)
  }

  /** Variables visible to substitution: stage ARGs, then ENV (ENV wins), or the global args before FROM. */
  env (): Env {
    const stage = this.ctx.current
    if (stage === undefined) return globalEnv(this.ctx)
    return new Map([...stage.args, ...stage.env])
  }

  private wrap<T> (fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      if (!(err instanceof WordError)) throw err
      if (err.variable !== undefined) throw new UndefinedVariableError(this.loc, `${this.keyword}: ${err.message}`)
      throw this.syntaxError(err.message)
    }
  }

  word (text: string, env: Env = this.env()): string {
    return this.wrap(() => expandWord(text, env, this.ctx.escape))
  }

  words (text: string, env: Env = this.env()): string[] {
    return this.wrap(() => expandWords(text, env, this.ctx.escape))
  }

  heredoc (text: string): string {
    return this.wrap(() => expandHeredoc(text, this.env(), this.ctx.escape))
  }

  /** Appends a step to the current stage. */
  add (body: StepBody): void {
    this.stage.steps.push(withCanonical(body))
  }
}

/** Automatic platform args plus global ARGs that have a value. */
export function globalEnv (ctx: ParseContext): Map<string, string> {
  const env = new Map(ctx.automaticArgs)
  for (const [name, value] of ctx.globalArgs) {
    if (value !== undefined) env.set(name, value)
  }
  return env
}
