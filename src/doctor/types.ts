import type { HostProbe } from '../builder/sandbox/index.ts'
import type { KilnConfig } from '../config/index.ts'

/**
 * - ok: works as kiln needs it.
 * - warn: works, but worse than it could (slower, less isolated, risky).
 * - problem: kiln cannot do part of its job until this is fixed; `kiln doctor` exits non-zero.
 * - skip: not applicable here (not configured, not present), with a note why.
 */
export type CheckStatus = 'ok' | 'warn' | 'problem' | 'skip'

export interface CheckResult {
  /** Stable id, e.g. `userns.max`, `disk.space`; docs/troubleshooting.md has a section per id. */
  id: string
  /** What was checked, for people. */
  title: string
  status: CheckStatus
  /** What was found. */
  detail: string
  /** What to do about a warn or problem. */
  fix?: string
}

export interface FsStats {
  /** f_type magic number. */
  type: number
  bsize: number
  blocks: number
  /** Blocks free to unprivileged users. */
  bavail: number
  files: number
  ffree: number
}

/**
 * Everything the checks learn about the system goes through here, so a
 * test hands in a fake system (no user namespaces, a full disk, NFS...).
 */
export interface SystemAccess {
  /** A file's text, or undefined if it does not exist or cannot be read. */
  readText: (path: string) => Promise<string | undefined>
  /** Names in a directory, or undefined if it does not exist. */
  readdir: (path: string) => Promise<string[] | undefined>
  /** statfs of a path; throws if the path does not exist. */
  statfs: (path: string) => Promise<FsStats>
  /** Permission bits of a path (following links), or undefined if it does not exist. */
  mode: (path: string) => Promise<number | undefined>
  /** Opens and closes a TCP connection; rejects on error or timeout. */
  connect: (host: string, port: number, timeoutMs: number) => Promise<void>
  /**
   * A libp2p dial (the node's transports, encryption, pnet key) to a
   * multiaddr, then identify: the remote peer id and the protocols it
   * speaks. Rejects on failure or timeout (a wrong /p2p/ id, a pnet key
   * mismatch, not a libp2p peer).
   */
  dialPeer: (multiaddr: string, timeoutMs: number) => Promise<{ peerId: string, protocols: string[] }>
  /** The Date header of a HEAD request, or undefined if the answer had none. Rejects on failure. */
  httpDate: (url: string, timeoutMs: number) => Promise<Date | undefined>
  /** The first line `NAME --version` prints, or undefined if NAME is not on PATH or fails. */
  toolVersion: (name: string) => Promise<string | undefined>
  /** The sandbox drivers' probe (src/builder/sandbox). */
  probeSandboxes: () => Promise<HostProbe>
  /** Why bwrap cannot record owners set in RUN steps here (fakeroot's ledger), or undefined when it can (src/builder/sandbox). */
  ownershipLedger: () => string | undefined
  /** Trust roots and single peers this node trusts (trust.yaml + kiln.yaml). Rejects if trust.yaml is invalid. */
  trustCounts: () => Promise<{ roots: number, peers: number }>
  now: () => number
  /** Node's process.arch of this host. */
  arch: string
}

export interface CheckContext {
  config: KilnConfig
  system: SystemAccess
  /** A kiln gateway (or any HTTP server of the network) to compare clocks with; default node.timeReference. */
  gatewayUrl?: string
}

export type Check = (ctx: CheckContext) => Promise<CheckResult[]>
