/**
 * The Exporter behind createExporter: dispatches a target to the function
 * that writes its type.
 */
import { exportDockerArchive } from './docker-archive.ts'
import { ExporterUnavailableError } from './errors.ts'
import { exportExec } from './exec.ts'
import type { ExportImage, ExportOptions, ExportResult, Exporter, ExporterComponents } from './index.ts'
import { exportOciArchive } from './oci-archive.ts'
import { exportOciLayout } from './oci-layout.ts'
import type { OutputSpec } from './output-spec.ts'
import { exportRegistry } from './registry.ts'
import { exportLocal, exportTar } from './rootfs.ts'
import { exportS3 } from './s3.ts'
import { exportSifFile } from './sif.ts'
import { exportStaticSite } from './static-site.ts'

export class KilnExporter implements Exporter {
  private readonly components: ExporterComponents

  constructor (components: ExporterComponents) {
    this.components = components
  }

  async export (image: ExportImage, target: OutputSpec, options: ExportOptions = {}): Promise<ExportResult> {
    options.signal?.throwIfAborted()
    switch (target.type) {
      case 'oci-layout': return await exportOciLayout(image, target, options)
      case 'oci-archive': return await exportOciArchive(image, target, options)
      case 'docker-archive': return await exportDockerArchive(image, target, options)
      case 'registry': return await exportRegistry(image, target, options, this.components)
      case 'static': return await exportStaticSite(image, target, options, this.components)
      case 's3': return await exportS3(image, target, options, this.components)
      case 'exec': return await exportExec(image, target, options, this.components)
      case 'sif': return await exportSifFile(image, target, options, this.components)
      case 'local': return await exportLocal(image, target, options)
      case 'tar': return await exportTar(image, target, options, this.components)
      case 'kiln': {
        const network = this.components.network
        if (network === undefined) throw new ExporterUnavailableError('type=kiln needs the peer network, which is not running in this command; use kiln submit or kiln agent, or another output type')
        const r = await network.provideImage(image, options.signal === undefined ? {} : { signal: options.signal })
        return { description: r.description, digest: image.root.digest }
      }
    }
  }
}
