/**
 * The agent's network half: joins the peer network, advertises its
 * capability record, serves and announces its store. Job handling composes
 * on top (the returned handle exposes the node, transfer and advertiser).
 *
 * @example
 * ```ts
 * const agent = await startAgent({ node, privateKey, store, describe: () => detectCapabilities() })
 * process.once('SIGTERM', () => { void agent.stop() })
 * ```
 */
import type { Logger } from 'pino'
import type { PrivateKey } from '@libp2p/interface'
import type { ContentStore } from '../src/content/index.ts'
import { createCapabilityAdvertiser } from '../src/p2p/index.ts'
import type { CapabilityAdvertiser, CapabilityDescription, KilnNode } from '../src/p2p/index.ts'
import { createTransfer } from '../src/transfer/index.ts'
import type { Transfer } from '../src/transfer/index.ts'

export interface AgentInit {
  node: KilnNode
  privateKey: PrivateKey
  store: ContentStore
  describe: () => CapabilityDescription | Promise<CapabilityDescription>
  log?: Logger
  /** Capability record validity; default protocols' 30 min. */
  ttlMs?: number
  refreshMs?: number
  /** Announce every blob already in the store at start; default true. */
  provideStore?: boolean
}

export interface Agent {
  readonly node: KilnNode
  readonly transfer: Transfer
  readonly advertiser: CapabilityAdvertiser
  /** Stops advertising, serving and the node. Safe to call twice. */
  stop: () => Promise<void>
}

export async function startAgent (init: AgentInit): Promise<Agent> {
  const transfer = createTransfer({ node: init.node, store: init.store, log: init.log })
  await transfer.start()
  const advertiser = createCapabilityAdvertiser({
    node: init.node, privateKey: init.privateKey, describe: init.describe, ttlMs: init.ttlMs, refreshMs: init.refreshMs, log: init.log
  })
  // The first publication waits for a first peer (the DHT holds queries until its table has one),
  // so it runs in the background; stop() aborts it.
  const advertising = advertiser.start()
  const providing = init.provideStore === false
    ? Promise.resolve()
    : transfer.provideAll().then(n => init.log?.info({ blobs: n }, 'store announced'), (err: Error) => init.log?.warn({ err }, 'announcing the store failed'))
  let stopping: Promise<void> | undefined
  return {
    node: init.node,
    transfer,
    advertiser,
    stop: async () => {
      stopping ??= (async () => {
        await advertiser.stop()
        await advertising
        await transfer.stop()
        await init.node.stop()
        await providing
      })()
      await stopping
    }
  }
}
