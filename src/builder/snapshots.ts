/**
 * The builder's caches on disk beside the content store: step snapshots and
 * unpacked bases. `kiln store df` counts them, `store.quota` bounds them
 * (src/content/quota.ts's DerivedCache seam), `kiln gc` removes the useless
 * ones.
 *
 * Terms:
 * - a *snapshot* is `<work dir>/snapshots/k-<step key hex>` (a step's
 *   overlay upper dir, kept by the builder) or `snapshots/<diffID hex>`
 *   (made from an imported cache layer, src/export);
 * - an *unpacked base* is `<work dir>/rootfs/<manifest hex>-<uid>` (or
 *   `scratch-<uid>`), an image's layers extracted once and reused;
 * - a *cache mount* is `<work dir>/cache-mounts/<hash of id>`, a
 *   `RUN --mount=type=cache` dir (./executor/mounts.ts); always backed, so
 *   `kiln gc` keeps it and only the quota evicts it;
 * - an *entry* is any of them; it is *backed* while what makes it useful is in
 *   the store: for `k-<key>`, the step cache maps the key to a layer whose
 *   blob is there; for `<diffID>`, some step-cache layer with that diffID
 *   is there; for a base, its manifest is there (`scratch` is always
 *   backed). An entry not backed is an *orphan*: no build can use it.
 * - *used at*: when a RUN step last stacked on the entry (the sandbox marks
 *   its lower dirs: markUsed, in their ctime) or when it was made (renamed
 *   into place), whichever is later.
 *
 * Nothing is removed while a build runs on the work dir (./build-locks.ts):
 * a build uses entries it looked up at any earlier step. An entry is
 * renamed aside (to a dot name, which the builder never looks up) and only
 * then deleted, and the lock is looked at again after the rename, so a
 * build that starts meanwhile either sees the entry whole or not at all.
 */
import { lstat, readdir, rename, stat } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { BlobReader, Digest } from '../content/index.ts'
import type { KilnDb } from '../db/index.ts'
import type { DerivedCache, DerivedEntry } from '../content/quota.ts'
import { buildRunning } from './build-locks.ts'
import { CACHE_MOUNTS_DIR } from './constants.ts'
import { createStepCache, parseSnapshotName } from '../cache/index.ts'
import { removeTree } from './sandbox/scratch.ts'

export type BuildCacheKind = 'snapshot' | 'base' | 'cache-mount'

export interface BuildCacheEntry extends DerivedEntry {
  kind: BuildCacheKind
  path: string
}

export interface BuildCacheUsage {
  snapshots: { count: number, bytes: number }
  bases: { count: number, bytes: number }
  /** RUN --mount=type=cache dirs (./executor/mounts.ts): always backed, evicted by the quota only. */
  cacheMounts: { count: number, bytes: number }
  bytes: number
}

export interface CollectResult {
  removed: Array<{ path: string, bytes: number }>
  bytesFreed: number
  /** A build was running, so nothing was looked at. */
  skipped: boolean
}

export interface BuildCache extends DerivedCache {
  /** Every entry with its size (bytes on disk) and last use. */
  entries: () => Promise<BuildCacheEntry[]>
  usage: () => Promise<BuildCacheUsage>
  /** Removes orphans older than graceMs (kiln gc); nothing while a build runs. */
  collect: (options?: { graceMs?: number, dryRun?: boolean, now?: number }) => Promise<CollectResult>
}

/** Bytes a tree holds on disk, each inode once (hard links). */
async function diskBytes (path: string, seen = new Set<string>()): Promise<number> {
  const st = await lstat(path).catch(() => undefined)
  if (st === undefined) return 0
  const id = `${st.dev}:${st.ino}`
  if (seen.has(id)) return 0
  seen.add(id)
  let n = st.blocks * 512
  if (st.isDirectory()) for (const name of await readdir(path).catch(() => [] as string[])) n += await diskBytes(join(path, name), seen)
  return n
}

export interface BuildCacheInit {
  /** The builder's work dir (DATA_DIR/build). */
  workDir: string
  db: KilnDb
  store: BlobReader
}

