/**
 * The sandbox contract: run one build step as "root" (uid 0 mapped to the
 * calling user) inside a root filesystem, without real privileges.
 *
 * Terms:
 * - root: what the step sees as `/`. Either an overlay (read-only lower
 *   dirs, top-most first, plus an upper dir that receives every change and a
 *   work dir the kernel needs on the same filesystem), or a plain directory
 *   that the step modifies in place (drivers without overlay support).
 * - driver: one way of entering such a root (`bwrap`, `unshare`, `proot`).
 */

export type SandboxDriverName = 'bwrap' | 'unshare' | 'proot'

export type SandboxRoot =
  /** lowers: top-most first (the order of overlayfs `lowerdir=`). */
  | { kind: 'overlay', lowers: string[], upper: string, work: string }
  | { kind: 'dir', path: string }

export type OutputStream = 'stdout' | 'stderr'

/**
 * An extra mount in the step's root (RUN --mount). `target` is an absolute
 * path as the step sees it; the driver resolves it in the root
 * (src/oci/layer/in-root.ts), so a symlink in the image cannot send the
 * mount outside, and creates a missing mount point where it leaves no trace
 * in the step's change (an overlay root: the init layer under the upper dir;
 * a dir root: removed after the run while still empty).
 */
export type SandboxMount =
  /** A host file or dir. `readOnly` needs `features.readOnlyMounts`, else the caller binds a throwaway copy. */
  | { kind: 'bind', source: string, target: string, readOnly: boolean }
  /** An empty in-memory dir, at most `sizeBytes` where the driver can limit it. */
  | { kind: 'tmpfs', target: string, sizeBytes?: number }

export interface RunSpec {
  argv: string[]
  /**
   * The whole environment of the step: nothing of the host's or kiln's
   * leaks in, and none of it reaches a host program (a recipe's
   * LD_PRELOAD must not load into bwrap, unshare or proot): see ./step-env.ts.
   */
  env: Record<string, string>
  /** Absolute working directory inside the root; created when missing. Default '/'. */
  cwd?: string
  root: SandboxRoot
  /** Mounted in this order after the root is set up; a later target may lie inside an earlier one. */
  mounts?: SandboxMount[]
  /** Give the step the host's network. Default false: a private network namespace with only loopback. */
  network?: boolean
  /** Kill the whole process tree after this long. Default: no timeout. */
  timeoutMs?: number
  /** Aborting kills the whole process tree; run() then rejects with the signal's reason. */
  signal?: AbortSignal
  onOutput?: (stream: OutputStream, chunk: Uint8Array) => void
  /**
   * The ids the command runs as in the root. Default 0:0, the namespace's
   * root (what build steps get). Another id is the caller's own uid seen
   * under that number (bwrap `--uid`, a nested user namespace for
   * `unshare`, proot `-i`): files the caller owns show as owned by it.
   */
  user?: { uid: number, gid: number }
  /** `inherit`: the command reads kiln's own stdin (`kiln run -i`). Default: /dev/null. */
  stdin?: 'null' | 'inherit'
  /** `inherit`: the command writes to kiln's own stdout and stderr, and onOutput is not called. Default: piped to onOutput. */
  output?: 'pipe' | 'inherit'
  /**
   * Run the step under the ownership ledger (./fakeroot.ts): a host dir
   * holding `in`, the owners the step starts from; the step leaves `out`
   * and `rootdev` there. Only where `ledgerRefusal()` gives undefined.
   */
  ledger?: string
}

export interface RunResult {
  /** Exit code of the step's command; null when it was killed by a signal. */
  exitCode: number | null
  signal: NodeJS.Signals | null
  /** The timeout fired and the process tree was killed. */
  timedOut: boolean
  durationMs: number
}

export interface SandboxFeatures {
  /** Accepts `{ kind: 'overlay' }` roots (the upper dir then holds exactly the step's changes). */
  overlay: boolean
  /** A `readOnly` bind mount cannot be written through (proot cannot make one). */
  readOnlyMounts: boolean
  /** `network: false` really cuts the step off the host's network. */
  networkIsolation: boolean
  /**
   * Processes the step leaves behind die with it (pid namespace or tracer);
   * also when kiln itself is killed, where util-linux setpriv is installed
   * (./process.ts).
   */
  pidIsolation: boolean
  /**
   * The step cannot see, signal or read the memory of host processes (its
   * own pid namespace), kiln included. Without it a step can reach kiln and
   * its keys: such a driver runs recipes of the operator only, never jobs
   * of other peers nor gateway builds (docs/security.md).
   */
  processIsolation: boolean
  /**
   * chown to any id, setuid/setgid/setgroups to any user and mknod of
   * devices succeed in the step (without taking effect), so package managers
   * and user tools run unmodified as the node's unprivileged user
   * (bwrap: ./seccomp.ts; proot: its `-0`). Without it those calls fail as
   * in any single-uid user namespace.
   */
  rootEmulation: boolean
}

/**
 * Runs build steps. `run` may be called concurrently for different roots.
 * It resolves when every process of the step has exited and nothing it
 * mounted remains; it rejects only for sandbox failures (driver missing, bad
 * root, abort), never because the command failed: see `exitCode`.
 */
export interface Sandbox {
  readonly driver: SandboxDriverName
  readonly features: SandboxFeatures
  run: (spec: RunSpec) => Promise<RunResult>
  /** Undefined when `RunSpec.ledger` works here, else why not (a driver without it leaves this out). */
  ledgerRefusal?: () => string | undefined
}

/** What probing a driver on this node found. */
export interface DriverProbe {
  driver: SandboxDriverName
  ok: boolean
  features: SandboxFeatures
  /** Why it does not work, or notes on how it works. */
  detail: string
}

export interface HostProbe {
  userNamespaces: { ok: boolean, detail: string }
  overlayInUserns: { ok: boolean, detail: string }
  drivers: DriverProbe[]
  /** The first working driver in preference order (bwrap, unshare, proot). */
  selected?: SandboxDriverName
}
