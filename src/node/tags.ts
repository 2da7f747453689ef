/**
 * Tags resolved through the network's signed tag records (protocols/tag.md,
 * src/p2p/tag-records.ts) under a node's trust policy: the gateway's
 * pull-through and `kiln pull REPO:TAG` take a name to a digest by the same
 * rule, the newest record of a signer trusted as builder or gateway.
 */
import type { Digest } from '../content/index.ts'
import type { KilnNode } from '../p2p/index.ts'
import type { TagTrust } from '../p2p/tag-records.ts'

export interface TagResolution {
  /** What the newest trusted record names; absent when no trusted record was found. */
  target?: { digest: Digest, mediaType: string, size: number, signer: string }
  /** Records found but not counted, with why (an untrusted signer, an invalid record). */
  skipped: Array<{ signer: string, reason: string }>
}

export interface ResolveNetworkTagOptions {
  /** Bounds the search; default src/p2p's (10 s). */
  timeoutMs?: number
  signal?: AbortSignal
  /** Called for each record skipped, as it is. */
  onSkip?: (signer: string, reason: string) => void
}

export async function resolveNetworkTag (node: KilnNode, trust: TagTrust, repository: string, tag: string, options: ResolveNetworkTagOptions = {}): Promise<TagResolution> {
  const { resolveTagRecord } = await import('../p2p/tag-records.ts')
  const skipped: TagResolution['skipped'] = []
  const record = await resolveTagRecord(node, repository, tag, {
    trust,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    onSkip: (signer, reason) => { skipped.push({ signer, reason }); options.onSkip?.(signer, reason) }
  })
  if (record === undefined) return { skipped }
  const { digest, mediaType, size } = record.payload
  return { target: { digest: digest as Digest, mediaType, size, signer: record.signer }, skipped }
}
