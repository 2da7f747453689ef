/**
 * The overlay snapshotter (see ./types.ts): each step's change is an
 * overlay upper dir, kept as a snapshot and stacked under the stage's next
 * steps; its layer is written in the background.
 */
import type { LayerRecorder } from '../layers.ts'
import { removeTree } from '../sandbox/index.ts'
import type { Digest } from '../../content/index.ts'
import type { LayerEntry } from '../../oci/layer/write.ts'
import type { Step } from '../../recipe/ir.ts'
import type { BuildScope, StageState } from '../stage.ts'
import { layerOwners } from '../owner-ledger.ts'
import { diffUpper, findSnapshot, keepSnapshot, lazySnapshot, newUpper, stageDirs } from './dirs.ts'
import type { Snapshotter } from './types.ts'

export function createOverlaySnapshotter (scope: BuildScope, layers: LayerRecorder): Snapshotter {
  /** Stacks the kept snapshot and writes its layer from the entries diffed in `upper`, now read from `snap`. */
  const keep = (st: StageState, step: Step, key: Digest, upper: string, entries: LayerEntry[], snap: string): void => {
    st.uppers.unshift(snap)
    layers.defer(st, step, key, entries.map(e => 'source' in e && e.source.startsWith(`${upper}/`) ? { ...e, source: snap + e.source.slice(upper.length) } : e))
  }
  return {
    kind: 'overlay',
    prepare: async () => {},
    run: async (st, step, key, exec, edit) => {
      const lowers = await stageDirs(scope, st)
      const { dir, upper, work } = await newUpper(scope)
      try {
        await exec({ kind: 'overlay', lowers, upper, work })
        // Diffed (and edited: the ledger knows the upper dir's inodes) where the step ran, then moved: a change
        // that cannot be read back leaves no snapshot under the step's key for a later build to pick up.
        const diff = await diffUpper(upper, lowers)
        const entries = edit === undefined ? diff : await edit(diff, { upper, lowers })
        keep(st, step, key, upper, entries, await keepSnapshot(scope, upper, key))
      } finally {
        await removeTree(dir)
      }
    },
    check: async (st, exec) => {
      const lowers = await stageDirs(scope, st)
      const { dir, upper, work } = await newUpper(scope)
      // The upper dir is the check's change: thrown away with the temp dir.
      try { await exec({ kind: 'overlay', lowers, upper, work }) } finally { await removeTree(dir) }
    },
    commit: async (st, step, key, upper, edit = e => e) => {
      const entries = edit(await diffUpper(upper, undefined))
      keep(st, step, key, upper, entries, await keepSnapshot(scope, upper, key))
    },
    commitEntries: async (st, step, key, entries) => {
      const layer = await layers.store(st, step, key, entries)
      st.uppers.unshift(lazySnapshot(scope, key, layer.descriptor))
    },
    applyCached: async (st, key, hit) => {
      const found = await findSnapshot(scope, key, hit)
      if (found !== undefined) {
        st.uppers.unshift(found)
        return true
      }
      // No snapshot (a layer written from its entries, or the dir was evicted): one made on first use, if extracting the layer gives it.
      const owners = await layerOwners(scope.store, hit.descriptor.digest, scope.options.signal).catch(() => undefined)
      if (owners === undefined || owners.whiteouts.length > 0 || owners.opaques.length > 0) return false
      st.uppers.unshift(lazySnapshot(scope, key, hit.descriptor))
      return true
    },
    close: async () => {}
  }
}
