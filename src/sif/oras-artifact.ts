/**
 * A SIF as an ORAS artifact: how the gateway serves every image as
 * `<tag>.sif` (docs/gateway.md §"SIF") and how a static site carries it
 * (docs/static-registry.md), one definition so both give the same bytes.
 *
 * Terms:
 * - SIF tag: `<tag>.sif`, where `<tag>` names an image. It is a valid OCI
 *   tag (the tag grammar allows `.`), so every client asks for it as for
 *   any tag.
 * - subject: the single-platform image manifest the SIF is made from (an
 *   index gives its host-platform image, as `apptainer pull docker://`
 *   would pick it).
 * - SIF artifact: an OCI image manifest with config media type (and
 *   artifactType) `application/vnd.sylabs.sif.config.v1+json`, config `{}`
 *   (what Apptainer pushes), one layer `application/vnd.sylabs.sif.layer.v1.sif`
 *   titled `image.sif` (what Apptainer's ORAS pull looks for), `subject` the
 *   subject so the referrers API lists it, and SOURCE_ANNOTATION naming the
 *   subject's digest.
 *
 * Deterministic: the SIF is exportSif's with SOURCE_DATE_EPOCH 0 (its UUID
 * comes from the subject's digest), so one image gives one artifact digest
 * wherever it is made.
 */
import { sha256Digest } from '../content/digest.ts'
import type { BlobReader, Digest } from '../content/index.ts'
import { OCI_MANIFEST, encodeJson, hostPlatform, resolveImage } from '../oci/index.ts'
import type { Descriptor } from '../oci/index.ts'
import { SIF_CONFIG_MEDIA_TYPE, SIF_LAYER_MEDIA_TYPE } from './constants.ts'
import { exportSif } from './from-image.ts'

/** The suffix that turns an image tag into its SIF tag. */
export const SIF_TAG_SUFFIX = '.sif'
/** Layer title: the file name `oras pull` writes and Apptainer's ORAS client expects. */
export const SIF_LAYER_TITLE = 'image.sif'
/** Marks an artifact kiln made, with the image manifest digest it was made from. */
export const SOURCE_ANNOTATION = 'org.kiln.sif.source'
/** The artifact's config blob: `{}`, as Apptainer pushes it. */
export const SIF_ARTIFACT_CONFIG: Uint8Array = encodeJson({})

/** The subject of the SIF artifact of image: itself, or an index's host-platform image. Throws src/oci's PlatformNotFoundError. */
export async function sifArtifactSubject (store: BlobReader, image: { mediaType: string, digest: Digest, size: number }): Promise<Descriptor> {
  const d = (await resolveImage(store, { mediaType: image.mediaType, digest: image.digest, size: image.size }, hostPlatform())).descriptor
  return { mediaType: d.mediaType, digest: d.digest, size: d.size }
}

/** Writes the artifact's SIF for subject at dest. Throws what exportSif throws. */
export async function writeArtifactSif (store: BlobReader, subject: Descriptor, dest: string, options: { tmpDir?: string, signal?: AbortSignal } = {}): Promise<void> {
  await exportSif(store, subject, dest, { ...options, sourceDateEpoch: 0 })
}

/** The artifact manifest's bytes, given its subject and the SIF blob. */
export function sifArtifactManifest (subject: Descriptor, sif: { digest: Digest, size: number }): Uint8Array {
  return encodeJson({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: SIF_CONFIG_MEDIA_TYPE,
    config: { mediaType: SIF_CONFIG_MEDIA_TYPE, digest: sha256Digest(SIF_ARTIFACT_CONFIG), size: SIF_ARTIFACT_CONFIG.byteLength },
    layers: [{ mediaType: SIF_LAYER_MEDIA_TYPE, digest: sif.digest, size: sif.size, annotations: { 'org.opencontainers.image.title': SIF_LAYER_TITLE } }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { [SOURCE_ANNOTATION]: subject.digest }
  })
}
