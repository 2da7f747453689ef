/**
 * The layers a build makes: written to the store (deterministic tar,
 * src/oci/layer/write.ts), remembered in the step cache under the step's
 * key, and appended to the stage with their history entry.
 *
 * A layer can be written in the background (`defer`): an overlay step's
 * next step needs only the snapshot dir, and compressing (zlib, on libuv's
 * thread pool) overlaps with it. Its slot in the stage is filled in when the
 * write ends; whoever reads a stage's layers waits for `settled()` first.
 */
import type { Digest } from '../content/index.ts'
import type { CachedLayer, StepCache } from '../cache/index.ts'
import { writeLayer } from '../oci/layer/write.ts'
import type { LayerEntry } from '../oci/layer/write.ts'
import type { Step } from '../recipe/ir.ts'
import { rememberLayerOwners, summarizeEntries } from './owner-ledger.ts'
import type { BuildScope, StageState } from './stage.ts'

export interface LayerRecorder {
  /** Writes the layer now, remembers it under `key` and appends it to the stage. */
  store: (st: StageState, step: Step, key: Digest, entries: LayerEntry[]) => Promise<CachedLayer>
  /** As `store`, the write running in the background. */
  defer: (st: StageState, step: Step, key: Digest, entries: LayerEntry[]) => void
  /** Appends a layer that exists already (a cache hit). */
  push: (st: StageState, step: Step, layer: CachedLayer) => void
  /** Waits for every background write; throws the first failure. */
  settled: () => Promise<void>
  /** Waits for every background write, failed or not (for clean-up). */
  drain: () => Promise<void>
}

export function createLayerRecorder (scope: BuildScope, cache: StepCache): LayerRecorder {
  const pending: Array<Promise<void>> = []

  const push = (st: StageState, step: Step, v: CachedLayer): void => {
    st.layers.push(v.descriptor)
    st.diffIds.push(v.diffId)
    st.history.push({ created: scope.created, created_by: scope.textOf(step), comment: 'kiln' })
  }

  const write = async (step: Step, key: Digest, entries: LayerEntry[]): Promise<CachedLayer> => {
    // The owners a later RUN of the stage starts from (./owner-ledger.ts): known now, by the key until the digest is.
    const owners = summarizeEntries(entries)
    rememberLayerOwners(key, owners)
    const report = scope.options.onProgress
    const label = report !== undefined ? scope.textOf(step).split('\n')[0] ?? '' : ''
    const layer = await writeLayer(scope.store, entries, {
      compression: scope.options.layerCompression ?? 'gzip',
      sourceDateEpoch: scope.epoch,
      signal: scope.options.signal,
      ...(report !== undefined ? { onProgress: (bytes: number) => { report({ what: 'layer', id: key, label, bytes, done: false }) } } : {})
    })
    report?.({ what: 'layer', id: key, label, bytes: layer.descriptor.size, total: layer.descriptor.size, done: true })
    const value: CachedLayer = { descriptor: { mediaType: layer.descriptor.mediaType, digest: layer.descriptor.digest, size: layer.descriptor.size }, diffId: layer.diffId }
    rememberLayerOwners(layer.descriptor.digest, owners)
    cache.put(key, value)
    return value
  }

  return {
    push,
    store: async (st, step, key, entries) => {
      const value = await write(step, key, entries)
      push(st, step, value)
      return value
    },
    defer: (st, step, key, entries) => {
      const i = st.layers.length
      push(st, step, { descriptor: { mediaType: '', digest: key, size: 0 }, diffId: key })
      const p = write(step, key, entries).then(v => { st.layers[i] = v.descriptor; st.diffIds[i] = v.diffId })
      p.catch(() => {}) // awaited (and rethrown) by settled()
      pending.push(p)
    },
    settled: async () => { await Promise.all(pending) },
    drain: async () => { await Promise.allSettled(pending) }
  }
}
