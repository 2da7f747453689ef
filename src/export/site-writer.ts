/**
 * Writes images into a static registry site (the layout is in
 * docs/static-registry.md):
 *
 *   v2/index.json, v2/index.html           `{}`: the answer to a client's `GET /v2/` ping
 *   v2/<repo>/blobs/<digest>               configs and layers
 *   v2/<repo>/manifests/<digest>           every manifest and index, by digest
 *   v2/<repo>/manifests/<tag>              the same bytes under each tag
 *   v2/<repo>/tags/list                    `{"name": repo, "tags": [...]}`
 *   kiln-site.json                         the sidecar map (./site-state.ts)
 *
 * Updates are incremental: a blob or by-digest manifest already present with
 * the right size is not written again (its name is its content); tag files,
 * tags/list and the sidecar are replaced atomically and only when they
 * change. Order: blobs, then manifests children first, then tags, then
 * listings, so a client never finds a tag whose content is not there yet.
 */
import type { Digest } from '../content/index.ts'
import { MAX_MANIFEST_SIZE, hasChildren, parseDescribed, walkImage } from '../oci/index.ts'
import type { Descriptor } from '../oci/index.ts'
import { MAX_SITE_STATE_SIZE, SITE_STATE_FILE } from './constants.ts'
import type { ExportImage, ExportOptions } from './index.ts'
import { OutputSpecInvalidError } from './errors.ts'
import { splitRepoTag } from './names.ts'
import type { ObjectStore } from './object-store.ts'
import { blobPath, emptySiteState, encodeSiteState, manifestPath, parseSiteState, tagsListPath } from './site-state.ts'
import type { SiteState } from './site-state.ts'

export const JSON_TYPE = 'application/json'
export const BLOB_TYPE = 'application/octet-stream'
const PING_BODY = new TextEncoder().encode('{}\n')

function sameBytes (a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.byteLength === b.byteLength && Buffer.compare(a, b) === 0
}

/** Puts bytes unless the object already holds exactly them. */
async function putIfChanged (site: ObjectStore, path: string, bytes: Uint8Array, contentType: string, signal?: AbortSignal): Promise<boolean> {
  const st = await site.stat(path, signal)
  if (st !== undefined && st.size === bytes.byteLength && sameBytes(await site.get(path, bytes.byteLength, signal), bytes)) return false
  await site.put(path, bytes, contentType, signal)
  return true
}

const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/
const TAG_RE = /^[\w][\w.-]{0,127}$/

/**
 * Names go into paths and into generated server configuration, so only the
 * distribution grammar is let through.
 */
export function checkSiteName (name: string): void {
  const { repository, tag } = splitRepoTag(name)
  if (!REPO_RE.test(repository) || repository.length > 255 || !TAG_RE.test(tag)) {
    throw new OutputSpecInvalidError(`${JSON.stringify(name)} is not REPO[:TAG] (lowercase path components, tag of [A-Za-z0-9_.-])`, ['name'])
  }
}

export async function readSiteState (site: ObjectStore, signal?: AbortSignal): Promise<SiteState> {
  const bytes = await site.get(SITE_STATE_FILE, MAX_SITE_STATE_SIZE, signal)
  return bytes === undefined ? emptySiteState() : parseSiteState(bytes, `${site.location}/${SITE_STATE_FILE}`)
}

export interface SiteWriteResult {
  state: SiteState
  /** `repo:tag` written. */
  written: string[]
}

/**
 * Adds an image under names (`repo[:tag]`, tag default `latest`) to a site.
 * The state is read from the site and written back updated.
 */
export async function writeSite (image: ExportImage, names: readonly string[], site: ObjectStore, options: ExportOptions & { type: 'static' | 's3' }): Promise<SiteWriteResult> {
  const signal = options.signal
  const state = await readSiteState(site, signal)
  const walked: Descriptor[] = []
  const manifestBytes = new Map<Digest, Uint8Array>()
  for await (const w of walkImage(image.store, image.root)) {
    if (!w.present) continue
    walked.push(w.descriptor)
    if (hasChildren(w.descriptor)) manifestBytes.set(w.descriptor.digest, await image.store.readBytes(w.descriptor.digest, MAX_MANIFEST_SIZE))
  }
  const rootBytes = manifestBytes.get(image.root.digest) as Uint8Array
  const rootType = parseDescribed(image.root, rootBytes).mediaType
  for (const name of names) checkSiteName(name)
  const written: string[] = []
  for (const name of names) {
    const { repository, tag } = splitRepoTag(name)
    const repo = state.repositories[repository] ?? { tags: {}, manifests: {} }
    state.repositories[repository] = repo
    // Blobs, in walk order (they have no children).
    for (const d of walked) {
      if (hasChildren(d)) continue
      const path = blobPath(repository, d.digest)
      const st = await site.stat(path, signal)
      if (st?.size === d.size) continue
      await site.putBlob(path, image.store, d, BLOB_TYPE, signal)
      options.onProgress?.({ type: options.type, event: 'blob', digest: d.digest, size: d.size })
    }
    // Manifests, children before parents (walk order reversed).
    for (const d of [...walked].reverse()) {
      if (!hasChildren(d)) continue
      const bytes = manifestBytes.get(d.digest) as Uint8Array
      const mediaType = parseDescribed(d, bytes).mediaType
      repo.manifests[d.digest] = { mediaType, size: d.size }
      const path = manifestPath(repository, d.digest)
      if ((await site.stat(path, signal))?.size === d.size) continue
      await site.put(path, bytes, mediaType, signal)
      options.onProgress?.({ type: options.type, event: 'manifest', digest: d.digest, size: d.size })
    }
    await putIfChanged(site, manifestPath(repository, tag), rootBytes, rootType, signal)
    repo.tags[tag] = image.root.digest
    options.onProgress?.({ type: options.type, event: 'tag', digest: image.root.digest })
    written.push(`${repository}:${tag}`)
  }
  for (const name of new Set(names.map(n => splitRepoTag(n).repository))) {
    const repo = state.repositories[name]
    if (repo === undefined) continue
    const list = new TextEncoder().encode(JSON.stringify({ name, tags: Object.keys(repo.tags).sort() }) + '\n')
    await putIfChanged(site, tagsListPath(name), list, JSON_TYPE, signal)
  }
  await putIfChanged(site, 'v2/index.json', PING_BODY, JSON_TYPE, signal)
  await putIfChanged(site, 'v2/index.html', PING_BODY, JSON_TYPE, signal)
  await putIfChanged(site, SITE_STATE_FILE, encodeSiteState(state), JSON_TYPE, signal)
  return { state, written }
}
