/**
 * RUN: the step's command in the sandbox, on a writable root the
 * snapshotter gives, with the stage's env, working dir and user-facing
 * output; a failure quotes the output's tail.
 */
import { constants as fsc } from 'node:fs'
import { mkdtemp, open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Digest } from '../../content/index.ts'
import { formatPlatform, hostPlatform } from '../../oci/index.ts'
import type { Platform } from '../../oci/index.ts'
import type { RunStep, SourceLoc } from '../../recipe/ir.ts'
import { envMap } from '../config-steps.ts'
import { emulatorFor } from '../container.ts'
import { DEFAULT_PATH, FAILED_STEP_OUTPUT_TAIL, NO_NETWORK_OUTPUT } from '../constants.ts'
import { SandboxError, StepFailedError, UnsupportedStepError } from '../errors.ts'
import { instructionSummary } from '../instruction-text.ts'
import type { Sandbox, SandboxRoot } from '../sandbox/index.ts'
import { applyLedger, composeOwners, glibcRefusal, layerOwners, ledgerInput } from '../owner-ledger.ts'
import { homeOf } from '../ownership.ts'
import type { LedgerInput } from '../owner-ledger.ts'
import { LayerTree } from '../rootfs-view.ts'
import { removeTree } from '../sandbox/index.ts'
import { stageDirs } from '../snapshotter/index.ts'
import type { LayerEdit, Snapshotter } from '../snapshotter/index.ts'
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
 * Why the owners a RUN step sets cannot be kept in its layer, or undefined
 * when they are: the step then runs under the ownership ledger
 * (../owner-ledger.ts, ../sandbox/fakeroot.ts). Decided before the step's
 * key, from the node and the stage only, so a cached step says the same.
 */
export async function ownersRefusal (ctx: RunContext, snap: Snapshotter, st: StageState): Promise<string | undefined> {
  const sb = await ctx.sandbox()
  if (sb.ledgerRefusal === undefined) return `the ${sb.driver} driver keeps no record of them`
  const node = sb.ledgerRefusal()
  if (node !== undefined) return node
  if (snap.kind !== 'overlay') return 'steps run on a plain root here (no overlay in a user namespace), where the ledger is not used'
  const { platform } = ctx.scope
  if (platform.architecture !== hostPlatform().architecture) return `RUN for ${formatPlatform(platform)} runs under an emulator, into which libfakeroot cannot be loaded`
  return await glibcRefusal(new LayerTree(await stageDirs(ctx.scope, st)))
}

/** faked writes about 80 bytes per file it knows: far above any real step's ledger. */
const MAX_LEDGER_BYTES = 256 * 1024 * 1024
/** The longest path the host's calls take (Linux's PATH_MAX). */
const PATH_MAX = 4096

/** The ledger of one step: its dir, what it starts from (filled in by `exec`) and the edit that applies it to the step's layer. */
async function stepLedger (scope: BuildScope, st: StageState, source: SourceLoc): Promise<{ dir: string, prepare: (lowers: string[]) => Promise<void>, edit: LayerEdit }> {
  const dir = await mkdtemp(join(scope.dirs.tmp, 'ledger-'))
  let input: LedgerInput | undefined
  return {
    dir,
    prepare: async (lowers) => {
      const summaries = await Promise.all(st.layers.map(async l => await layerOwners(scope.store, l.digest, scope.options.signal).catch((err: unknown) => {
        scope.options.signal?.throwIfAborted()
        scope.emit({ type: 'warning', message: `the owners in layer ${l.digest} cannot be read (${(err as Error).message}): files of it that a RUN step rewrites become 0:0` })
        return { owned: new Map(), whiteouts: [], opaques: [] }
      })))
      input = await ledgerInput(composeOwners(summaries), lowers)
      await writeFile(join(dir, 'in'), input.text)
    },
    edit: async (entries, { upper, lowers }) => {
      // The step can write the ledger dir: a link is not followed, a file larger than any ledger is refused, and a
      // fifo or device is opened without waiting (a fifo with no writer would block the open, and the build, forever).
      const read = async (name: string): Promise<string> => {
        const replaced = new StepFailedError(source, `the step replaced the ownership ledger's ${name} with something other than a file of at most ${MAX_LEDGER_BYTES} bytes`, null, '')
        const fh = await open(join(dir, name), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ELOOP') throw replaced
          throw new SandboxError(`the ownership ledger of the step left no ${name} (fakeroot's faked stopped early?): run the build again; kiln doctor checks fakeroot`)
        })
        try {
          const st = await fh.stat()
          if (!st.isFile() || st.size > MAX_LEDGER_BYTES) throw replaced
          return await fh.readFile('utf8')
        } finally {
          await fh.close()
        }
      }
      return await applyLedger(entries, await read('out'), await read('rootdev'), input ?? { text: '', paths: new Map(), records: new Map() }, upper, lowers)
    }
  }
}

/**
 * Runs the step and commits its change; returns the driver that ran it. A
 * check (`step.check`, Apptainer's %test) has no key and leaves nothing:
 * `key` is undefined and `lastUse` says whether a later step reads the stage.
 * `keepOwners`: run it under the ownership ledger (where `ownersRefusal` said so).
 */
export async function runStep (ctx: RunContext, snap: Snapshotter, st: StageState, step: RunStep, key: Digest | undefined, lastUse = false, keepOwners = false): Promise<string> {
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
  const ledger = keepOwners && key !== undefined ? await stepLedger(scope, st, step.source) : undefined
  const exec = async (root: SandboxRoot): Promise<void> => {
    if (ledger !== undefined && root.kind === 'overlay') await ledger.prepare(root.lowers)
    const mounts = await prepareMounts(scope, step, sb.features)
    const env: Record<string, string> = { PATH: DEFAULT_PATH, ...step.env, ...envMap(st.config.Env), ...mounts.env }
    // As Docker's runtime: the USER's home (root's without USER) from the stage's /etc/passwd, unless the recipe set HOME.
    env.HOME ??= await homeOf(new LayerTree(await stageDirs(scope, st)), st.config.User)
    const r = await sb.run({
      argv, env, cwd: st.config.WorkingDir !== undefined && st.config.WorkingDir !== '' ? st.config.WorkingDir : '/',
      root,
      mounts: mounts.mounts,
      network,
      ...(ledger !== undefined ? { ledger: ledger.dir } : {}),
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
  try {
    if (key === undefined) await snap.check(st, exec, lastUse)
    else await snap.run(st, step, key, exec, ledger?.edit)
  } catch (err) {
    // Paths in the step's change are read on the host below kiln's work dir: one that cannot be named there
    // (PATH_MAX) is the step's doing, and the step's scratch is removed all the same (removeTree moves deep dirs up).
    if ((err as NodeJS.ErrnoException).code === 'ENAMETOOLONG') {
      throw new StepFailedError(step.source, `the step made a path too deep for kiln to read back into a layer (the host's limit is ${PATH_MAX} bytes, counted from kiln's work dir): ${instructionSummary(scope.textOf(step))}`, null, tail)
    }
    throw err
  } finally {
    if (ledger !== undefined) await removeTree(ledger.dir)
  }
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

