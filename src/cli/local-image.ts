/**
 * Names of images in the local store, as the CLI takes them: `REPO[:TAG]`,
 * `REPO@sha256:...` or a bare `sha256:...` digest of a manifest or index.
 */
import type { Descriptor } from '../oci/index.ts'
import type { LocalStore } from '../content/index.ts'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'
import { isErrorOf } from '../util/error-class.ts'

export interface LocalImage {
  descriptor: Descriptor
  /** `REPO:TAG` when named by a ref. */
  name?: string
}

export async function resolveLocalImage (store: LocalStore, text: string): Promise<LocalImage> {
  const { parseImageRef, parseManifestBytes, MAX_MANIFEST_SIZE } = await import('../oci/index.ts')
  const ref = parseImageRef(text)
  if (ref.transport !== 'local' && ref.transport !== 'digest') {
    throw new CliError(`${text} names an image outside the local store`, {
      exitCode: EXIT.usage,
      hint: `import it first: kiln image import ${text}`
    })
  }
  const digest = ref.digest
  if (digest === undefined && ref.transport === 'local') {
    const tag = ref.tag ?? 'latest'
    const found = store.refs.find(ref.repository, tag)
    if (found === undefined) {
      throw new CliError(`no image named ${ref.repository}:${tag} in the local store`, { exitCode: EXIT.notFound, hint: 'kiln image ls lists what is there' })
    }
    return { descriptor: { mediaType: found.mediaType, digest: found.digest, size: found.size }, name: `${found.repository}:${found.tag}` }
  }
  if (digest === undefined) throw new CliError(`cannot resolve ${text}`, { exitCode: EXIT.usage })
  if (!(await store.content.has(digest))) {
    throw new CliError(`no manifest or index ${digest} in the local store`, { exitCode: EXIT.notFound, hint: 'kiln pull fetches it from the network' })
  }
  const bytes = await store.content.readBytes(digest, MAX_MANIFEST_SIZE)
  const parsed = parseManifestBytes(bytes)
  return { descriptor: { mediaType: parsed.mediaType, digest, size: bytes.byteLength } }
}

/**
 * A valid `REPO:TAG` near `text`, for hints: lowercase path components with
 * other characters turned into `-`, and a tag with them turned into `_`.
 */
function nearestValidName (text: string): string {
  const slash = text.lastIndexOf('/')
  const colon = text.lastIndexOf(':')
  const [repo, tag] = colon > slash ? [text.slice(0, colon), text.slice(colon + 1)] : [text, 'latest']
  const components = repo.toLowerCase().split('/')
    .map(c => c.replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, ''))
    .filter(c => c !== '')
  const cleanTag = tag.replace(/[^\w.-]+/g, '_').replace(/^[.-]+/, '').slice(0, 128)
  return `${components.length > 0 ? components.join('/') : 'demo/hello'}:${cleanTag === '' ? 'latest' : cleanTag}`
}

/**
 * Splits `REPO[:TAG]` into its parts, the tag defaulting to latest; refuses
 * digests, transports, and names the OCI distribution spec refuses
 * (uppercase, bad separators, a bad tag), before anything is built or
 * stored under them, with a valid form in the hint.
 */
export async function parseTagName (text: string): Promise<{ repository: string, tag: string }> {
  const { parseImageRef, ReferenceInvalidError } = await import('../oci/index.ts')
  let ref
  try {
    ref = parseImageRef(text)
  } catch (err) {
    if (!isErrorOf(err, ReferenceInvalidError)) throw err
    const near = nearestValidName(text)
    throw new CliError(`${err.message}; image names are lowercase path components (letters, digits, and . _ __ - between them) with an optional :TAG of up to 128 letters, digits, _ . -`, {
      exitCode: EXIT.usage, cause: err, hint: `for example ${near}`
    })
  }
  if (ref.transport !== 'local' || ref.digest !== undefined) {
    throw new CliError(`${JSON.stringify(text)} is not a name for the local store`, { exitCode: EXIT.usage, hint: 'use REPO[:TAG], e.g. demo/hello:1' })
  }
  return { repository: ref.repository, tag: ref.tag ?? 'latest' }
}

export interface ImportName { repository: string, tag: string, descriptor: Descriptor }

/** A repository name made from a file or directory name: lowercase, only the characters names allow. */
function repositoryFromPath (path: string): string {
  const base = path.replace(/\/+$/, '').split('/').pop() ?? ''
  const stem = base.replace(/\.(tar|tar\.gz|tgz|oci|ociarchive)$/i, '').replace(/\.(oci)$/i, '')
  const clean = stem.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
  return clean === '' ? 'imported' : clean
}

/**
 * The local names for imported images: --tag when given (one image only);
 * else the name in the source: a full `REPO:TAG` (docker RepoTags, or a
 * layout ref name that is one) is kept, a bare tag gets the source's file
 * name as repository; an unnamed image is `<file name>:latest`.
 */
export async function namesForImport (images: ReadonlyArray<{ descriptor: Descriptor, refName?: string }>, ref: { transport: string, path?: string }, tag: string | undefined, displaySource?: string): Promise<ImportName[]> {
  if (tag !== undefined) {
    if (images.length !== 1) {
      throw new CliError(`the source holds ${images.length} images; --tag can name only one`, { exitCode: EXIT.usage, hint: 'select one with :TAG after the source, or omit --tag to keep the names in the source' })
    }
    const t = await parseTagName(tag)
    return [{ ...t, descriptor: (images[0] as { descriptor: Descriptor }).descriptor }]
  }
  const repo = repositoryFromPath(displaySource !== undefined ? new URL(displaySource).pathname : ref.path ?? '')
  const out: ImportName[] = []
  for (const img of images) {
    const name = img.refName
    if (name !== undefined && /[:/]/.test(name)) {
      try {
        out.push({ ...(await parseTagName(name)), descriptor: img.descriptor })
        continue
      } catch { /* not a usable full name: treat as a tag below */ }
    }
    const tagName = name !== undefined && /^[\w][\w.-]{0,127}$/.test(name) ? name : 'latest'
    out.push({ repository: repo, tag: tagName, descriptor: img.descriptor })
  }
  return out
}
