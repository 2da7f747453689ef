/**
 * The `unshare` driver: util-linux `unshare -Urmpf --kill-child` gives a user
 * namespace (the caller is uid 0 inside, one mapping, no /etc/subuid), a
 * private mount namespace, and a pid namespace whose init is the step, so a
 * kill of the unshare process takes the whole tree with it. `-n` adds an
 * empty network namespace unless the step may use the network. Mounts live in
 * the private namespace and vanish with it: nothing is left on any exit path.
 *
 * unshare itself runs with a parent-death SIGKILL (`setpriv --pdeathsig`),
 * so a killed kiln kills unshare, whose --kill-child then kills the step's
 * pid 1 and with it the namespace. Host programs run with HOST_ENV; the
 * step's environment is set in the root by the host's static busybox
 * (./step-env.ts), which this driver therefore needs.
 *
 * No root emulation: util-linux has no way to load a seccomp program
 * (./seccomp.ts) and node cannot call seccomp(2) without a native addon, so
 * a step's chown to another id or setuid to another user fails here as in
 * any single-uid user namespace. Recipes that install packages need bwrap
 * (docs/building.md, "Root emulation").
 */
import { prepareScratch, workdirInRoot } from './scratch.ts'
import { NS_ENV_SETTER, enterScript, mountScript, requireTool } from './ns-script.ts'
import { HOST_ENV } from './host-tools.ts'
import { runProcess } from './process.ts'
import { envArgv } from './step-env.ts'
import type { RunSpec, RunResult, Sandbox, SandboxFeatures } from './types.ts'

export function createUnshareSandbox (features: SandboxFeatures = { overlay: true, readOnlyMounts: true, networkIsolation: true, pidIsolation: true, processIsolation: true, rootEmulation: false }): Sandbox {
  return {
    driver: 'unshare',
    features,
    run: async (spec: RunSpec): Promise<RunResult> => {
      const unshare = requireTool('unshare')
      const busybox = requireTool('busybox')
      const argv = envArgv(NS_ENV_SETTER, spec.env, spec.argv)
      const network = spec.network === true
      const cwd = await workdirInRoot(spec.root, spec.cwd ?? '/')
      const scratch = await prepareScratch(spec.root, network, spec.mounts)
      try {
        const script = [...mountScript(scratch, cwd), ...enterScript(scratch, cwd, network, busybox, spec.user)].join('\n')
        const flags = network ? '-Urmpf' : '-Urmpfn'
        return await runProcess({
          file: unshare,
          args: [flags, '--kill-child', '--', requireTool('sh'), '-c', script, 'kiln-sandbox', ...argv],
          env: { ...HOST_ENV },
          parentDeathSignal: 'SIGKILL',
          timeoutMs: spec.timeoutMs,
          signal: spec.signal,
          onOutput: spec.onOutput,
          stdin: spec.stdin,
          output: spec.output
        })
      } finally {
        await scratch.cleanup()
      }
    }
  }
}
