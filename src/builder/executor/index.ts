/**
 * The step executor: runs one filesystem step (RUN, COPY/ADD, an Apptainer
 * front end's file) on a stage, its change committed by the snapshotter
 * (../snapshotter). It knows nothing of the cache: the builder
 * (../builder.ts) makes the key and asks the cache first.
 */
import type { Digest } from '../../content/index.ts'
import type { CopyStep, FileStep, RunStep } from '../../recipe/ir.ts'
import type { Sandbox } from '../sandbox/index.ts'
import type { Snapshotter } from '../snapshotter/index.ts'
import type { BuildScope, StageState } from '../stage.ts'
import { copyInputs, copyStep, fileStep } from './copy.ts'
import type { CopyInputs } from './copy.ts'
import { ownersRefusal, runStep } from './run.ts'

export type { CopyInputs } from './copy.ts'

export type FsStep = RunStep | CopyStep | FileStep

export interface StepExecutor {
  /** What a COPY reads, gathered before its key is made (the key hashes `digests`). */
  copyInputs: (step: CopyStep) => Promise<CopyInputs>
  /** Why owners set inside a RUN step on this stage cannot be kept, or undefined when they are (ask before the step's key). */
  ownersRefusal: (snap: Snapshotter, st: StageState) => Promise<string | undefined>
  /** Runs the step on the stage; a COPY takes the inputs `copyInputs` gave; a RUN keeps its owners when `keepOwners`. */
  execute: (snap: Snapshotter, st: StageState, step: FsStep, key: Digest, inputs?: CopyInputs, keepOwners?: boolean) => Promise<void>
  /** Runs a check (Apptainer's %test): no key, no layer; `lastUse` when no later step reads the stage. */
  check: (snap: Snapshotter, st: StageState, step: RunStep, lastUse: boolean) => Promise<void>
  /** The sandbox driver that ran RUN steps, once one ran. */
  driverUsed: () => string | undefined
}

export function createStepExecutor (scope: BuildScope, sandbox: () => Promise<Sandbox>): StepExecutor {
  const ctx = { scope, sandbox, warned: { network: false, root: false } }
  let driver: string | undefined
  return {
    copyInputs: async (step) => await copyInputs(scope, step),
    ownersRefusal: async (snap, st) => await ownersRefusal(ctx, snap, st),
    execute: async (snap, st, step, key, inputs, keepOwners) => {
      if (step.op === 'run') driver = await runStep(ctx, snap, st, step, key, false, keepOwners)
      else if (step.op === 'copy') await copyStep(scope, snap, st, step, key, inputs ?? await copyInputs(scope, step))
      else await fileStep(scope, snap, st, step, key)
    },
    check: async (snap, st, step, lastUse) => { driver = await runStep(ctx, snap, st, step, undefined, lastUse) },
    driverUsed: () => driver
  }
}
