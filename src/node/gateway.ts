/**
 * Starting a gateway (src/gateway) on a data dir, as `kiln gateway` and
 * `kiln up` run it: TLS and auth settings checked, the users file read, the
 * pull-through chain put together (peers through the transfer and signed tag
 * records, then `upstreams`), pushes announced on the network
 * (./push-announcer.ts), and the build extension given its runner: the
 * local builder, the network (./network-build.ts, a requester session on
 * the gateway's node), or both by platform, as `gateway.builds` says.
 */
import type { Logger } from 'pino'
import type { KilnConfig } from '../config/index.ts'
import type { LocalStore } from '../content/index.ts'
import type { BuildRunner, Gateway, NamedPullThrough } from '../gateway/index.ts'
import type { Identity } from '../p2p/identity.ts'
import type { CapabilityDescription, NodeFlags } from '../p2p/index.ts'
import type { JobAgent } from '../../agent/jobs/index.ts'
import type { Metrics } from '../metrics/index.ts'
import { ListenError, NodeSettingError } from './errors.ts'
import { startPeer } from './peer.ts'
import { createPushAnnouncer } from './push-announcer.ts'
import type { GatewayNetwork, PushAnnouncer } from './push-announcer.ts'
import { attachRequester } from './requester.ts'
import type { RequesterNode } from './requester.ts'
import { chooseBuildRunner, createNetworkBuildRunner } from './network-build.ts'
import type { GatewayBuildMode } from './network-build.ts'
import { loadNodeTrust } from './trust.ts'
import type { NodeTrust } from './trust.ts'

export type { GatewayNetwork }

export interface GatewayNodeInit {
  config: KilnConfig
  store: LocalStore
  log: Logger
  host: string
  port: number
  /** Each absent setting takes config.gateway's. */
  anonymousRead?: boolean
  /** Anyone may push and delete: loopback only. */
  anonymousPush?: boolean
  tlsCert?: string
  tlsKey?: string
  insecureListen?: boolean
  /** Default <data-dir>/gateway/users.yaml when it exists. */
  users?: string
  deleteEnabled?: boolean
  /** `NS[=URL]` entries: registries mirrored after the peer network. */
  upstreams?: string[]
  /** Pull through from peers and announce pushes on this network. */
  network?: GatewayNetwork
  /** The process's live trust (`kiln up` shares its agent's); default: loaded from the data dir when there is a network. */
  trust?: NodeTrust
  /** Runs builds for the build extension (`kiln up` passes the local build runner). */
  builder?: BuildRunner
  /** Platforms `builder` builds (natively or emulated); the others go to the network in `auto` mode. */
  builderPlatforms?: string[]
  /** Where builds run; default config.gateway.builds. `network` and `auto` need `network`. */
  builds?: GatewayBuildMode
  /** Offer window of the network builds' jobs; default the requester's. */
  offerWindowMs?: number
  /** Counts requests (kiln_gateway_requests_total). */
  metrics?: Metrics
  /** The agent of the same process (`kiln up`), for the status page: what it advertises and its jobs. */
  agent?: { description: CapabilityDescription, jobs?: JobAgent }
}

export interface GatewayNode {
  gateway: Gateway
  url: string
  tls: boolean
  users: number
  anonymous: 'push' | 'read' | 'none'
  /** Whose tag records count, kept current (./trust.ts); absent without a network. */
  trust?: NodeTrust
  /** The build extension's runner: 'local', 'network' or 'auto'; absent: it builds nothing. */
  builds?: string
  /** Stops serving, then waits (bounded) for tag publications and provides in flight. */
  close: () => Promise<void>
}

/** store.quota in bytes; undefined when unset or unreadable (the agent refuses to start on the latter). */
function quotaOf (config: KilnConfig, parse: (value: number | string) => number): number | undefined {
  if (config.store.quota === undefined) return undefined
  try { return parse(config.store.quota) } catch { return undefined }
}

