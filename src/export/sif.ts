/**
 * type=sif: the image as a SIF file, Apptainer's own format (docs/sif.md),
 * made by src/sif: one platform (`platform=`, default this host's), the
 * rootfs as the squashfs primary partition, the definition file as its own
 * object when the build had one. Deterministic for a given image and
 * SOURCE_DATE_EPOCH; the file is replaced atomically.
 */
import { parsePlatform } from '../oci/index.ts'
import { exportSif } from '../sif/index.ts'
import type { ExportImage, ExportOptions, ExportResult, ExporterComponents } from './index.ts'
import type { SifSpec } from './output-spec.ts'

export async function exportSifFile (image: ExportImage, spec: SifSpec, options: ExportOptions, components: ExporterComponents): Promise<ExportResult> {
  options.signal?.throwIfAborted()
  const r = await exportSif(image.store, image.root, spec.dest, {
    ...(spec.platform === undefined ? {} : { platform: parsePlatform(spec.platform) }),
    ...(options.definition === undefined ? {} : { definition: options.definition }),
    ...(options.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: options.sourceDateEpoch }),
    ...(components.tmpDir === undefined ? {} : { tmpDir: components.tmpDir }),
    ...(options.signal === undefined ? {} : { signal: options.signal })
  })
  options.onProgress?.({ type: 'sif', event: 'manifest', digest: r.manifest.digest })
  return { description: `sif:${spec.dest}`, digest: r.manifest.digest }
}
