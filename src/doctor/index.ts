/**
 * `kiln doctor`: checks that a node can run kiln, each answering ok, warn,
 * problem or skip, with what was found and how to fix it. Every check reads
 * the system through `SystemAccess`, so tests inject a broken one.
 * docs/troubleshooting.md explains each check by its id.
 *
 * @example
 * ```ts
 * const doctor = createDoctor({ config })              // the real system
 * const report = await doctor.run()
 * if (report.problems > 0) process.exitCode = 1
 * ```
 */
import type { KilnConfig } from '../config/index.ts'
import { checkClock } from './checks/clock.ts'
import { checkDataDir } from './checks/data-dir.ts'
import { checkDisk } from './checks/disk.ts'
import { checkEmulators } from './checks/emulators.ts'
import { checkGit } from './checks/git.ts'
import { checkNetwork } from './checks/network.ts'
import { checkSandboxes } from './checks/sandbox.ts'
import { checkTrust } from './checks/trust.ts'
import { checkUserNamespaces } from './checks/userns.ts'
import { createSystemAccess } from './system.ts'
import type { Check, CheckResult, SystemAccess } from './types.ts'

export type { Check, CheckContext, CheckResult, CheckStatus, FsStats, SystemAccess } from './types.ts'
export { createSystemAccess } from './system.ts'
export { mountTypeOf } from './checks/disk.ts'
export { tcpTarget } from './checks/network.ts'

export interface DoctorInit {
  config: KilnConfig
  /** Default: the real system. */
  system?: SystemAccess
  /** A gateway to compare clocks with; without one the clock check is skipped. */
  gatewayUrl?: string
}

export interface DoctorReport {
  checks: CheckResult[]
  problems: number
  warnings: number
}

export interface Doctor {
  /** Runs every check (concurrently); a check that throws is reported as a problem, never thrown. */
  run: () => Promise<DoctorReport>
}

/** In the order they are printed. */
const CHECKS: ReadonlyArray<readonly [string, Check]> = [
  ['userns', checkUserNamespaces],
  ['sandbox', checkSandboxes],
  ['disk', checkDisk],
  ['datadir', checkDataDir],
  ['network', checkNetwork],
  ['clock', checkClock],
  ['trust', checkTrust],
  ['emulators', checkEmulators],
  ['git', checkGit]
]

export function createDoctor (init: DoctorInit): Doctor {
  const system = init.system ?? createSystemAccess(init.config)
  const ctx = { config: init.config, system, ...(init.gatewayUrl !== undefined ? { gatewayUrl: init.gatewayUrl } : {}) }
  return {
    run: async () => {
      const groups = await Promise.all(CHECKS.map(async ([id, check]): Promise<CheckResult[]> => {
        try {
          return await check(ctx)
        } catch (err) {
          return [{ id, title: id, status: 'problem', detail: `the check failed: ${(err as Error).message}`, fix: 'report this as a kiln bug with the output of KILN_DEBUG=1 kiln doctor' }]
        }
      }))
      const checks = groups.flat()
      return { checks, problems: checks.filter(c => c.status === 'problem').length, warnings: checks.filter(c => c.status === 'warn').length }
    }
  }
}
