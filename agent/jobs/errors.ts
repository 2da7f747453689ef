/** Errors of the agent's job side; callers branch on `name`. */

export class JobRefusedError extends Error {
  override readonly name = 'JobRefusedError'
  readonly code = 'ERR_JOB_REFUSED'
  constructor (message: string) { super(message) }
}
