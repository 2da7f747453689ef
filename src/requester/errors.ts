/** Errors of a submitted job; callers branch on `name`. */

export interface Answer { builder: string, reason: string }

/** Nobody offered (enough) for a platform; `declined` and `refused` say who answered, and why it did not count. */
export class NoOffersError extends Error {
  static override readonly name = 'NoOffersError'
  override readonly name = NoOffersError.name
  readonly code = 'ERR_NO_OFFERS'
  /** Agents that would not build it for this requester (untrusted, requirements, network). */
  readonly declined: Answer[]
  /** Offers this requester's trust policy refused. */
  readonly refused: Answer[]
  constructor (message: string, answers: { declined?: Answer[], refused?: Answer[] } = {}) {
    super(message)
    this.declined = answers.declined ?? []
    this.refused = answers.refused ?? []
  }
}

/** A job this node would not send: over a limit of protocols/job.md §1, or malformed. */
export class JobInvalidError extends Error {
  static override readonly name = 'JobInvalidError'
  override readonly name = JobInvalidError.name
  readonly code = 'ERR_JOB_INVALID'
  constructor (message: string) { super(message) }
}

/** A builder reported a failed build. */
export class BuildError extends Error {
  static override readonly name = 'BuildError'
  override readonly name = BuildError.name
  readonly code = 'ERR_BUILD_FAILED'
  constructor (message: string) { super(message) }
}

/** Two builders of the same platform produced different digests. */
export class ReproducibilityError extends Error {
  static override readonly name = 'ReproducibilityError'
  override readonly name = ReproducibilityError.name
  readonly code = 'ERR_NOT_REPRODUCIBLE'
  readonly digests: Record<string, string>
  constructor (platform: string, digests: Record<string, string>) {
    super(`${platform} does not reproduce: ${Object.entries(digests).map(([b, d]) => `${b} built ${d}`).join(', ')}`)
    this.digests = digests
  }
}

/** A result that does not match its job, or whose blobs do not match the manifest. */
export class ResultInvalidError extends Error {
  static override readonly name = 'ResultInvalidError'
  override readonly name = ResultInvalidError.name
  readonly code = 'ERR_RESULT_INVALID'
  constructor (message: string) { super(message) }
}

/** Every builder awarded a platform went silent or away. */
export class BuilderLostError extends Error {
  static override readonly name = 'BuilderLostError'
  override readonly name = BuilderLostError.name
  readonly code = 'ERR_BUILDER_LOST'
  constructor (message: string) { super(message) }
}

export class JobCancelledError extends Error {
  static override readonly name = 'JobCancelledError'
  override readonly name = JobCancelledError.name
  readonly code = 'ERR_JOB_CANCELLED'
  constructor (message: string) { super(message) }
}

/** The requester was stopped while the job ran; the job itself goes on (its journal entry stays running, for resume). */
export class RequesterStoppedError extends Error {
  static override readonly name = 'RequesterStoppedError'
  override readonly name = RequesterStoppedError.name
  readonly code = 'ERR_REQUESTER_STOPPED'
  constructor (message: string) { super(message) }
}
