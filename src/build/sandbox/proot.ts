/**
 * The `proot` driver: ptrace-based, needs no namespaces at all, so it works
 * on nodes where user namespaces are disabled. It cannot mount overlayfs, so
 * it takes only plain dir roots (the builder then diffs by scanning), and it
 * cannot cut the network off: `features.networkIsolation` is false and the
 * builder says so when a step asks for no network.
 */
import { mkdirInRoot } from './scratch.ts'
import { requireTool } from './ns-script.ts'
import { runProcess } from './process.ts'
import { SandboxError } from '../errors.ts'
import type { RunSpec, RunResult, Sandbox } from './types.ts'

export function createProotSandbox (): Sandbox {
  return {
    driver: 'proot',
    features: { overlay: false, networkIsolation: false, pidIsolation: false },
    run: async (spec: RunSpec): Promise<RunResult> => {
      if (spec.root.kind !== 'dir') throw new SandboxError('the proot driver needs a plain root directory, not an overlay')
      const proot = requireTool('proot')
      const cwd = spec.cwd ?? '/'
      await mkdirInRoot(spec.root.path, cwd)
      const binds = ['/dev', '/proc', '/sys'].flatMap(p => ['-b', p])
      if (spec.network === true) binds.push('-b', '/etc/resolv.conf', '-b', '/etc/hosts')
      return await runProcess({
        file: proot,
        args: ['-0', '-r', spec.root.path, '-w', cwd, ...binds, ...spec.argv],
        // proot itself reads PROOT_* and TMPDIR; the step sees the same env.
        env: spec.env,
        timeoutMs: spec.timeoutMs,
        signal: spec.signal,
        onOutput: spec.onOutput
      })
    }
  }
}