export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** Throws NodeSettingError for settings that do not go together or would expose secrets, ListenError when it cannot listen. */
export async function startGatewayNode (init: GatewayNodeInit): Promise<GatewayNode> {
  const gwConfig = init.config.gateway
  const certFile = init.tlsCert ?? gwConfig.tls?.cert
  const keyFile = init.tlsKey ?? gwConfig.tls?.key
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new NodeSettingError('--tls-cert and --tls-key go together')
  }
  const insecure = init.insecureListen === true || gwConfig.insecureListen
  if (certFile === undefined && !isLoopback(init.host) && !insecure) {
    throw new NodeSettingError(`refusing plain HTTP on ${init.host}: passwords and tokens would cross the network in clear`, {
      hint: 'give --tls-cert and --tls-key (docs/gateway.md shows how to make them), listen on 127.0.0.1, or pass --insecure-listen'
    })
  }
  if (init.anonymousPush === true && !isLoopback(init.host)) {
    throw new NodeSettingError('--anonymous-push is only allowed on a loopback address')
  }
  const [{ join }, { existsSync }, { readFile }, gw, { GATEWAY_USERS_FILE }, { claimScratchDir }, { createNodeStatus }, { parseByteSize }] = await Promise.all([
    import('node:path'), import('node:fs'), import('node:fs/promises'), import('../gateway/index.ts'), import('../doctor/data-dir.ts'), import('../util/scratch-claims.ts'),
    import('./status.ts'), import('../content/quota.ts')
  ])
  const { store } = init
  const logger = init.log.child({ module: 'gateway' })
  const defaultUsers = join(store.root, GATEWAY_USERS_FILE)
  const usersFile = init.users ?? (existsSync(defaultUsers) ? defaultUsers : undefined)
  const users = usersFile === undefined ? [] : await gw.readUsersFile(usersFile)
  const anonymousRead = init.anonymousRead ?? gwConfig.anonymousRead

  const sources: NamedPullThrough[] = []
  let announcer: PushAnnouncer | undefined
  let trust: NodeTrust | undefined
  if (init.network !== undefined) {
    const network = init.network
    const { resolveNetworkTag } = await import('./tags.ts')
    const self = network.node.peerId.toString()
    trust = init.trust ?? await loadNodeTrust(init.config, store.root, self, logger)
    const { policy } = trust
    sources.push(gw.createNetworkPullThrough({
      fetch: async (digest, options) => await network.transfer.fetch(digest, options),
      logger,
      resolveTag: async (repository, tag) => {
        const { target, skipped } = await resolveNetworkTag(network.node, policy, repository, tag, {
          timeoutMs: gw.TAG_RESOLVE_TIMEOUT_MS,
          onSkip: (signer, reason) => { logger.info({ repository, tag, signer, reason }, 'tag record skipped') }
        })
        if (target === undefined && skipped.length > 0) throw new gw.TagRecordsRefusedError(repository, tag, skipped)
        if (target === undefined) return undefined
        return { digest: target.digest, mediaType: target.mediaType, size: target.size }
      }
    }))
    announcer = createPushAnnouncer(network, trust, logger)
  }
  const upstreams = init.upstreams ?? []
  if (upstreams.length > 0) {
    let parsed
    try {
      parsed = upstreams.map(u => gw.parseUpstream(u))
    } catch (err) {
      throw new NodeSettingError(`--upstream: ${(err as Error).message}`, { cause: err, hint: 'for example --upstream docker.io or --upstream localhost:5001=http://127.0.0.1:5001' })
    }
    sources.push(gw.createUpstreamPullThrough({ upstreams: parsed, store: store.content }))
  }

  const mode = init.builds ?? gwConfig.builds
  if (mode === 'network' && init.network === undefined) {
    throw new NodeSettingError('gateway.builds is network, but this gateway is not on the peer network', {
      hint: 'give kiln gateway --listen /ip4/... or --bootstrap, or set gateway.builds to auto or local'
    })
  }
  let requester: RequesterNode | undefined
  if (init.network !== undefined && trust !== undefined && mode !== 'local') {
    requester = await attachRequester({
      store,
      log: logger,
      network: init.network,
      trust,
      ...(init.offerWindowMs !== undefined ? { offerWindowMs: init.offerWindowMs } : {})
    })
  }
  const builder = chooseBuildRunner({
    mode,
    ...(init.builder !== undefined ? { local: init.builder } : {}),
    ...(requester !== undefined ? { network: createNetworkBuildRunner({ session: requester.session, store: store.content, ...(init.offerWindowMs !== undefined ? { offerWindowMs: init.offerWindowMs } : {}) }) } : {}),
    localPlatforms: init.builderPlatforms ?? []
  })

  const quota = quotaOf(init.config, parseByteSize)
  // Upload files of a gateway that was killed: removed unless another live gateway shares the dir.
  const uploadDir = join(store.root, 'gateway', 'uploads')
  await claimScratchDir(uploadDir)
  const gateway = gw.createGateway({
    store: store.content,
    refs: store.refs,
    db: store.db,
    uploadDir,
    logger,
    deleteEnabled: init.deleteEnabled === true || gwConfig.deleteEnabled,
    ...(init.anonymousPush === true ? {} : { auth: { anonymousRead, users } }),
    ...(sources.length === 0 ? {} : { pullThrough: gw.chainPullThrough(sources, logger) }),
    ...(announcer === undefined ? {} : { onPush: announcer.onPush }),
    ...(builder === undefined ? {} : { builder }),
    ...(init.metrics === undefined ? {} : { metrics: init.metrics }),
    status: createNodeStatus({
      store,
      ...(quota === undefined ? {} : { quota }),
      ...(init.network === undefined ? {} : { node: init.network.node }),
      ...(init.agent === undefined ? {} : { description: init.agent.description, ...(init.agent.jobs === undefined ? {} : { jobs: init.agent.jobs }) })
    })
  })
  const tls = certFile === undefined || keyFile === undefined ? undefined : { cert: await readFile(certFile), key: await readFile(keyFile) }
  let url: string
  try {
    url = (await gateway.listen(init.host, init.port, tls === undefined ? {} : { tls })).url
  } catch (err) {
    await gateway.close()
    await requester?.close()
    throw new ListenError(`cannot listen on ${init.host}:${init.port}: ${(err as Error).message}`, { cause: err, hint: 'pick another address with --listen HOST:PORT' })
  }
  return {
    gateway,
    url,
    tls: tls !== undefined,
    users: users.length,
    anonymous: init.anonymousPush === true ? 'push' : anonymousRead ? 'read' : 'none',
    ...(trust !== undefined ? { trust } : {}),
    ...(builder !== undefined ? { builds: builder.name } : {}),
    close: async () => {
      await gateway.close()
      await requester?.close()
      await announcer?.drain()
    }
  }
}

export interface GatewayPeerInit {
  config: KilnConfig
  store: LocalStore
  identity: Identity
  log: Logger
  metrics?: Metrics
  network: NodeFlags
  /** A client node on free ports: the gateway only dials (no listen address given). */
  ephemeral: boolean
}

/** A gateway's own network side; `close` stops its transfer and node. */
export type GatewayPeer = GatewayNetwork & { close: () => Promise<void> }

/** A node and a blob transfer of its own for a gateway that runs without an agent (`kiln gateway --bootstrap ...`). */
export async function attachGatewayPeer (init: GatewayPeerInit): Promise<GatewayPeer> {
  const { createTransfer } = await import('../transfer/index.ts')
  const node = await startPeer(init.config.node, init.network, init.identity.privateKey, init.ephemeral)
  const transfer = createTransfer({ node, store: init.store.content, log: init.log.child({ module: 'transfer' }), ...(init.metrics !== undefined ? { metrics: init.metrics } : {}) })
  await transfer.start()
  return { node, transfer, privateKey: init.identity.privateKey, close: async () => { await transfer.stop(); await node.stop() } }
}
