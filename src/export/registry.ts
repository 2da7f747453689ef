/**
 * type=registry: push the image to an OCI distribution registry with
 * src/registry (blobs first, then child manifests by digest, then the root
 * under each tag). Credentials come from the usual auth files unless the
 * components give a client.
 */
import { formatDockerName, parseDockerName } from '../oci/index.ts'
import { createRegistryClient, pushImage } from '../registry/index.ts'
import type { ExportImage, ExportOptions, ExportResult, ExporterComponents } from './index.ts'
import { targetNames } from './names.ts'
import type { RegistrySpec } from './output-spec.ts'
import { OutputSpecInvalidError } from './errors.ts'

export async function exportRegistry (image: ExportImage, spec: RegistrySpec, options: ExportOptions, components: ExporterComponents): Promise<ExportResult> {
  const names = targetNames(spec.names, options)
  if (names.length === 0) throw new OutputSpecInvalidError('type=registry needs name=HOST/REPO:TAG (or a -t tag)', ['name'])
  const pushed: string[] = []
  for (const text of names) {
    options.signal?.throwIfAborted()
    const name = parseDockerName(text)
    const client = components.registry?.(name, spec.insecure) ?? createRegistryClient({ registry: name.domain, insecure: spec.insecure, ...(components.env === undefined ? {} : { env: components.env }) })
    const reference = name.tag ?? image.root.digest
    await pushImage(client, image.store, image.root, name.path, reference, {
      onBlob: d => { options.onProgress?.({ type: 'registry', event: 'blob', digest: d.digest, size: d.size }) }
    })
    options.onProgress?.({ type: 'registry', event: 'tag', digest: image.root.digest })
    pushed.push(`docker://${formatDockerName({ ...name, digest: image.root.digest })}`)
  }
  return { description: pushed.join(', '), digest: image.root.digest }
}
