/**
 * type=oci-layout: an OCI image layout directory, created or merged into
 * (entries with the same ref name are replaced, blobs already present are
 * kept). The writing is src/oci's; this only names the entries.
 */
import { formatImageRef, writeOciLayout } from '../oci/index.ts'
import type { ExportImage, ExportOptions, ExportResult } from './index.ts'
import { layoutEntries, targetNames } from './names.ts'
import type { OciLayoutSpec } from './output-spec.ts'

export async function exportOciLayout (image: ExportImage, spec: OciLayoutSpec, options: ExportOptions): Promise<ExportResult> {
  options.signal?.throwIfAborted()
  const entries = layoutEntries(image.root, targetNames(spec.names, options))
  await writeOciLayout(spec.dest, image.store, entries.map(descriptor => ({ descriptor })), written => { options.onProgress?.({ type: 'oci-layout', event: 'written', size: written }) })
  const tag = entries[0]?.annotations?.['org.opencontainers.image.ref.name']
  return { description: formatImageRef({ transport: 'oci', path: spec.dest, ...(tag === undefined ? {} : { tag }) }), digest: image.root.digest }
}
