/**
 * Errors of starting a node's services (./index.ts), apart from the code so
 * that the CLI's error table can name them without loading it. Each carries
 * the `hint` its condition calls for (what to change, which flag), which
 * the CLI prints under the message.
 */

/** A setting the services cannot start with: a sandbox, a quota, a trust policy, a gateway setting. */
export class NodeSettingError extends Error {
  static override readonly name = 'NodeSettingError'
  override readonly name = NodeSettingError.name
  readonly hint?: string
  constructor (message: string, options: { hint?: string, cause?: unknown } = {}) {
    super(message, { cause: options.cause })
    if (options.hint !== undefined) this.hint = options.hint
  }
}

/** The peer node, the gateway or the metrics endpoint could not listen (a port taken, an address not here). */
export class ListenError extends Error {
  static override readonly name = 'ListenError'
  override readonly name = ListenError.name
  readonly hint?: string
  constructor (message: string, options: { hint?: string, cause?: unknown } = {}) {
    super(message, { cause: options.cause })
    if (options.hint !== undefined) this.hint = options.hint
  }
}

/** A client node (requester session, pull, peer search) found no peer to talk to in time. */
export class NoPeerReachableError extends Error {
  static override readonly name = 'NoPeerReachableError'
  override readonly name = NoPeerReachableError.name
  readonly hint?: string
  constructor (options: { hint?: string } = {}) {
    super('no peer reachable')
    if (options.hint !== undefined) this.hint = options.hint
  }
}
