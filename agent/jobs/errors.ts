/** Errors of the agent's job side; callers branch on `name`. */

export class JobRefusedError extends Error {
  static override readonly name = 'JobRefusedError'
  override readonly name = JobRefusedError.name
  readonly code = 'ERR_JOB_REFUSED'
  constructor (message: string) { super(message) }
}
