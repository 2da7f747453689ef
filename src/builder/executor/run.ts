/**
 * RUN: the step's command in the sandbox, on a writable root the
 * snapshotter gives, with the stage's env, working dir and user-facing
 * output; a failure quotes the output's tail.
 */
import type { Digest } from '../../content/index.ts'
import { formatPlatform, hostPlatform } from '../../oci/index.ts'
import type { Platform } from '../../oci/index.ts'
import type { RunStep, SourceLoc } from '../../recipe/ir.ts'
import { envMap } from '../config-steps.ts'
import { emulatorFor } from '../container.ts'
import { DEFAULT_PATH, FAILED_STEP_OUTPUT_TAIL, NO_NETWORK_OUTPUT } from '../constants.ts'
import { StepFailedError, UnsupportedStepError } from '../errors.ts'
import { instructionSummary } from '../instruction-text.ts'
import type { Sandbox, SandboxRoot } from '../sandbox/index.ts'
import type { Snapshotter } from '../snapshotter/index.ts'
import { prepareMounts } from './mounts.ts'
import type { BuildScope, StageState } from '../stage.ts'

export interface RunContext {
  scope: BuildScope
  sandbox: () => Promise<Sandbox>
  /** Warnings already given in this build (each is said once). */
  warned: { network: boolean, root: boolean }
}

/** The argv a RUN executes: exec form as is, shell form through the stage's SHELL, a heredoc script written to a temp file first. */
function argvOf (step: RunStep): string[] {
  if (step.command.form === 'exec') return step.command.argv
  if (step.command.form === 'shell') return [...step.shell, step.command.script]
  return [...step.shell, `f=$(mktemp) && cat > "$f" <<'KILN_SHEBANG_EOF'\n${step.command.content}\nKILN_SHEBANG_EOF\nchmod +x "$f" && "$f"; rc=$?; rm -f "$f"; exit $rc`]
}

/**
 * Runs the step and commits its change; returns the driver that ran it. A
 * check (`step.check`, Apptainer's %test) has no key and leaves nothing:
 * `key` is undefined and `lastUse` says whether a later step reads the stage.
 */
export async function runStep (ctx: RunContext, snap: Snapshotter, st: StageState, step: RunStep, key: Digest | undefined, lastUse = false): Promise<string> {
  const { scope } = ctx
  const { platform, options } = scope
  checkRunnable(platform, step.source)
  const sb = await ctx.sandbox()
  const network = scope.networkFor(step)
  if (!network && !sb.features.networkIsolation && !ctx.warned.network) {
    ctx.warned.network = true
    scope.emit({ type: 'warning', message: `the ${sb.driver} driver cannot cut RUN steps off the network: they see the host's network (kiln doctor shows the drivers that can)` })
  }
  if (!sb.features.rootEmulation && !ctx.warned.root) {
    ctx.warned.root = true
    scope.emit({ type: 'warning', message: `the ${sb.driver} driver has no root emulation: chown, setuid and setgroups to other ids fail in RUN steps (apt-get, useradd); bwrap has it (docs/building.md, "Root emulation")` })
  }
  const argv = argvOf(step)
  let tail = ''
  const exec = async (root: SandboxRoot): Promise<void> => {
    const mounts = await prepareMounts(scope, step, sb.features)
    const env: Record<string, string> = { PATH: DEFAULT_PATH, ...step.env, ...envMap(st.config.Env), ...mounts.env }
    const r = await sb.run({
      argv, env, cwd: st.config.WorkingDir !== undefined && st.config.WorkingDir !== '' ? st.config.WorkingDir : '/',
      root,
      mounts: mounts.mounts,
      network,
      timeoutMs: options.stepTimeoutMs,
      signal: options.signal,
      onOutput: (stream, chunk) => {
        tail = (tail + Buffer.from(chunk).toString()).slice(-FAILED_STEP_OUTPUT_TAIL)
        scope.emit({ type: 'output', stream, chunk, ...(st.step !== undefined ? { index: st.step } : {}) })
      }
    }).finally(mounts.release)
    const text = instructionSummary(scope.textOf(step))
    const what = step.check === true ? 'the check' : 'RUN'
    if (r.timedOut) throw new StepFailedError(step.source, `${what} timed out after ${String(options.stepTimeoutMs)} ms: ${text}`, null, tail)
    if (r.exitCode !== 0) throw new StepFailedError(step.source, `${what} failed with ${r.exitCode === null ? `signal ${String(r.signal)}` : `exit code ${r.exitCode}`}: ${text}`, r.exitCode, tail, network ? undefined : offlineHint(step, tail))
  }
  if (key === undefined) await snap.check(st, exec, lastUse)
  else await snap.run(st, step, key, exec)
  return sb.driver
}

/** For a step that ran without network and whose output says it wanted one: what to change. */
function offlineHint (step: RunStep, tail: string): string | undefined {
  if (!NO_NETWORK_OUTPUT.test(tail)) return undefined
  return step.network === 'none'
    ? 'the step ran without network, as its RUN --network=none says'
    : 'the step ran without network: kiln build --network=default gives RUN steps the network (kiln submit --network=default asks an agent, whose agent.allowNetwork decides)'
}

/** Throws UnsupportedStepError when a RUN for `platform` cannot run here: another architecture, and no emulator registered for it. */
export function checkRunnable (platform: Platform, source?: SourceLoc): void {
  const host = hostPlatform()
  if (platform.architecture !== host.architecture && !emulatorFor(platform.architecture)) {
    throw new UnsupportedStepError(`RUN for ${formatPlatform(platform)} needs an emulator registered in /proc/sys/fs/binfmt_misc (this node is ${formatPlatform(host)}); build on a ${platform.architecture} node or register qemu-user-static`, source)
  }
}

