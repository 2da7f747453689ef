/**
 * The scan snapshotter (see ./types.ts): the stage is one plain root dir;
 * a RUN changes it in place and the change is found by comparing the tree
 * with a snapshot taken before; a COPY's upper dir and a cached layer are
 * applied to it by extracting the layer.
 */
import { mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import type { CachedLayer } from '../../cache/index.ts'
import { extractLayer } from '../../oci/layer/extract.ts'
import { unpackedBase } from '../base.ts'
import type { LayerRecorder } from '../layers.ts'
import { requireTool } from '../sandbox/ns-script.ts'
import { runProcess } from '../sandbox/process.ts'
import { removeTree } from '../sandbox/index.ts'
import type { BuildScope, StageState } from '../stage.ts'
import { diffSnapshot, snapshotTree } from './diff.ts'
import { diffUpper, keepSnapshot } from './dirs.ts'
import type { Snapshotter } from './types.ts'

export function createScanSnapshotter (scope: BuildScope, layers: LayerRecorder): Snapshotter {
  /** Root dirs made for this build, removed by close(). */
  const roots: string[] = []
  const { store, options } = scope

  const applyLayer = async (root: string, layer: CachedLayer['descriptor']): Promise<void> => {
    await extractLayer(store.read(layer.digest, { signal: options.signal }), root, { signal: options.signal })
  }

  /** The stage's plain root, made on first use from its base and the layers it has so far. */
  const rootOf = async (st: StageState): Promise<string> => {
    if (st.root !== undefined) return st.root
    const dir = await mkdtemp(join(scope.dirs.tmp, 'root-'))
    roots.push(dir)
    const root = join(dir, 'rootfs')
    const from = st.base.root ?? await unpackedBase(store, st.base.bottom, scope.dirs.rootfs, options.signal)
    await copyTree(from, root)
    const have = st.base.root !== undefined ? st.base.rootLayers ?? 0 : st.base.bottom.manifest?.layers.length ?? 0
    for (const l of st.layers.slice(have)) await applyLayer(root, l)
    st.root = root
    return root
  }

  return {
    kind: 'scan',
    prepare: async (st) => { await rootOf(st) },
    run: async (st, step, key, exec) => {
      const root = await rootOf(st)
      const before = await snapshotTree(root)
      await exec({ kind: 'dir', path: root })
      await layers.store(st, step, key, await diffSnapshot(root, before))
    },
    check: async (st, exec, lastUse) => {
      const root = await rootOf(st)
      if (lastUse) { await exec({ kind: 'dir', path: root }); return }
      const dir = await mkdtemp(join(scope.dirs.tmp, 'check-'))
      roots.push(dir)
      await copyTree(root, join(dir, 'rootfs'))
      await exec({ kind: 'dir', path: join(dir, 'rootfs') })
    },
    commit: async (st, step, key, upper, edit = e => e) => {
      const root = await rootOf(st)
      const value = await layers.store(st, step, key, edit(await diffUpper(upper, undefined)))
      await applyLayer(root, value.descriptor)
      await keepSnapshot(scope, upper, key)
    },
    commitEntries: async (st, step, key, entries) => {
      const root = await rootOf(st)
      const value = await layers.store(st, step, key, entries)
      await applyLayer(root, value.descriptor)
    },
    applyCached: async (st, _key, hit) => {
      await applyLayer(await rootOf(st), hit.descriptor)
      return true
    },
    close: async () => { for (const r of roots) await removeTree(r) }
  }
}

/** A copy of a tree with modes, times, links and hardlinks kept (reflinked where the filesystem can). */
async function copyTree (from: string, to: string): Promise<void> {
  let err = ''
  const r = await runProcess({ file: requireTool('cp'), args: ['-a', '--reflink=auto', '--', from, to], env: { PATH: '/usr/bin:/bin' }, onOutput: (_s, c) => { err += Buffer.from(c).toString() } })
  if (r.exitCode !== 0) throw new Error(`cannot copy ${from} to ${to}: ${err.trim()}`)
}
