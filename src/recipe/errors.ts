/**
 * Errors thrown by the recipe front-ends. Every one is a RecipeError carrying
 * the recipe file, line and (when known) column, plus an optional hint for the
 * user. Callers branch on `name`, never on the message text.
 */
import type { SourceLoc } from './ir.ts'

export class RecipeError extends Error {
  static override readonly name: string = 'RecipeError'
  override readonly name: string = RecipeError.name
  readonly file: string
  readonly line: number
  readonly column?: number
  readonly hint?: string
  /** The message without location and hint. */
  readonly detail: string

  constructor (loc: SourceLoc, detail: string, hint?: string) {
    const where = `${loc.file}:${loc.line}${loc.column === undefined ? '' : `:${loc.column}`}`
    super(`${where}: ${detail}${hint === undefined ? '' : ` (${hint})`}`)
    this.file = loc.file
    this.line = loc.line
    if (loc.column !== undefined) this.column = loc.column
    if (hint !== undefined) this.hint = hint
    this.detail = detail
  }
}

/** Malformed text: bad quoting, bad JSON form, missing arguments, bad flag value... */
export class RecipeSyntaxError extends RecipeError {
  static override readonly name: string = 'RecipeSyntaxError'
  override readonly name: string = RecipeSyntaxError.name
}

/** An instruction (Dockerfile) or section/header key (Apptainer) that does not exist. */
export class UnknownInstructionError extends RecipeError {
  static override readonly name: string = 'UnknownInstructionError'
  override readonly name: string = UnknownInstructionError.name
}

/** Valid recipe syntax that kiln refuses up front (RUN --mount, ONBUILD, Bootstrap: library...). */
export class UnsupportedFeatureError extends RecipeError {
  static override readonly name: string = 'UnsupportedFeatureError'
  override readonly name: string = UnsupportedFeatureError.name
}

/** `COPY --from`, `%files from`, or the requested target names no (earlier) stage. */
export class UnknownStageError extends RecipeError {
  static override readonly name: string = 'UnknownStageError'
  override readonly name: string = UnknownStageError.name
}

/** The recipe holds no instruction at all. */
export class EmptyRecipeError extends RecipeError {
  static override readonly name: string = 'EmptyRecipeError'
  override readonly name: string = EmptyRecipeError.name
}

/** No FROM (Dockerfile) / no Bootstrap header (Apptainer), or an instruction before it. */
export class MissingBaseError extends RecipeError {
  static override readonly name: string = 'MissingBaseError'
  override readonly name: string = MissingBaseError.name
}

/** A heredoc whose terminator never comes; the location is the line that opened it. */
export class UnterminatedHeredocError extends RecipeError {
  static override readonly name: string = 'UnterminatedHeredocError'
  override readonly name: string = UnterminatedHeredocError.name
}

/** A variable that must be set is not (`${X:?msg}`, Apptainer `{{ X }}` without a value). */
export class UndefinedVariableError extends RecipeError {
  static override readonly name: string = 'UndefinedVariableError'
  override readonly name: string = UndefinedVariableError.name
}

/** The recipe exceeds a limit in constants.ts. */
export class RecipeTooLargeError extends RecipeError {
  static override readonly name: string = 'RecipeTooLargeError'
  override readonly name: string = RecipeTooLargeError.name
}
