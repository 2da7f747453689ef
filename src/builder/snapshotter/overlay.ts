/**
 * The overlay snapshotter (see ./types.ts): each step's change is an
 * overlay upper dir, kept as a snapshot and stacked under the stage's next
 * steps; its layer is written in the background.
 */
import type { LayerRecorder } from '../layers.ts'
import { removeTree } from '../sandbox/index.ts'
import type { BuildScope } from '../stage.ts'
import { layerOwners } from '../owner-ledger.ts'
import { diffUpper, findSnapshot, keepSnapshot, lazySnapshot, newUpper, stageDirs } from './dirs.ts'
import type { Snapshotter } from './types.ts'

export function createOverlaySnapshotter (scope: BuildScope, layers: LayerRecorder): Snapshotter {
  return {
    kind: 'overlay',
    prepare: async () => {},
    run: async (st, step, key, exec, edit) => {
      const lowers = await stageDirs(scope, st)
      const { dir, upper, work } = await newUpper(scope)
      try {
        await exec({ kind: 'overlay', lowers, upper, work })
        if (edit === undefined) {
          const snap = await keepSnapshot(scope, upper, key)
          st.uppers.unshift(snap)
          layers.defer(st, step, key, await diffUpper(snap, lowers))
          return
        }
        // Edited where the step ran (the ledger knows the upper dir's inodes), then moved.
        const entries = await edit(await diffUpper(upper, lowers), { upper, lowers })
        const snap = await keepSnapshot(scope, upper, key)
        st.uppers.unshift(snap)
        layers.defer(st, step, key, entries.map(e => 'source' in e && e.source.startsWith(`${upper}/`) ? { ...e, source: snap + e.source.slice(upper.length) } : e))
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
      const snap = await keepSnapshot(scope, upper, key)
      st.uppers.unshift(snap)
      layers.defer(st, step, key, edit(await diffUpper(snap, undefined)))
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
