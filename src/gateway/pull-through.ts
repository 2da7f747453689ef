/**
 * Pull-through sources and how they combine. A source fetches into the
 * local store what the gateway lacks: by digest (a blob or a manifest) and
 * tags by name. `chainPullThrough` asks its sources in order (the peer
 * network first, then upstream registries) and shares one fetch among
 * concurrent requests for the same digest, so that 200 clients asking for a
 * missing layer cause one transfer. A tag no source resolves, of which one
 * found only untrusted records, rejects with that TagRecordsRefusedError.
 */
import type { Digest } from '../content/digest.ts'
import type { RefTarget } from '../content/refs.ts'
import type { GatewayLogger, PullThrough, PullHint } from './context.ts'
import { TagRecordsRefusedError } from './errors.ts'
import { isErrorOf } from '../util/error-class.ts'

const NOOP = (): void => {}
const SILENT: GatewayLogger = { debug: NOOP, info: NOOP, warn: NOOP, error: NOOP }

/** A named source, for logs. */
export interface NamedPullThrough extends PullThrough {
  readonly name: string
}

/** Asks each source in order; the first that has it wins. A source that throws counts as not having it (and is logged). */
export function chainPullThrough (sources: readonly NamedPullThrough[], logger: GatewayLogger = SILENT): PullThrough {
  const inflight = new Map<Digest, Promise<boolean>>()
  const fetchOnce = async (digest: Digest, hint?: PullHint): Promise<boolean> => {
    for (const source of sources) {
      try {
        if (await source.fetchBlob(digest, hint)) {
          logger.info({ digest, source: source.name, repository: hint?.repository }, 'pulled through')
          return true
        }
      } catch (err) {
        logger.warn({ digest, source: source.name, err: (err as Error).message }, 'pull-through source failed')
      }
    }
    return false
  }
  return {
    fetchBlob: async (digest, hint) => {
      const running = inflight.get(digest)
      if (running !== undefined) return await running
      const p = fetchOnce(digest, hint).finally(() => { inflight.delete(digest) })
      inflight.set(digest, p)
      return await p
    },
    resolveTag: async (repository, tag, hint): Promise<RefTarget | undefined> => {
      let untrusted: TagRecordsRefusedError | undefined
      for (const source of sources) {
        try {
          const found = await source.resolveTag(repository, tag, hint)
          if (found !== undefined) {
            logger.info({ repository, tag, digest: found.digest, source: source.name }, 'tag resolved through')
            return found
          }
        } catch (err) {
          if (isErrorOf(err, TagRecordsRefusedError)) untrusted = err
          logger.warn({ repository, tag, source: source.name, err: (err as Error).message }, 'pull-through tag resolution failed')
        }
      }
      // Why the tag is unknown, for the client, when no later source had it either.
      if (untrusted !== undefined) throw untrusted
      return undefined
    }
  }
}
