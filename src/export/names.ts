/**
 * Target names: the `name=` values of a spec, else the build's tags, and how
 * a `REPO:TAG` splits for the targets that store repository and tag apart.
 */
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME } from '../oci/index.ts'
import type { Descriptor } from '../oci/index.ts'
import type { ExportOptions } from './index.ts'

export function targetNames (specNames: readonly string[], options: ExportOptions): string[] {
  return specNames.length > 0 ? [...specNames] : [...(options.tags ?? [])]
}

/** `repo[:tag]` -> repository and tag (default `latest`). A colon before the last `/` is a port, not a tag. */
export function splitRepoTag (name: string): { repository: string, tag: string } {
  const colon = name.lastIndexOf(':')
  if (colon < 0 || colon < name.lastIndexOf('/')) return { repository: name, tag: 'latest' }
  return { repository: name.slice(0, colon), tag: name.slice(colon + 1) }
}

/**
 * Index entries of an OCI layout for names, as buildx writes them: the
 * ref.name is the tag (`oci:DIR:TAG` selects it), io.containerd.image.name
 * the whole name. A name without a tag is the ref name itself. No names: one
 * unnamed entry.
 */
export function layoutEntries (root: Descriptor, names: readonly string[]): Descriptor[] {
  if (names.length === 0) return [root]
  return names.map(n => {
    const colon = n.lastIndexOf(':')
    const hasTag = colon >= 0 && colon > n.lastIndexOf('/')
    const annotations: Record<string, string> = { ...root.annotations, [ANNOTATION_REF_NAME]: hasTag ? n.slice(colon + 1) : n }
    if (hasTag) annotations[ANNOTATION_IMAGE_NAME] = n
    return { ...root, annotations }
  })
}