export function createBuildCache (init: BuildCacheInit): BuildCache {
  const snapshots = join(init.workDir, 'snapshots')
  const rootfs = join(init.workDir, 'rootfs')
  const cacheMounts = join(init.workDir, CACHE_MOUNTS_DIR)

  const list = async (): Promise<Array<{ kind: BuildCacheKind, path: string, name: string }>> => {
    const out: Array<{ kind: BuildCacheKind, path: string, name: string }> = []
    for (const name of await readdir(snapshots).catch(() => [] as string[])) if (!name.startsWith('.')) out.push({ kind: 'snapshot', path: join(snapshots, name), name })
    for (const name of await readdir(rootfs).catch(() => [] as string[])) if (!name.includes('.tmp-') && !name.startsWith('.')) out.push({ kind: 'base', path: join(rootfs, name), name })
    // Lock files sit beside the dirs; entries() keeps directories only.
    for (const name of await readdir(cacheMounts).catch(() => [] as string[])) if (!name.startsWith('.')) out.push({ kind: 'cache-mount', path: join(cacheMounts, name), name })
    return out
  }

  const entries = async (): Promise<BuildCacheEntry[]> => {
    const out: BuildCacheEntry[] = []
    for (const e of await list()) {
      const st = await stat(e.path).catch(() => undefined)
      if (st?.isDirectory() !== true) continue
      out.push({ id: e.path, kind: e.kind, path: e.path, bytes: await diskBytes(e.path), usedAt: Math.max(st.ctimeMs, st.mtimeMs), madeAt: st.mtimeMs })
    }
    return out
  }

  /** Whether a build could still use the entry. */
  const backedBy = async (): Promise<(e: { kind: BuildCacheKind, name: string }) => Promise<boolean>> => {
    const cache = createStepCache(init.db).list()
    const byKey = new Map(cache.map(r => [r.key, r.descriptor.digest]))
    const byDiffId = new Map<Digest, Digest[]>()
    for (const r of cache) byDiffId.set(r.diffId, [...byDiffId.get(r.diffId) ?? [], r.descriptor.digest])
    const has = async (d: Digest | undefined): Promise<boolean> => d !== undefined && await init.store.has(d)
    return async (e) => {
      if (e.kind === 'cache-mount') return true
      if (e.kind === 'base') {
        const m = /^([0-9a-f]{64})-\d+$/.exec(e.name)
        return m === null ? e.name.startsWith('scratch-') : await has(`sha256:${m[1] as string}` as Digest)
      }
      const snap = parseSnapshotName(e.name)
      if (snap === undefined) return false
      if (snap.kind === 'key') return await has(byKey.get(snap.key))
      for (const d of byDiffId.get(snap.diffId) ?? []) if (await has(d)) return true
      return false
    }
  }

  /** Renames the entry aside, checks that no build started meanwhile, then deletes it; false when it stays. */
  const remove = async (path: string): Promise<boolean> => {
    if (await buildRunning(init.workDir)) return false
    const aside = join(path, '..', `.removing-${randomBytes(6).toString('hex')}`)
    try { await rename(path, aside) } catch { return false }
    if (await buildRunning(init.workDir)) {
      await rename(aside, path).catch(() => {})
      return false
    }
    await removeTree(aside)
    return true
  }

  return {
    entries,
    usage: async () => {
      const all = await entries()
      const sum = (kind: BuildCacheKind): { count: number, bytes: number } => {
        const of = all.filter(e => e.kind === kind)
        return { count: of.length, bytes: of.reduce((n, e) => n + e.bytes, 0) }
      }
      const snaps = sum('snapshot')
      const bases = sum('base')
      const mounts = sum('cache-mount')
      return { snapshots: snaps, bases, cacheMounts: mounts, bytes: snaps.bytes + bases.bytes + mounts.bytes }
    },
    total: async () => (await entries()).reduce((n, e) => n + e.bytes, 0),
    evictable: async () => await buildRunning(init.workDir) ? [] : await entries(),
    evict: async (entry) => await remove(entry.id),
    collect: async (options = {}) => {
      const result: CollectResult = { removed: [], bytesFreed: 0, skipped: false }
      if (await buildRunning(init.workDir)) return { ...result, skipped: true }
      const now = options.now ?? Date.now()
      const graceMs = options.graceMs ?? 15 * 60_000
      const backed = await backedBy()
      for (const e of await list()) {
        const st = await stat(e.path).catch(() => undefined)
        if (st === undefined || now - st.mtimeMs < graceMs || await backed(e)) continue
        const bytes = await diskBytes(e.path)
        if (options.dryRun !== true && !await remove(e.path)) continue
        result.removed.push({ path: e.path, bytes })
        result.bytesFreed += bytes
      }
      return result
    }
  }
}
