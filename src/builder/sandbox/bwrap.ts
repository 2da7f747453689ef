/**
 * The `bwrap` driver: bubblewrap builds the sandbox (user, pid, net, ipc, uts
 * namespaces, its own /proc and /dev, --die-with-parent).
 *
 * Debian's bubblewrap 0.8 has no `--overlay`. For overlay roots the driver
 * therefore mounts the overlay itself in an outer `unshare -Urm` (where the
 * caller is uid 0 of a user namespace, allowed to mount overlayfs with
 * `userxattr`) and hands bwrap the merged dir with `--bind MERGED /`; bwrap
 * nests its own user namespace inside. The step's changes land in the upper
 * dir exactly as with the `unshare` driver, so the same overlay differ
 * applies and no scan of the rootfs is needed. Plain dir roots are bound
 * directly (no outer namespace), for nodes where overlay in a user namespace
 * is refused.
 *
 * bwrap runs with HOST_ENV and gives the step its environment itself
 * (--clearenv, --setenv: ./step-env.ts). It is started with a parent-death
 * SIGKILL (kept across the outer unshare's exec of bwrap) and runs with
 * --die-with-parent, so a killed kiln takes the step's pid namespace, and
 * every process in it, along.
 *
 * Root emulation (./root-emulation.ts): bwrap loads the seccomp program of
 * ./seccomp.ts into the step, so chown, setuid and their kin succeed in the
 * single-uid namespace (docs/building.md, "Root emulation"). With
 * `RunSpec.ledger`, the step runs under fakeroot's ledger (./fakeroot.ts),
 * which records the owners it sets (docs/building.md, "Ownership").
 */
import { prepareScratch, workdirInRoot } from './scratch.ts'
import { mountScript, requireTool } from './ns-script.ts'
import { runProcess } from './process.ts'
import { HOST_ENV, shq } from './host-tools.ts'
import { bwrapLedger, hostFakeroot } from './fakeroot.ts'
import { bwrapRootEmulation } from './root-emulation.ts'
import { bwrapEnvArgs } from './step-env.ts'
import type { RunSpec, RunResult, Sandbox, SandboxFeatures, SandboxMount } from './types.ts'

/** bwrap's inputs start at fd 3 (runProcess's `inputFds`). */
const emulation = bwrapRootEmulation(3)

function mountArgs (m: SandboxMount): string[] {
  if (m.kind === 'tmpfs') return [...(m.sizeBytes !== undefined ? ['--size', String(m.sizeBytes)] : []), '--tmpfs', m.target]
  return [m.readOnly ? '--ro-bind' : '--bind', m.source, m.target]
}

function bwrapArgs (rootDir: string, cwd: string, network: boolean, env: Record<string, string>, mounts: readonly SandboxMount[], user: { uid: number, gid: number }): string[] {
  const args = [
    '--unshare-user', '--uid', String(user.uid), '--gid', String(user.gid),
    '--unshare-pid', '--unshare-ipc', '--unshare-uts',
    '--die-with-parent', '--new-session',
    '--bind', rootDir, '/',
    '--proc', '/proc', '--dev', '/dev',
    ...mounts.flatMap(mountArgs),
    '--chdir', cwd,
    ...emulation.args,
    ...bwrapEnvArgs({ ...emulation.env, ...env })
  ]
  if (!network) args.unshift('--unshare-net')
  else {
    for (const f of ['/etc/resolv.conf', '/etc/hosts']) args.push('--ro-bind-try', f, f)
  }
  return args
}

export function createBwrapSandbox (features: SandboxFeatures = { overlay: true, readOnlyMounts: true, networkIsolation: true, pidIsolation: true, processIsolation: true, rootEmulation: true }): Sandbox {
  return {
    driver: 'bwrap',
    features,
    run: async (spec: RunSpec): Promise<RunResult> => {
      const bwrap = requireTool('bwrap')
      const network = spec.network === true
      const cwd = await workdirInRoot(spec.root, spec.cwd ?? '/')
      const scratch = await prepareScratch(spec.root, network, spec.mounts)
      const ledger = spec.ledger !== undefined ? bwrapLedger(spec.ledger, spec.argv) : undefined
      const argv = ledger?.argv ?? spec.argv
      const user = spec.user ?? { uid: 0, gid: 0 }
      const args = (): string[] => [...bwrapArgs(scratch.rootDir, cwd, network, spec.env, scratch.mounts, user), ...(ledger?.args ?? [])]
      try {
        const common = { env: { ...HOST_ENV }, parentDeathSignal: 'SIGKILL' as const, inputFds: emulation.fds, timeoutMs: spec.timeoutMs, signal: spec.signal, onOutput: spec.onOutput, stdin: spec.stdin, output: spec.output }
        if (scratch.overlayOptions === undefined) {
          return await runProcess({ file: bwrap, args: [...args(), '--', ...argv], ...common })
        }
        const script = [...mountScript(scratch, cwd), `exec ${bwrap} ${args().map(shq).join(' ')} -- "$@"`].join('\n')
        return await runProcess({
          file: requireTool('unshare'),
          args: ['-Urm', '--', requireTool('sh'), '-c', script, 'kiln-sandbox', ...argv],
          ...common
        })
      } finally {
        await scratch.cleanup()
      }
    },
    ledgerRefusal: () => hostFakeroot().refusal
  }
}
