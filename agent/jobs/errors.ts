/** Errors of the agent's job side; callers branch on `name`. */

export class JobRefusedError extends Error {
  static override readonly name = 'JobRefusedError'
  override readonly name = JobRefusedError.name
  readonly code = 'ERR_JOB_REFUSED'
  constructor (message: string) { super(message) }
}

/** A base the job pins (protocols/job.md §3.1) could not be brought into the store: nobody provided it, or it is not whole. */
export class BaseUnavailableError extends Error {
  static override readonly name = 'BaseUnavailableError'
  override readonly name = BaseUnavailableError.name
  readonly code = 'ERR_BASE_UNAVAILABLE'
  /** The base as the recipe names it, and the digest it is pinned to. */
  readonly ref: string
  readonly digest: string
  constructor (base: { ref: string, digest: string, platform: string }, detail: string, options?: ErrorOptions) {
    super(`base ${base.ref} pinned to ${base.digest} (${base.platform}): ${detail}`, options)
    this.ref = base.ref
    this.digest = base.digest
  }
}
