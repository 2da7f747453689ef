/**
 * How a running agent answers signals (`kiln agent`, `kiln up`):
 *
 * - SIGTERM or SIGINT: take no new jobs, hand queued ones back, let running
 *   builds finish for up to the drain timeout, hand back what is still
 *   running (the requester awards it elsewhere), then stop. A second signal
 *   ends the drain at once. The command then exits 0.
 * - SIGHUP: read kiln.yaml and the trust policy (trust.yaml + kiln.yaml's
 *   trust section) again and apply what can change while running: the trust
 *   policy, log level, agent.allowNetwork and agent.maxConcurrentBuilds
 *   (command-line flags keep precedence). What changed is logged; a reload
 *   that fails (a file that does not parse) keeps the old settings.
 *
 * @example
 * ```ts
 * const life = handleSignals({ agent, drainMs: 90_000, log, reload: () => loadRunSettings({...}), current, setLogLevel })
 * const signal = await life.stopped   // after the drain and agent.stop()
 * ```
 */
import type { Logger } from 'pino'
import { loadConfig } from '../src/config/index.ts'
import { loadTrustPolicy } from '../src/trust/index.ts'
import type { LiveTrust, TrustPolicy } from '../src/trust/index.ts'
import type { JobAgentSettings, JobAgentStopOptions } from './jobs/index.ts'

/**
 * Default drain: inside the Slurm script's 120 s warning (whose watchdog
 * kills after 100 s) and far inside the systemd unit's TimeoutStopSec.
 */
export const DEFAULT_DRAIN_MS = 90_000

/** What SIGHUP can change. */
export interface RunSettings {
  logLevel: string
  allowNetwork: boolean
  maxConcurrentBuilds: number
  policy: TrustPolicy
}

/** The part of the agent the lifecycle drives. */
export interface ManagedAgent {
  readonly jobs?: { configure: (settings: JobAgentSettings) => void }
  stop: (options?: JobAgentStopOptions) => Promise<void>
}

/** What the process looks like to the lifecycle (a fake in tests). */
export interface SignalSource {
  on: (signal: NodeJS.Signals, listener: () => void) => unknown
  off: (signal: NodeJS.Signals, listener: () => void) => unknown
}

export interface LifecycleInit {
  agent: ManagedAgent
  /** How long running builds may finish after SIGTERM; default DEFAULT_DRAIN_MS. */
  drainMs?: number
  log: Logger
  /** The settings in force at start. */
  current: RunSettings
  /** Reads the settings again (SIGHUP); may reject, which keeps the current ones. */
  reload: () => Promise<RunSettings>
  setLogLevel: (level: string) => void
  /** Default: the process. */
  signals?: SignalSource
}

export interface Lifecycle {
  /** Resolves with the signal's name once the agent has drained and stopped. */
  readonly stopped: Promise<string>
  /** Applies a reload now, as SIGHUP does; resolves with the names of what changed. */
  reload: () => Promise<string[]>
}

/** The policy's roots and peers, for saying whether a reload changed it. */
function describePolicy (policy: TrustPolicy): string {
  return JSON.stringify(policy.config)
}

