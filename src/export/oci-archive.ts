/**
 * type=oci-archive: a tar of an OCI image layout (what `skopeo copy ...
 * oci-archive:FILE` and `buildx --output type=oci` write), written by
 * src/oci's deterministic archive writer and replaced atomically.
 */
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { formatImageRef, writeOciArchive } from '../oci/index.ts'
import type { ExportImage, ExportOptions, ExportResult } from './index.ts'
import { layoutEntries, targetNames } from './names.ts'
import type { OciArchiveSpec } from './output-spec.ts'

export async function exportOciArchive (image: ExportImage, spec: OciArchiveSpec, options: ExportOptions): Promise<ExportResult> {
  options.signal?.throwIfAborted()
  const index = layoutEntries(image.root, targetNames(spec.names, options))
  await mkdir(dirname(spec.dest), { recursive: true })
  await writeOciArchive(spec.dest, image.store, index.map(descriptor => ({ descriptor })), written => { options.onProgress?.({ type: 'oci-archive', event: 'written', size: written }) })
  const tag = index[0]?.annotations?.['org.opencontainers.image.ref.name']
  return { description: formatImageRef({ transport: 'oci-archive', path: spec.dest, ...(tag === undefined ? {} : { tag }) }), digest: image.root.digest }
}
