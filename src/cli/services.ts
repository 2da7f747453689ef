/**
 * The CLI's side of src/node: each function hands a service what the
 * command's CliContext holds (config, store, identity, logger), starts it,
 * and registers its close to run when the command ends.
 */
import type { NodeMetrics, RequesterNode } from '../node/index.ts'
import type { NodeFlags } from '../p2p/index.ts'
import type { CliContext } from './context.ts'
import { checkMultiaddrFlags } from './multiaddr-flags.ts'
import type { ProgressReporter } from './progress.ts'
import { onFetch } from './progress-sources.ts'

/** The metrics endpoint of `--metrics-listen`, else `metrics.listen`; the no-op handle (and no url) when neither is set. */
export async function startMetricsFor (ctx: CliContext, flag: string | undefined): Promise<NodeMetrics> {
  const { startNodeMetrics } = await import('../node/index.ts')
  const running = await startNodeMetrics(flag ?? (await ctx.config()).metrics.listen)
  ctx.onClose(running.close)
  return running
}

/** A client node and a requester session on it, once a peer is reachable; the peer search and the blobs fetched are told to `progress` when given. */
export async function openSession (ctx: CliContext, network: NodeFlags, offerWindowMs?: number, progress?: ProgressReporter): Promise<RequesterNode> {
  await checkMultiaddrFlags(network)
  const { openRequesterNode } = await import('../node/index.ts')
  const { peerSearchSources, sayingPeerSearch } = await import('./peer-search.ts')
  const config = await ctx.config()
  const requester = await sayingPeerSearch(progress ?? ctx.out, peerSearchSources(network, config.node), openRequesterNode({
    config,
    store: await ctx.store(),
    identity: await ctx.identity(),
    log: await ctx.logger(),
    network,
    ...(offerWindowMs !== undefined ? { offerWindowMs } : {}),
    ...(progress !== undefined ? { onFetchProgress: onFetch(progress, 'fetch') } : {}),
    warn: (message) => { ctx.out.warn(message) }
  }))
  ctx.onClose(requester.close)
  return requester
}
