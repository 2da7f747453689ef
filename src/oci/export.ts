/**
 * Exporting images from the content store as an OCI image layout or an
 * oci-archive. Blobs are copied as they are, so digests do not change.
 */
import type { BlobReader } from '../content/index.ts'
import { writeOciArchive } from './archive.ts'
import { ReferenceInvalidError } from './errors.ts'
import { writeOciLayout } from './layout.ts'
import { isValidLayoutRefName } from './reference.ts'
import type { ImageRef } from './reference.ts'
import type { Descriptor } from './schemas.ts'

export type ExportFormat = 'oci-layout' | 'oci-archive'

export interface ExportOptions {
  format: ExportFormat
  /** Layout directory or archive file. */
  dest: string
  /** Name for the image in the layout (`org.opencontainers.image.ref.name`). */
  refName?: string
  /** Called as the export goes, with the bytes written so far (blobs for a layout, the tar for an archive). */
  onProgress?: (written: number) => void
}

/**
 * Writes one image (manifest or index, with everything it references) to a
 * layout directory (merged into an existing one) or an archive file
 * (replaced).
 */
export async function exportImage (store: BlobReader, descriptor: Descriptor, options: ExportOptions): Promise<void> {
  if (options.refName !== undefined && !isValidLayoutRefName(options.refName)) {
    throw new ReferenceInvalidError(`${JSON.stringify(options.refName)} is not a valid image layout ref name`)
  }
  const images = [{ descriptor, ...(options.refName === undefined ? {} : { refName: options.refName }) }]
  if (options.format === 'oci-layout') await writeOciLayout(options.dest, store, images, options.onProgress)
  else await writeOciArchive(options.dest, store, images, options.onProgress)
}

/** Export options from an `oci:` or `oci-archive:` reference. */
export function exportOptionsFromRef (ref: ImageRef): ExportOptions {
  switch (ref.transport) {
    case 'oci': return { format: 'oci-layout', dest: ref.path, ...(ref.tag === undefined ? {} : { refName: ref.tag }) }
    case 'oci-archive': return { format: 'oci-archive', dest: ref.path, ...(ref.tag === undefined ? {} : { refName: ref.tag }) }
    default: throw new ReferenceInvalidError(`cannot export to a ${ref.transport} reference; use oci: or oci-archive:`)
  }
}