export function handleSignals (init: LifecycleInit): Lifecycle {
  const signals: SignalSource = init.signals ?? process
  const drainMs = init.drainMs ?? DEFAULT_DRAIN_MS
  const log = init.log
  let current = init.current
  // A snapshot, not the object: a live policy (src/trust/live-trust.ts) is the same object before and after a reload.
  let trustInForce = describePolicy(init.current.policy)
  let reloading: Promise<string[]> = Promise.resolve([])

  const apply = async (): Promise<string[]> => {
    let next: RunSettings
    try {
      next = await init.reload()
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reload failed: the settings in force are kept')
      return []
    }
    const changed: string[] = []
    const fields: Record<string, unknown> = {}
    if (next.logLevel !== current.logLevel) { init.setLogLevel(next.logLevel); changed.push('logLevel'); fields.logLevel = `${current.logLevel} -> ${next.logLevel}` }
    if (next.allowNetwork !== current.allowNetwork) { changed.push('allowNetwork'); fields.allowNetwork = `${current.allowNetwork} -> ${next.allowNetwork}` }
    if (next.maxConcurrentBuilds !== current.maxConcurrentBuilds) { changed.push('maxConcurrentBuilds'); fields.maxConcurrentBuilds = `${current.maxConcurrentBuilds} -> ${next.maxConcurrentBuilds}` }
    const nextTrust = describePolicy(next.policy)
    const trustChanged = nextTrust !== trustInForce
    trustInForce = nextTrust
    if (trustChanged) {
      changed.push('trust')
      const c = next.policy.config
      fields.trust = `${c.roots.length} root(s), ${c.peers.length} peer(s)`
    }
    // The policy object is handed over even when it reads the same: certificates on disk may have changed.
    init.agent.jobs?.configure({ policy: next.policy, allowNetwork: next.allowNetwork, concurrency: next.maxConcurrentBuilds })
    current = next
    log.info({ ...fields, changed }, changed.length === 0 ? 'reloaded: nothing changed' : `reloaded: ${changed.join(', ')} changed`)
    return changed
  }
  const reload = async (): Promise<string[]> => {
    reloading = reloading.then(apply, apply)
    return await reloading
  }

  const onHup = (): void => { void reload() }
  let stopping = false
  const cutShort = new AbortController()
  const stopped = new Promise<string>(resolve => {
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: ending the drain, handing running jobs back now')
        cutShort.abort()
        return
      }
      stopping = true
      log.info({ signal, drainMs }, `stopping: no new jobs; running builds have ${Math.round(drainMs / 1000)} s to finish before they are handed back`)
      init.agent.stop({ drainMs, signal: cutShort.signal }).then(
        () => { log.info('stopped') },
        (err: Error) => { log.error({ err }, 'stop failed') }
      ).finally(() => {
        for (const [s, l] of listeners) signals.off(s, l)
        resolve(signal)
      })
    }
    const listeners: Array<[NodeJS.Signals, () => void]> = [
      ['SIGTERM', () => { stop('SIGTERM') }],
      ['SIGINT', () => { stop('SIGINT') }],
      ['SIGHUP', onHup]
    ]
    for (const [s, l] of listeners) signals.on(s, l)
  })
  return { stopped, reload }
}

export interface LoadRunSettingsInit {
  /** kiln.yaml as the command found it (config.configFile); none: defaults. */
  configFile?: string
  dataDir: string
  /** This node's peer id (trusted in every role). */
  self: string
  /** Command-line values: they win over kiln.yaml on every reload. */
  flags?: { logLevel?: string, allowNetwork?: boolean, maxConcurrentBuilds?: number }
  /**
   * The process's live trust: read again (with kiln.yaml's trust section as
   * it is now) instead of loading a policy of the agent's own, so that every
   * service sharing it sees the reload.
   */
  trust?: LiveTrust
}

/** Reads kiln.yaml and the trust policy as a SIGHUP reload sees them. */
export async function loadRunSettings (init: LoadRunSettingsInit): Promise<RunSettings> {
  const config = await loadConfig({ ...(init.configFile !== undefined ? { file: init.configFile } : {}), overrides: { dataDir: init.dataDir } })
  let policy: TrustPolicy
  if (init.trust !== undefined) {
    await init.trust.reload(config.trust)
    policy = init.trust.policy
  } else {
    policy = await loadTrustPolicy(init.dataDir, { self: init.self, config: config.trust })
  }
  return {
    logLevel: init.flags?.logLevel ?? config.logLevel,
    allowNetwork: init.flags?.allowNetwork ?? config.agent.allowNetwork,
    maxConcurrentBuilds: init.flags?.maxConcurrentBuilds ?? config.agent.maxConcurrentBuilds,
    policy
  }
}

/**
 * A level setter that reaches child loggers too (pino copies the level into
 * a child when it is made). Call it before making the children it must reach.
 */
export function followLogLevel (root: Logger): (level: string) => void {
  const children = new Set<WeakRef<Logger>>()
  root.onChild = (child: Logger) => { children.add(new WeakRef(child)) }
  return (level) => {
    root.level = level
    for (const ref of children) {
      const child = ref.deref()
      if (child === undefined) children.delete(ref)
      else child.level = level
    }
  }
}
