/**
 * The real ContextSource: fetches a job's context tar by digest (from the
 * requester first, then anyone providing it), lets the store verify digest
 * and size, and unpacks it with src/oci's safe extractor (no path or
 * symlink escapes, no devices, no setuid) into a fresh temp dir that
 * release() removes.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { ContentStore, Digest, Leases } from '../../src/content/index.ts'
import { parseDigest } from '../../src/content/index.ts'
import { extractLayer } from '../../src/oci/index.ts'
import type { ContextSource } from './index.ts'
import { scratchPrefix } from '../../src/util/owner.ts'

export interface NetworkContextSourceInit {
  store: ContentStore
  /** Fetches a blob into the store, verified; e.g. Transfer.fetch. */
  fetch: (digest: Digest, options: { size: number, providers: string[], signal: AbortSignal }) => Promise<unknown>
  /** Parent of the per-job context dirs. */
  workDir: string
  /** When given, the context blob is kept from `kiln gc` while the job holds it. */
  leases?: Leases
}

/** Longest a context lease lasts if the agent dies before releasing it. */
const CONTEXT_LEASE_MS = 24 * 3600_000

export function createNetworkContextSource (init: NetworkContextSourceInit): ContextSource {
  return {
    async open (context, requester, signal) {
      const digest = parseDigest(context.digest)
      const lease = init.leases?.create('job-context', CONTEXT_LEASE_MS)
      if (lease !== undefined) init.leases?.add(lease, [digest])
      if (!(await init.store.has(digest))) await init.fetch(digest, { size: context.size, providers: [requester], signal })
      const info = await init.store.info(digest)
      if (info.size !== context.size) throw new Error(`context ${digest} is ${info.size} bytes, the job says ${context.size}`)
      await mkdir(init.workDir, { recursive: true, mode: 0o700 })
      const dir = await mkdtemp(join(init.workDir, scratchPrefix('ctx-')))
      const release = async (): Promise<void> => {
        await rm(dir, { recursive: true, force: true })
        if (lease !== undefined) init.leases?.release(lease)
      }
      try {
        await extractLayer(init.store.read(digest, { signal }), dir, { signal })
      } catch (err) {
        await release()
        throw err
      }
      return { dir, release }
    }
  }
}
