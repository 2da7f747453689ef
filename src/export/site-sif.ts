/**
 * `sif=true` for a static site: the image's SIF ORAS artifact (src/sif's
 * oras-artifact.ts, the same bytes the gateway serves for `<tag>.sif`),
 * made once per export and held, with its config and manifest, in a
 * throwaway content store so the site writer copies it like any image.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createFsContentStore, sha256Digest } from '../content/index.ts'
import { OCI_MANIFEST } from '../oci/index.ts'
import { SIF_ARTIFACT_CONFIG, SIF_LAYER_TITLE, SIF_TAG_SUFFIX, sifArtifactManifest, sifArtifactSubject, writeArtifactSif } from '../sif/index.ts'
import { removeTree } from '../util/fs.ts'
import type { ExportImage } from './index.ts'
import { splitRepoTag } from './names.ts'

export interface SiteSif {
  /** The artifact as an image: its manifest is the root. */
  image: ExportImage
  /** Removes the throwaway store. */
  dispose: () => Promise<void>
}

/** `repo:T` to `repo:T.sif`. */
export function sifTagName (name: string): string {
  const { repository, tag } = splitRepoTag(name)
  return `${repository}:${tag}${SIF_TAG_SUFFIX}`
}

/** Makes image's SIF artifact. Throws src/oci's PlatformNotFoundError (an index without a host-platform image) and what exportSif throws. */
export async function makeSiteSif (image: ExportImage, options: { tmpDir?: string, signal?: AbortSignal }): Promise<SiteSif> {
  const tmp = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'kiln-site-sif-'))
  try {
    const store = await createFsContentStore({ root: join(tmp, 'store') })
    const subject = await sifArtifactSubject(image.store, image.root)
    const file = join(tmp, SIF_LAYER_TITLE)
    await writeArtifactSif(image.store, subject, file, { tmpDir: tmp, ...(options.signal === undefined ? {} : { signal: options.signal }) })
    const layer = await store.ingestFile(file)
    await store.ingest(SIF_ARTIFACT_CONFIG, { digest: sha256Digest(SIF_ARTIFACT_CONFIG), size: SIF_ARTIFACT_CONFIG.byteLength })
    const bytes = sifArtifactManifest(subject, layer)
    const digest = sha256Digest(bytes)
    await store.ingest(bytes, { digest, size: bytes.byteLength })
    return { image: { store, root: { mediaType: OCI_MANIFEST, digest, size: bytes.byteLength } }, dispose: async () => { await removeTree(tmp) } }
  } catch (err) {
    await removeTree(tmp)
    throw err
  }
}
