/**
 * Base images: from a ref in the local store, an OCI image layout
 * (`oci:PATH[:TAG]`), or `scratch`; resolved to a manifest and config in the
 * store, and unpacked once per manifest and user into a rootfs dir that every
 * later build reuses as its bottom overlay layer.
 */
import { createReadStream } from 'node:fs'
import { mkdir, readFile, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { ContentStore, Digest, RefStore } from '../content/index.ts'
import { digestHex } from '../content/index.ts'
import {
  ImageIndexSchema, MAX_CONFIG_SIZE, MAX_LAYOUT_FILE_SIZE, MAX_MANIFEST_SIZE, ANNOTATION_REF_NAME,
  isIndex, parseConfigBytes, parseImageRef, parseManifestBytes, selectManifest
} from '../oci/index.ts'
import type { Descriptor, ImageConfig, ImageManifest, Platform } from '../oci/index.ts'
import { extractLayer } from '../oci/layer/extract.ts'
import { BaseImageError } from './errors.ts'
import type { SourceLoc } from '../recipe/ir.ts'
import { removeTree } from './sandbox/index.ts'

export interface ResolvedBase {
  /** Manifest digest; undefined for scratch. */
  manifestDigest?: Digest
  manifest?: ImageManifest
  config?: ImageConfig
}

async function readManifestAt (store: ContentStore, d: Descriptor, platform: Platform, ref: string): Promise<{ digest: Digest, manifest: ImageManifest }> {
  const bytes = await store.readBytes(d.digest, MAX_MANIFEST_SIZE)
  const parsed = parseManifestBytes(bytes, d.mediaType)
  if (parsed.kind === 'manifest') return { digest: d.digest, manifest: parsed.value }
  const chosen = selectManifest(parsed.value, platform)
  return await readManifestAt(store, chosen, platform, ref)
}

async function ingestFromLayout (store: ContentStore, layout: string, d: Descriptor): Promise<void> {
  if (await store.has(d.digest)) return
  const path = join(layout, 'blobs', 'sha256', digestHex(d.digest))
  await store.ingest(createReadStream(path), { digest: d.digest, size: d.size })
}

/**
 * Copies one image of an OCI layout (manifest, config, layers; an index is
 * narrowed to the wanted platform) into the store.
 * TODO(oci): use src/oci's layout import once it lands, and add oci-archive /
 * docker-archive through it.
 */
async function importFromLayout (store: ContentStore, layout: string, tag: string | undefined, platform: Platform, ref: string): Promise<Descriptor> {
  let text: string
  try { text = await readFile(join(layout, 'index.json'), 'utf8') } catch { throw new BaseImageError(`${ref}: no OCI image layout at ${layout}`) }
  if (text.length > MAX_LAYOUT_FILE_SIZE) throw new BaseImageError(`${ref}: index.json too large`)
  const index = ImageIndexSchema.parse(JSON.parse(text))
  const matches = index.manifests.filter(m => tag === undefined ? true : m.annotations?.[ANNOTATION_REF_NAME] === tag)
  const top = matches[0]
  if (top === undefined || (tag === undefined && matches.length > 1)) throw new BaseImageError(`${ref}: ${tag === undefined ? 'the layout holds several images: name one with :TAG' : `no image tagged ${tag} in ${layout}`}`)
  await ingestFromLayout(store, layout, top)
  let d = top
  if (isIndex(top.mediaType)) {
    const sub = ImageIndexSchema.parse(JSON.parse(Buffer.from(await store.readBytes(top.digest, MAX_MANIFEST_SIZE)).toString('utf8')))
    d = selectManifest(sub, platform)
    await ingestFromLayout(store, layout, d)
  }
  const parsed = parseManifestBytes(await store.readBytes(d.digest, MAX_MANIFEST_SIZE), d.mediaType)
  if (parsed.kind !== 'manifest') throw new BaseImageError(`${ref}: nested indexes are not supported`)
  await ingestFromLayout(store, layout, parsed.value.config)
  for (const l of parsed.value.layers) await ingestFromLayout(store, layout, l)
  return d
}

export interface BaseResolverInit {
  store: ContentStore
  refs: RefStore
}

export async function resolveBase (init: BaseResolverInit, text: string, platform: Platform, source?: SourceLoc): Promise<ResolvedBase> {
  const { store, refs } = init
  let ref
  try { ref = parseImageRef(text) } catch (err) { throw new BaseImageError(`invalid base image ${JSON.stringify(text)}: ${(err as Error).message}`, source) }
  let top: Descriptor
  switch (ref.transport) {
    case 'local': {
      if (ref.digest !== undefined) { top = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: ref.digest, size: 0 }; break }
      const found = refs.find(ref.repository, ref.tag ?? 'latest')
      if (found === undefined) throw new BaseImageError(`base image ${text} is not in the local store (import it with kiln image import, or use oci:PATH:TAG)`, source)
      top = { mediaType: found.mediaType, digest: found.digest, size: found.size }
      break
    }
    case 'digest': top = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: ref.digest, size: 0 }; break
    case 'oci':
      try { top = await importFromLayout(store, ref.path, ref.tag, platform, text) } catch (err) {
        if (err instanceof BaseImageError) throw new BaseImageError(err.message, source)
        throw new BaseImageError(`${text}: ${(err as Error).message}`, source)
      }
      break
    case 'docker': throw new BaseImageError(`base image ${text}: docker:// bases need the registry client (src/registry), which is not available yet; import the image with skopeo into an OCI layout and use oci:PATH:TAG`, source)
    default: throw new BaseImageError(`base image ${text}: the ${ref.transport} transport is not supported by the builder yet; use oci:PATH:TAG or an image in the local store`, source)
  }
  if (!await store.has(top.digest)) throw new BaseImageError(`base image ${text}: manifest ${top.digest} is not in the store`, source)
  const { digest, manifest } = await readManifestAt(store, top, platform, text)
  const config = parseConfigBytes(await store.readBytes(manifest.config.digest, MAX_CONFIG_SIZE))
  return { manifestDigest: digest, manifest, config }
}

/**
 * The unpacked rootfs of a base, made once per manifest and user under
 * cacheDir and reused. Built in a temp dir and renamed into place, so a
 * crash never leaves a half-unpacked rootfs behind the final name.
 */
export async function unpackedBase (store: ContentStore, base: ResolvedBase, cacheDir: string): Promise<string> {
  const uid = process.getuid?.() ?? 0
  const name = base.manifestDigest === undefined ? `scratch-${uid}` : `${digestHex(base.manifestDigest)}-${uid}`
  const dir = join(cacheDir, name)
  if (await stat(dir).then(() => true, () => false)) return dir
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`
  await mkdir(tmp, { recursive: true })
  try {
    for (const layer of base.manifest?.layers ?? []) await extractLayer(store.read(layer.digest), tmp)
    await rename(tmp, dir)
  } catch (err) {
    await removeTree(tmp)
    if (await stat(dir).then(() => true, () => false)) return dir
    throw err
  }
  return dir
}
