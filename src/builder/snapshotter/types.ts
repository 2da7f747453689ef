/**
 * A snapshotter keeps a stage's filesystem between steps and turns what a
 * step changed into its layer, as containerd's snapshotters do for its
 * builders. Two implementations, chosen once per build by the sandbox
 * driver that would run its RUN steps:
 * - overlay (./overlay.ts; bwrap, unshare): a step writes into a fresh
 *   overlay upper dir, which is the change; kept under the work dir's
 *   snapshots/ it is a lower dir for the steps after it while its layer is
 *   compressed in the background;
 * - scan (./scan.ts; proot, or any driver on a node without overlay in a
 *   user namespace): the stage has a plain root dir (a copy of the base
 *   rootfs with the stage's layers applied); a step runs in it in place and
 *   the tree is compared with a snapshot taken before (./diff.ts). COPY
 *   and cached steps are applied to that root by extracting their layer.
 * Both give the same layers for the same step (tested: bwrap vs proot).
 *
 * COPY and the Apptainer front end's files fill an upper dir in overlay
 * form (whatever the snapshotter) through the executor; `commit` takes it.
 */
import type { Digest } from '../../content/index.ts'
import type { CachedLayer } from '../../cache/index.ts'
import type { LayerEntry } from '../../oci/layer/write.ts'
import type { Step } from '../../recipe/ir.ts'
import type { SandboxRoot } from '../sandbox/index.ts'
import type { StageState } from '../stage.ts'

export type SnapshotterKind = 'overlay' | 'scan'

/**
 * Edits a RUN step's layer entries before they are written (overlay only:
 * the ownership ledger sets owners there), given the step's upper dir, not
 * yet moved, and the layer dirs it ran on (top-most first).
 */
export type LayerEdit = (entries: LayerEntry[], dirs: { upper: string, lowers: string[] }) => Promise<LayerEntry[]>

export interface Snapshotter {
  readonly kind: SnapshotterKind
  /** Makes the stage ready for a filesystem step (scan: its plain root, made on first use). */
  prepare: (st: StageState) => Promise<void>
  /**
   * Runs `exec` on a writable root of the stage (an overlay over the stage,
   * or the stage's own root) and commits what it changed as the step's layer.
   */
  run: (st: StageState, step: Step, key: Digest, exec: (root: SandboxRoot) => Promise<void>, edit?: LayerEdit) => Promise<void>
  /**
   * Runs `exec` on a writable root of the stage whose writes are thrown
   * away (a check: Apptainer's %test). `lastUse`: no later step or stage
   * reads the stage, so scan may run it on the stage's own root.
   */
  check: (st: StageState, exec: (root: SandboxRoot) => Promise<void>, lastUse: boolean) => Promise<void>
  /**
   * Commits an upper dir (overlay form: whiteouts as char 0/0) that the
   * executor filled as the step's layer. The dir is moved or removed.
   * `entries` edits the layer's entries before they are written (COPY
   * --chown sets owners there).
   */
  commit: (st: StageState, step: Step, key: Digest, upper: string, entries?: (e: LayerEntry[]) => LayerEntry[]) => Promise<void>
  /**
   * Commits a step's layer given as entries, with no upper dir (a scratch
   * stage's ADD of an archive, src/builder/add-archive.ts); overlay makes
   * its snapshot only when a later step reads the stage's files.
   */
  commitEntries: (st: StageState, step: Step, key: Digest, entries: LayerEntry[]) => Promise<void>
  /** Stacks a cached layer on the stage; false when it cannot be used here (overlay: no snapshot dir for it). */
  applyCached: (st: StageState, key: Digest, hit: CachedLayer) => Promise<boolean>
  /** Removes what only this build used (scan: the stages' root dirs); snapshots stay. */
  close: () => Promise<void>
}
