/**
 * Sandboxes for build steps: run a command as root-inside-a-user-namespace
 * in an image's root filesystem, with no real privileges, no setuid helper
 * and no /etc/subuid. Drivers: `bwrap`, `unshare`, `proot`, chosen
 * automatically from what works on the node (probed once, cached).
 *
 * @example
 * ```ts
 * const sandbox = await createSandbox()           // or { driver: 'unshare' }
 * const r = await sandbox.run({
 *   argv: ['/bin/sh', '-c', 'echo hi > /x'], env: { PATH: '/bin' }, cwd: '/',
 *   root: { kind: 'overlay', lowers: [baseDir], upper, work },
 *   timeoutMs: 60_000, onOutput: (stream, chunk) => process.stdout.write(chunk)
 * })
 * // r.exitCode === 0, and `upper` now holds /x
 * ```
 */
import { SandboxUnavailableError } from '../errors.ts'
import { hostFakeroot } from './fakeroot.ts'
import { probeSandboxes, sandboxFor } from './probe.ts'
import type { Sandbox, SandboxDriverName, SandboxFeatures } from './types.ts'

export type * from './types.ts'
export { probeSandboxes } from './probe.ts'
export { removeTree } from './scratch.ts'

/** Why the bwrap driver cannot keep owners set in RUN steps on this node (fakeroot's ledger, ./fakeroot.ts), or undefined when it can. */
export const ownershipLedgerRefusal = (): string | undefined => hostFakeroot().refusal

export interface SandboxInit {
  /** Use this driver; default: the first that works in the order bwrap, unshare, proot. */
  driver?: SandboxDriverName
  /** Keep the probe result here between processes (see ./probe.ts). */
  probeCacheDir?: string
}

/**
 * Why steps of recipes from anyone but the operator (jobs of other peers,
 * gateway builds) must not run under this driver, or undefined when they
 * may: the one place that decides it (the agent, `kiln up`, `kiln doctor`).
 */
export function othersRefusal (sandbox: { driver: SandboxDriverName, features: SandboxFeatures }): string | undefined {
  if (sandbox.features.processIsolation) return undefined
  return `the ${sandbox.driver} sandbox cannot isolate build steps from kiln (a step can signal kiln and read its memory and keys; see docs/security.md), so it builds no recipes of others: that needs bwrap or unshare (kiln doctor shows which work here)`
}

export async function createSandbox (init: SandboxInit = {}): Promise<Sandbox> {
  const probe = await probeSandboxes(init.probeCacheDir !== undefined ? { cacheDir: init.probeCacheDir } : {})
  if (init.driver !== undefined) {
    const found = probe.drivers.find(d => d.driver === init.driver)
    if (found?.ok !== true) throw new SandboxUnavailableError(`sandbox driver ${init.driver} does not work on this node: ${found?.detail ?? 'unknown driver'}`)
    return sandboxFor(found.driver, found.features)
  }
  const selected = probe.drivers.find(d => d.driver === probe.selected)
  if (selected === undefined) {
    throw new SandboxUnavailableError(`no sandbox driver works on this node: ${probe.drivers.map(d => `${d.driver}: ${d.detail}`).join('; ')}`)
  }
  return sandboxFor(selected.driver, selected.features)
}
