/**
 * The `unshare` driver: util-linux `unshare -Urmpf --kill-child` gives a user
 * namespace (the caller is uid 0 inside, one mapping, no /etc/subuid), a
 * private mount namespace, and a pid namespace whose init is the step, so a
 * kill of the unshare process takes the whole tree with it. `-n` adds an
 * empty network namespace unless the step may use the network. Mounts live in
 * the private namespace and vanish with it: nothing is left on any exit path.
 */
import { prepareScratch, workdirInRoot } from './scratch.ts'
import { enterScript, mountScript, requireTool } from './ns-script.ts'
import { runProcess } from './process.ts'
import type { RunSpec, RunResult, Sandbox, SandboxFeatures } from './types.ts'

export function createUnshareSandbox (features: SandboxFeatures = { overlay: true, networkIsolation: true, pidIsolation: true }): Sandbox {
  return {
    driver: 'unshare',
    features,
    run: async (spec: RunSpec): Promise<RunResult> => {
      const unshare = requireTool('unshare')
      const network = spec.network === true
      const cwd = await workdirInRoot(spec.root, spec.cwd ?? '/')
      const scratch = await prepareScratch(spec.root, network)
      try {
        const script = [...mountScript(scratch, cwd), ...enterScript(scratch, cwd, network)].join('\n')
        const flags = network ? '-Urmpf' : '-Urmpfn'
        return await runProcess({
          file: unshare,
          args: [flags, '--kill-child', '--', requireTool('sh'), '-c', script, 'kiln-sandbox', ...spec.argv],
          env: spec.env,
          timeoutMs: spec.timeoutMs,
          signal: spec.signal,
          onOutput: spec.onOutput
        })
      } finally {
        await scratch.cleanup()
      }
    }
  }
}
