/**
 * The overlay snapshotter (see ./types.ts): each step's change is an
 * overlay upper dir, kept as a snapshot and stacked under the stage's next
 * steps; its layer is written in the background.
 */
import type { LayerRecorder } from '../layers.ts'
import { removeTree } from '../sandbox/index.ts'
import type { BuildScope } from '../stage.ts'
import { diffUpper, findSnapshot, keepSnapshot, newUpper, stageDirs } from './dirs.ts'
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
    applyCached: async (st, key, hit) => {
      const found = await findSnapshot(scope, key, hit)
      if (found === undefined) return false
      st.uppers.unshift(found)
      return true
    },
    close: async () => {}
  }
}
