/**
 * The static site's sidecar map, `kiln-site.json` at the site root: every
 * repository, its tags and the media type of every manifest file. It is what
 * the server configuration is generated from (a static server cannot look
 * inside a file to learn its Content-Type) and what an incremental update
 * starts from. Read back from disk or a bucket, so parsed with zod.
 */
import { z } from 'zod'
import { DigestSchema } from '../oci/index.ts'
import type { Digest } from '../content/index.ts'
import { SiteStateInvalidError } from './errors.ts'

const ManifestEntry = z.strictObject({ mediaType: z.string().min(1).max(255).regex(/^[\w.+/-]+$/), size: z.number().int().nonnegative() })
const Repository = z.strictObject({
  tags: z.record(z.string().regex(/^[\w][\w.-]{0,127}$/), DigestSchema),
  manifests: z.record(DigestSchema, ManifestEntry)
})
export const SiteStateSchema = z.strictObject({
  version: z.literal(1),
  repositories: z.record(z.string().regex(/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/), Repository)
})
export type SiteState = z.infer<typeof SiteStateSchema>
export type SiteRepository = z.infer<typeof Repository>

export function emptySiteState (): SiteState {
  return { version: 1, repositories: {} }
}

export function parseSiteState (bytes: Uint8Array, where: string): SiteState {
  let json: unknown
  try { json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) } catch (err) {
    throw new SiteStateInvalidError(`${where}: not JSON: ${(err as Error).message}`)
  }
  const r = SiteStateSchema.safeParse(json)
  if (!r.success) throw new SiteStateInvalidError(`${where}: ${r.error.issues.slice(0, 3).map(i => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  return r.data
}

/** Stable bytes: repositories, tags and manifests sorted, so an unchanged site rewrites nothing. */
export function encodeSiteState (state: SiteState): Uint8Array {
  const sortObj = <T>(o: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
  const repos = Object.fromEntries(Object.entries(sortObj(state.repositories)).map(([k, r]) => [k, { tags: sortObj(r.tags), manifests: sortObj(r.manifests) }]))
  return new TextEncoder().encode(JSON.stringify({ version: 1, repositories: repos }, null, 2) + '\n')
}

/** Path of a manifest file (by tag or by digest) inside the site. */
export function manifestPath (repository: string, reference: string | Digest): string {
  return `v2/${repository}/manifests/${reference}`
}

export function blobPath (repository: string, digest: Digest): string {
  return `v2/${repository}/blobs/${digest}`
}

export function tagsListPath (repository: string): string {
  return `v2/${repository}/tags/list`
}
