/**
 * Starting an agent on a data dir (what `kiln agent` and `kiln up` run): the
 * store quota, the trust policy and certificates, the capability record, the
 * libp2p node and `startAgent` (agent/runtime.ts) over a store that records
 * use for the quota; then, until SIGTERM, the lifecycle of
 * agent/lifecycle.ts (drain, SIGHUP reload).
 */
import type { Logger } from 'pino'
import type { Agent } from '../../agent/runtime.ts'
import type { CapabilityDescription, KilnNode, NodeFlags } from '../p2p/index.ts'
import type { KilnConfig } from '../config/index.ts'
import type { LocalStore } from '../content/index.ts'
import type { Identity } from '../p2p/identity.ts'
import type { Metrics } from '../metrics/index.ts'
import * as lifecycle from '../../agent/lifecycle.ts'
import { NodeSettingError } from './errors.ts'
import { startPeer } from './peer.ts'
import type { NodeSandbox } from './sandbox.ts'
import { loadNodeTrust } from './trust.ts'
import type { NodeTrust } from './trust.ts'

export interface AgentNodeInit {
  config: KilnConfig
  store: LocalStore
  identity: Identity
  metrics: Metrics
  log: Logger
  /** How the node listens and joins (flags over config.node). */
  network: NodeFlags
  /** Platforms to advertise; default config.agent.platforms, else the host's. */
  platforms?: string[]
  /** Default config.agent.institution. */
  institution?: string
  /** Absent: the agent takes no jobs, it only advertises and serves the store. */
  jobs?: { concurrency: number, allowNetwork: boolean } & NodeSandbox
  /** The process's live trust, when another service shares it; default: loaded from the data dir. */
  trust?: NodeTrust
}

export interface AgentNode {
  readonly agent: Agent
  readonly node: KilnNode
  /** What the agent advertised at start. */
  readonly description: CapabilityDescription
  /** The live trust policy and certificates (./trust.ts): share it with the other services of the process. */
  readonly trust: NodeTrust
  /** The config and data dir it started with, for reloads. */
  readonly config: KilnConfig
  readonly dataDir: string
  /** The logger given, with this node's peer id on every line. */
  readonly log: Logger
  /** Stops the agent and its node at once (no drain). Safe to call twice. */
  close: () => Promise<void>
}

export async function startAgentNode (init: AgentNodeInit): Promise<AgentNode> {
  const [{ startAgent }, { detectCapabilities, requirementTerms }, { createTrackedStore, parseByteSize }, { createBuildCache }, { join }] = await Promise.all([
    import('../../agent/runtime.ts'), import('../../agent/capabilities.ts'), import('../content/quota.ts'), import('../builder/snapshots.ts'), import('node:path')
  ])
  const { config, store } = init
  let quota: number | undefined
  try {
    quota = config.store.quota === undefined ? undefined : parseByteSize(config.store.quota)
  } catch (err) {
    throw new NodeSettingError(`store.quota: ${(err as Error).message}`, { cause: err })
  }
  const self = init.identity.peerId.toString()
  const trust = init.trust ?? await loadNodeTrust(config, store.root, self, init.log)
  const platforms = init.platforms ?? (config.agent.platforms.length > 0 ? config.agent.platforms : undefined)
  const institution = init.institution ?? (config.agent.institution !== '' ? config.agent.institution : undefined)
  const describe = async (): Promise<CapabilityDescription> => await detectCapabilities({ platforms, institution, dataDir: store.root, configured: config.agent.capabilities })
  const description = await describe()
  const node = await startPeer(config.node, init.network, init.identity.privateKey, false)
  const log = init.log.child({ peerId: node.peerId.toString() })
  const jobs = init.jobs
  let agent: Agent
  try {
    agent = await startAgent({
      node,
      privateKey: init.identity.privateKey,
      // Reads and writes are recorded, so that the quota evicts what was used least recently.
      store: createTrackedStore(store.content, store.db),
      db: store.db,
      ...(quota !== undefined ? { quota } : {}),
      derived: createBuildCache({ workDir: join(store.root, 'build'), db: store.db, store: store.content }),
      metrics: init.metrics,
      log,
      describe,
      ...(jobs === undefined
        ? {}
        : {
            jobs: {
              db: store.db,
              refs: store.refs,
              dataDir: store.root,
              policy: trust.policy,
              certs: trust.certs,
              platforms: description.platforms.map(p => p.platform),
              capabilities: requirementTerms(description, config.agent.capabilities),
              concurrency: jobs.concurrency,
              allowNetwork: jobs.allowNetwork,
              baseRegistries: config.agent.baseRegistries,
              ...(jobs.sandbox !== undefined ? { sandbox: jobs.sandbox } : {}),
              ...(jobs.othersRefused !== undefined ? { othersRefused: jobs.othersRefused } : {}),
              ...(institution !== undefined ? { institution } : {})
            }
          })
    })
  } catch (err) {
    await node.stop()
    throw err
  }
  return { agent, node, description, trust, config, dataDir: store.root, log, close: async () => { await agent.stop() } }
}

/**
 * A level setter for `root` that reaches its child loggers too (agent/lifecycle.ts);
 * take it before making the children, as SIGHUP's reload sets the level through it.
 */
export async function followLogLevel (root: Logger): Promise<(level: string) => void> {
  return lifecycle.followLogLevel(root)
}

export interface AgentRunInit {
  /** How long running builds may finish after SIGTERM. */
  drainMs: number
  /** Sets the level of the root logger and its children (followLogLevel, agent/lifecycle.ts). */
  setLogLevel: (level: string) => void
  /** Values from the command line in force at start: they win over kiln.yaml on every SIGHUP reload. */
  flags: { logLevel?: string, allowNetwork?: boolean, maxConcurrentBuilds?: number }
}

/**
 * Runs the agent until SIGTERM or SIGINT has drained and stopped it; SIGHUP
 * reloads the run settings and the process's live trust (agent/lifecycle.ts);
 * trust files changed by `kiln trust` are read again without it.
 * Resolves with the signal's name.
 */
export async function runAgentUntilStopped (handle: AgentNode, init: AgentRunInit): Promise<string> {
  const { handleSignals, loadRunSettings } = lifecycle
  const { config } = handle
  // Synchronously, before the first await: the handlers are in place when this returns, so a caller that
  // calls it before printing its addresses never has a SIGTERM kill the agent with Node's default action.
  const life = handleSignals({
    agent: handle.agent,
    drainMs: init.drainMs,
    log: handle.log,
    current: {
      logLevel: config.logLevel,
      allowNetwork: init.flags.allowNetwork ?? config.agent.allowNetwork,
      maxConcurrentBuilds: init.flags.maxConcurrentBuilds ?? config.agent.maxConcurrentBuilds,
      policy: handle.trust.policy
    },
    reload: async () => await loadRunSettings({
      ...(config.configFile !== undefined ? { configFile: config.configFile } : {}),
      dataDir: handle.dataDir,
      self: handle.node.peerId.toString(),
      flags: init.flags,
      trust: handle.trust
    }),
    setLogLevel: init.setLogLevel
  })
  return await life.stopped
}
