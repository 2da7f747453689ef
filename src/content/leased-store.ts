/**
 * A content store for builds that holds what they touch: every blob a build
 * reads or writes through it joins the build's lease, so quota eviction and
 * `kiln gc` (in this process or another) leave its base, layers and
 * manifest alone until it returns, or until the lease runs out if the
 * process dies.
 */
import type { ContentStore } from './index.ts'
import type { Digest } from './digest.ts'
import type { Leases } from './gc.ts'

/** Longest a build's lease lasts if the agent dies before releasing it. */
export const BUILD_LEASE_MS = 24 * 3600_000

export interface BuildLeases {
  /** The store for builders: every blob read or written through it is added to each lease held at the time. */
  store: ContentStore
  /** Runs a build holding a lease; the lease is released when it ends (a result lease should be taken inside). */
  hold: <T>(work: () => Promise<T>) => Promise<T>
}

/**
 * Leases for builds. The builder learns a digest only as it writes a layer
 * or reads a base, so the lease grows as it goes: quota eviction and
 * `kiln gc` then leave a build's base, layers and manifest alone until it
 * returns. With builds running at once, a blob goes into each running
 * build's lease (held a little longer than needed, never shorter).
 */
export function createBuildLeases (store: ContentStore, leases: Leases): BuildLeases {
  const open = new Set<string>()
  const hold = (digest: Digest): void => { for (const lease of open) leases.add(lease, [digest]) }
  const leased: ContentStore = {
    info: async (d) => await store.info(d),
    has: async (d) => await store.has(d),
    read: (d, o) => { hold(d); return store.read(d, o) },
    readBytes: async (d, max) => { hold(d); return await store.readBytes(d, max) },
    path: async (d) => { hold(d); return await store.path(d) },
    ingest: async (source, expected, o) => { const info = await store.ingest(source, expected, o); hold(info.digest); return info },
    ingestFile: async (file, expected, o) => { const info = await store.ingestFile(file, expected, o); hold(info.digest); return info },
    openPartial: async (d, size) => {
      hold(d)
      return await store.openPartial(d, size)
    },
    delete: async (d) => await store.delete(d),
    walk: () => store.walk()
  }
  return {
    store: leased,
    hold: async (work) => {
      const lease = leases.create('build', BUILD_LEASE_MS)
      open.add(lease)
      try {
        return await work()
      } finally {
        open.delete(lease)
        leases.release(lease)
      }
    }
  }
}
