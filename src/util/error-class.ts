/**
 * Telling errors apart by class without `instanceof`.
 *
 * An error class is any class with a `name`: kiln's declare
 * `static override readonly name = 'NotFoundError'` beside the instance's
 * `name`, as js-libp2p's do, so `NotFoundError.name` is the name its errors
 * carry and callers write `isErrorOf(err, NotFoundError)` or
 * `err.name === NotFoundError.name`, never the string.
 *
 * An error is "of" a class when its `name`, or the `name` of a class on its
 * prototype chain, is the class's name. That is `instanceof` for subclasses
 * (a RecipeSyntaxError is a RecipeError) and it still holds where
 * `instanceof` fails: an error from a second copy of a module (two versions
 * of a dependency) or one rebuilt from a worker message keeps its name.
 */

export interface ErrorClass<E extends Error = Error> {
  readonly name: string
  readonly prototype: E
}

/** The error's own name, then the names of the classes it was made by, nearest first. */
function namesOf (err: unknown): string[] {
  if (typeof err !== 'object' || err === null) return []
  const own = (err as { name?: unknown }).name
  const names = typeof own === 'string' ? [own] : []
  for (let p: unknown = Object.getPrototypeOf(err); p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const ctor = (p as { constructor?: { name?: unknown } }).constructor
    if (typeof ctor?.name === 'string') names.push(ctor.name)
  }
  return names
}

export function isErrorOf<E extends Error> (err: unknown, cls: ErrorClass<E>): err is E {
  return namesOf(err).includes(cls.name)
}

/**
 * The value of the row for the nearest class the error is of (its own class,
 * else the nearest base class with a row), or undefined. Row order does not
 * matter; a class has at most one row.
 */
export function lookupErrorClass<T> (table: ReadonlyArray<readonly [ErrorClass, T]>, err: unknown): T | undefined {
  for (const name of namesOf(err)) {
    const row = table.find(([cls]) => cls.name === name)
    if (row !== undefined) return row[1]
  }
  return undefined
}

/**
 * The web platform's abort: an error named `AbortError` with no class of its
 * own (a DOMException from fetch or AbortSignal.abort(), or a plain Error an
 * SDK renamed, as the AWS SDK's HTTP handler does).
 */
export const AbortErrorName: ErrorClass = { name: 'AbortError', prototype: Error.prototype }
