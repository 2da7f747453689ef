/**
 * type=oci-archive: a tar of an OCI image layout (what `skopeo copy ...
 * oci-archive:FILE` and `buildx --output type=oci` write). The file is
 * replaced as a whole, atomically.
 */
import { digestHex } from '../content/index.ts'
import { OCI_LAYOUT_VERSION, encodeJson, formatImageRef, walkImage } from '../oci/index.ts'
import { layoutIndexBytes } from '../oci/layout.ts'
import type { Descriptor } from '../oci/index.ts'
import type { ExportImage, ExportOptions, ExportResult } from './index.ts'
import { layoutEntries, targetNames } from './names.ts'
import type { OciArchiveSpec } from './output-spec.ts'
import { writeTarFile } from './tar-file.ts'
import type { TarFileEntry } from './tar-file.ts'

export async function * layoutTarEntries (image: ExportImage, index: readonly Descriptor[], options: ExportOptions, type: 'oci-archive'): AsyncGenerator<TarFileEntry> {
  const layoutFile = encodeJson({ imageLayoutVersion: OCI_LAYOUT_VERSION })
  yield { name: 'oci-layout', size: layoutFile.byteLength, data: layoutFile }
  const indexBytes = layoutIndexBytes(index)
  yield { name: 'index.json', size: indexBytes.byteLength, data: indexBytes }
  yield { name: 'blobs/', size: 0 }
  yield { name: 'blobs/sha256/', size: 0 }
  for await (const w of walkImage(image.store, image.root)) {
    if (!w.present) continue
    const d = w.descriptor
    yield { name: `blobs/sha256/${digestHex(d.digest)}`, size: d.size, data: () => image.store.read(d.digest, { ...(options.signal === undefined ? {} : { signal: options.signal }) }) }
    // The consumer asks for the next entry only once this one is written.
    options.onProgress?.({ type, event: w.role === 'root' || w.role === 'manifest' ? 'manifest' : 'blob', digest: d.digest, size: d.size })
  }
}

export async function exportOciArchive (image: ExportImage, spec: OciArchiveSpec, options: ExportOptions): Promise<ExportResult> {
  const index = layoutEntries(image.root, targetNames(spec.names, options))
  await writeTarFile(spec.dest, layoutTarEntries(image, index, options, 'oci-archive'), options.signal)
  const tag = index[0]?.annotations?.['org.opencontainers.image.ref.name']
  return { description: formatImageRef({ transport: 'oci-archive', path: spec.dest, ...(tag === undefined ? {} : { tag }) }), digest: image.root.digest }
}
