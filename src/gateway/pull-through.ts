/**
 * Pull-through sources and how they combine. A source fetches into the
 * local store what the gateway lacks: by digest (a blob or a manifest) and
 * tags by name. `chainPullThrough` asks its sources in order (the peer
 * network first, then upstream registries) and shares one fetch among
 * concurrent requests for the same digest, so that 200 clients asking for a
 * missing layer cause one transfer; a source that streams (the network)
 * is followed by every request that joins while its fetch runs. A tag no source resolves, of which one
 * found only untrusted records, rejects with that TagRecordsRefusedError.
 */
import type { Digest } from '../content/digest.ts'
import type { RefTarget } from '../content/refs.ts'
import type { ArrivingBlob } from './arriving.ts'
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
  const inflight = new Map<Digest, Promise<ArrivingBlob | boolean>>()
  const fetchOnce = async (digest: Digest, hint: PullHint | undefined, stream: boolean): Promise<ArrivingBlob | boolean> => {
    for (const source of sources) {
      try {
        if (stream && source.streamBlob !== undefined) {
          const found = await source.streamBlob(digest, hint)
          if (found === false) continue
          if (found !== true) {
            void found.done.then(ok => {
              if (ok) logger.info({ digest, source: source.name, repository: hint?.repository, streamed: true }, 'pulled through')
              else logger.warn({ digest, source: source.name, err: found.failure?.message }, 'pull-through source failed')
            })
            return found
          }
        } else if (!await source.fetchBlob(digest, hint)) {
          continue
        }
        logger.info({ digest, source: source.name, repository: hint?.repository }, 'pulled through')
        return true
      } catch (err) {
        logger.warn({ digest, source: source.name, err: (err as Error).message }, 'pull-through source failed')
      }
    }
    return false
  }
  /** One fetch per digest: a request that comes while one runs (streaming or not) joins it. */
  const begin = async (digest: Digest, hint: PullHint | undefined, stream: boolean): Promise<ArrivingBlob | boolean> => {
    const running = inflight.get(digest)
    if (running !== undefined) return await running
    const p = fetchOnce(digest, hint, stream)
    inflight.set(digest, p)
    void p.then(async found => typeof found === 'boolean' ? found : await found.done, () => false)
      .finally(() => { if (inflight.get(digest) === p) inflight.delete(digest) })
    return await p
  }
  return {
    fetchBlob: async (digest, hint) => {
      const found = await begin(digest, hint, false)
      return typeof found === 'boolean' ? found : await found.done
    },
    streamBlob: async (digest, hint) => await begin(digest, hint, true),
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
