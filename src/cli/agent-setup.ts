/**
 * What `kiln agent` and `kiln up` both do to start an agent: read the store
 * quota, load the trust policy and this node's certificates, pick the
 * sandbox and decide whether it may build for others, and put the agent's
 * options together (tracked store, quota, metrics, jobs). `kiln gateway`
 * loads its trust policy and certificates here too.
 */
import type { Logger } from 'pino'
import type { AgentInit } from '../../agent/runtime.ts'
import type { KilnConfig } from '../config/index.ts'
import type { LocalStore } from '../content/index.ts'
import type { Metrics } from '../metrics/index.ts'
import type { TrustPolicy } from '../trust/index.ts'
import type { Sandbox } from '../builder/index.ts'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'

export interface AgentTrust {
  policy: TrustPolicy
  certs: unknown[]
  /** store.quota in bytes, when set. */
  quota?: number
}

export async function loadAgentTrust (config: KilnConfig, store: LocalStore, self: string, log: Logger): Promise<AgentTrust> {
  const { parseByteSize } = await import('../content/quota.ts')
  let quota: number | undefined
  try {
    quota = config.store.quota === undefined ? undefined : parseByteSize(config.store.quota)
  } catch (err) {
    throw new CliError(`store.quota: ${(err as Error).message}`, { exitCode: EXIT.usage })
  }
  return { ...await loadTrustAndCertificates(config, store.root, self, log), ...(quota !== undefined ? { quota } : {}) }
}

/**
 * The trust policy (a broken one is a usage error with a hint) and this
 * node's certificates (unreadable ones skipped with a warning): what every
 * long-running node that decides whom to trust loads (agent, up, gateway).
 */
export async function loadTrustAndCertificates (config: KilnConfig, storeRoot: string, self: string, log: Logger): Promise<{ policy: TrustPolicy, certs: unknown[] }> {
  const { loadTrustPolicy, loadCertificates } = await import('../trust/index.ts')
  let policy
  try {
    policy = await loadTrustPolicy(storeRoot, { self, config: config.trust })
  } catch (err) {
    throw new CliError((err as Error).message, { exitCode: EXIT.usage, hint: 'fix the trust policy (kiln trust ls shows it)' })
  }
  const certs = await loadCertificates(storeRoot, self, (file, reason) => { log.warn({ file, reason }, 'certificate skipped') })
  return { policy, certs }
}

export interface NodeSandbox {
  /** The sandbox builds use; absent when none works here (builds then fail at their first RUN). */
  sandbox?: Sandbox
  /** Why builds for others (jobs of other peers, gateway builds) are refused on this node, when they are. */
  othersRefused?: string
}

const DRIVERS = ['bwrap', 'unshare', 'proot'] as const

/**
 * The sandbox builds for others would use (KILN_SANDBOX, else
 * build.sandbox), probed now, and whether it may run their recipes.
 * `offFlags` are the flags that would stop this node building for others
 * (--no-jobs, --no-local-builds); none: nothing is probed. A driver named
 * explicitly that cannot isolate steps (proot) is then a usage error that
 * says what to do; one picked automatically, because it is the only one
 * that works here, builds this node's own recipes and refuses others'
 * (docs/security.md).
 */
export async function sandboxForOthers (config: KilnConfig, dataDir: string, offFlags: string[]): Promise<NodeSandbox> {
  if (offFlags.length === 0) return {}
  const fromEnv = process.env.KILN_SANDBOX
  const choice = fromEnv ?? config.build.sandbox
  const setting = fromEnv !== undefined ? 'KILN_SANDBOX' : 'build.sandbox'
  const driver = DRIVERS.find(d => d === choice)
  if (choice !== 'auto' && driver === undefined) throw new CliError(`${setting} is ${choice}: expected auto, ${DRIVERS.join(', ')}`, { exitCode: EXIT.usage })
  const { createSandbox, othersRefusal } = await import('../builder/sandbox/index.ts')
  const { join } = await import('node:path')
  let sandbox: Sandbox
  try {
    sandbox = await createSandbox({ ...(driver !== undefined ? { driver } : {}), probeCacheDir: join(dataDir, 'build') })
  } catch (err) {
    if (driver === undefined) return {}
    throw new CliError(`${setting} is ${driver}: ${(err as Error).message}`, { exitCode: EXIT.usage, hint: 'kiln doctor shows which sandbox drivers work here' })
  }
  const othersRefused = othersRefusal(sandbox)
  if (othersRefused !== undefined && driver !== undefined) {
    throw new CliError(`${setting} is ${driver}: ${othersRefused}`, {
      exitCode: EXIT.usage,
      hint: `set ${setting} to auto, bwrap or unshare, or start with ${offFlags.join(' ')} to build for nobody but this node's kiln build`
    })
  }
  return { sandbox, ...(othersRefused !== undefined ? { othersRefused } : {}) }
}

export interface AgentOptionsInit {
  node: AgentInit['node']
  privateKey: AgentInit['privateKey']
  store: LocalStore
  config: KilnConfig
  trust: AgentTrust
  metrics: Metrics
  log: Logger
  describe: AgentInit['describe']
  /** What the node advertises, for the jobs it takes. */
  description: { platforms: Array<{ platform: string }>, capabilities: string[] }
  institution?: string
  /** Absent: the agent takes no jobs. */
  jobs?: { concurrency: number, allowNetwork: boolean } & NodeSandbox
}

export async function agentOptions (o: AgentOptionsInit): Promise<AgentInit> {
  const { createTrackedStore } = await import('../content/quota.ts')
  const { createBuildCache } = await import('../builder/snapshots.ts')
  const { join } = await import('node:path')
  return {
    node: o.node,
    privateKey: o.privateKey,
    // Reads and writes are recorded, so that the quota evicts what was used least recently.
    store: createTrackedStore(o.store.content, o.store.db),
    db: o.store.db,
    ...(o.trust.quota !== undefined ? { quota: o.trust.quota } : {}),
    derived: createBuildCache({ workDir: join(o.store.root, 'build'), db: o.store.db, store: o.store.content }),
    metrics: o.metrics,
    log: o.log,
    describe: o.describe,
    ...(o.jobs === undefined
      ? {}
      : {
          jobs: {
            db: o.store.db,
            refs: o.store.refs,
            dataDir: o.store.root,
            policy: o.trust.policy,
            certs: o.trust.certs,
            platforms: o.description.platforms.map(p => p.platform),
            capabilities: [...o.description.capabilities, ...o.config.agent.capabilities],
            concurrency: o.jobs.concurrency,
            allowNetwork: o.jobs.allowNetwork,
            baseRegistries: o.config.agent.baseRegistries,
            ...(o.jobs.sandbox !== undefined ? { sandbox: o.jobs.sandbox } : {}),
            ...(o.jobs.othersRefused !== undefined ? { othersRefused: o.jobs.othersRefused } : {}),
            ...(o.institution !== undefined ? { institution: o.institution } : {})
          }
        })
  }
}
