/**
 * What `ADD <url>` and `ADD <git>` share: they use the network, so the build
 * must allow it (`kiln build --network=default`, an agent's `agent.allowNetwork`),
 * and each has a time limit; the builder fetches, never the sandbox.
 */
import type { SourceLoc } from '../../recipe/ir.ts'
import { REMOTE_SOURCE_TIMEOUT_MS } from '../constants.ts'
import { NetworkNotAllowedError, RemoteSourceError } from '../errors.ts'
import type { BuildScope } from '../stage.ts'

export function requireNetwork (scope: BuildScope, what: string, source: SourceLoc): void {
  if (scope.options.network === 'default') return
  throw new NetworkNotAllowedError(source, `ADD ${what} fetches from the network, which this build does not allow: rerun with kiln build --network=default (an agent allows it with agent.allowNetwork in kiln.yaml)`)
}

/**
 * Runs fn with a signal that fires on the build's abort or after the time
 * limit; a timeout becomes RemoteSourceError, the build's abort stays itself.
 */
export async function withRemoteTimeout<T> (scope: BuildScope, what: string, source: SourceLoc, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const timeout = AbortSignal.timeout(REMOTE_SOURCE_TIMEOUT_MS)
  const outer = scope.options.signal
  const signal = outer === undefined ? timeout : AbortSignal.any([outer, timeout])
  try {
    return await fn(signal)
  } catch (err) {
    outer?.throwIfAborted()
    if (timeout.aborted) throw new RemoteSourceError(`ADD ${what}: took longer than ${REMOTE_SOURCE_TIMEOUT_MS / 1000}s`, source)
    throw err
  }
}
