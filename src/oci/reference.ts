/**
 * Image references as skopeo, podman and buildah users write them
 * (containers-transports(5)):
 *
 * - `oci:PATH[:TAG]`              an OCI image layout directory
 * - `oci-archive:FILE[:TAG]`      a tar of an OCI image layout
 * - `docker-archive:FILE[:REF|:@N]` a `docker save` tarball
 * - `docker://[HOST/]REPO[:TAG][@DIGEST]` a registry (names normalized: `busybox` -> `docker.io/library/busybox:latest`)
 * - `REPO[:TAG]`, `REPO@sha256:...` the local store (names kept as written, tag defaults to `latest`;
 *   looked up under every spelling of the same name, see repositorySpellings)
 * - `sha256:...`                  a manifest or index in the local store by digest
 *
 * As in containers/image, the path of `oci:`, `oci-archive:` and
 * `docker-archive:` ends at the first colon: paths with colons are not
 * supported.
 */
import { isDigest } from '../content/index.ts'
import type { Digest } from '../content/index.ts'
import { ReferenceInvalidError } from './errors.ts'

/** A name in the Docker/distribution grammar, split into its parts. */
export interface DockerName {
  /** Registry host[:port]; `docker.io` after normalization. */
  domain: string
  /** Repository path inside the registry, e.g. `library/busybox`. */
  path: string
  tag?: string
  digest?: Digest
}

export type ImageRef =
  | { transport: 'oci', path: string, tag?: string }
  | { transport: 'oci-archive', path: string, tag?: string }
  | { transport: 'docker-archive', path: string, name?: DockerName, index?: number }
  | { transport: 'docker', name: DockerName }
  | { transport: 'local', repository: string, tag?: string, digest?: Digest }
  | { transport: 'digest', digest: Digest }

export type Transport = ImageRef['transport']

const DEFAULT_DOMAIN = 'docker.io'
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io'
const DEFAULT_TAG = 'latest'
const MAX_NAME_LENGTH = 255

const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const DOMAIN_RE = /^(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/
const TAG_RE = /^[\w][\w.-]{0,127}$/
/** `org.opencontainers.image.ref.name` grammar from the image-layout spec. */
const LAYOUT_REF_RE = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/

const UNSUPPORTED_TRANSPORTS = ['dir', 'docker-daemon', 'containers-storage', 'ostree', 'sif', 'tarball']

function invalid (text: string, why: string): never {
  throw new ReferenceInvalidError(`invalid image reference ${JSON.stringify(text)}: ${why}`)
}

function splitDigest (text: string, whole: string): { rest: string, digest?: Digest } {
  const at = text.indexOf('@')
  if (at < 0) return { rest: text }
  const digest = text.slice(at + 1)
  if (!isDigest(digest)) invalid(whole, `${JSON.stringify(digest)} is not a sha256 digest`)
  return { rest: text.slice(0, at), digest }
}

function splitTag (text: string, whole: string): { rest: string, tag?: string } {
  const colon = text.lastIndexOf(':')
  if (colon < 0 || colon < text.lastIndexOf('/')) return { rest: text }
  const tag = text.slice(colon + 1)
  if (!TAG_RE.test(tag)) invalid(whole, `${JSON.stringify(tag)} is not a valid tag`)
  return { rest: text.slice(0, colon), tag }
}

/** Parses `[HOST/]PATH[:TAG][@DIGEST]` without normalizing the domain. */
function parseName (text: string, whole: string): { domain?: string, path: string, tag?: string, digest?: Digest } {
  if (text === '') invalid(whole, 'empty name')
  const { rest: beforeDigest, digest } = splitDigest(text, whole)
  const { rest: name, tag } = splitTag(beforeDigest, whole)
  if (name.length > MAX_NAME_LENGTH) invalid(whole, `name longer than ${MAX_NAME_LENGTH} characters`)
  const slash = name.indexOf('/')
  const first = slash < 0 ? name : name.slice(0, slash)
  const hasDomain = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())
  const domain = hasDomain ? first : undefined
  const path = hasDomain ? name.slice(slash + 1) : name
  if (domain !== undefined && !DOMAIN_RE.test(domain)) invalid(whole, `${JSON.stringify(domain)} is not a valid registry host`)
  for (const c of path.split('/')) {
    if (!COMPONENT_RE.test(c)) {
      invalid(whole, `${JSON.stringify(c)} is not a valid repository name component (lowercase letters, digits, and . _ __ - between them)`)
    }
  }
  return { domain, path, tag, digest }
}

/** Parses and normalizes a Docker name as `docker pull` would: `busybox` -> `docker.io/library/busybox:latest`. */
export function parseDockerName (text: string, whole = text): DockerName {
  const n = parseName(text, whole)
  let domain = n.domain ?? DEFAULT_DOMAIN
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN
  const path = domain === DEFAULT_DOMAIN && !n.path.includes('/') ? `library/${n.path}` : n.path
  const tag = n.tag ?? (n.digest === undefined ? DEFAULT_TAG : undefined)
  return { domain, path, ...(tag === undefined ? {} : { tag }), ...(n.digest === undefined ? {} : { digest: n.digest }) }
}

/** `domain/path[:tag][@digest]`. */
export function formatDockerName (n: DockerName): string {
  return `${n.domain}/${n.path}${n.tag === undefined ? '' : `:${n.tag}`}${n.digest === undefined ? '' : `@${n.digest}`}`
}

/**
 * The spellings of one repository that Docker, containerd and podman take for
 * the same image, `repository` itself first: `busybox`, `library/busybox`,
 * `docker.io/library/busybox` and `index.docker.io/library/busybox` are one
 * name, as are `demo/app` and `docker.io/demo/app`. Names in the local store
 * are kept as they were written (stores made before normalization still
 * hold short names), so a lookup tries each spelling in this order. A text
 * that is not a valid name has only itself.
 */
export function repositorySpellings (repository: string): string[] {
  let n: DockerName
  try { n = parseDockerName(repository) } catch { return [repository] }
  if (n.tag !== DEFAULT_TAG || n.digest !== undefined) return [repository]
  const full = `${n.domain}/${n.path}`
  if (n.domain !== DEFAULT_DOMAIN) return [...new Set([repository, full])]
  const official = /^library\/[^/]+$/.test(n.path) ? n.path.slice('library/'.length) : undefined
  return [...new Set([repository, ...(official !== undefined ? [official] : []), n.path, full, `${LEGACY_DEFAULT_DOMAIN}/${n.path}`])]
}

/** Checks a name for an image layout's `org.opencontainers.image.ref.name`. */
export function isValidLayoutRefName (name: string): boolean {
  return LAYOUT_REF_RE.test(name)
}

function splitPathAndTag (body: string, whole: string, requireTagGrammar: boolean): { path: string, tag?: string } {
  const colon = body.indexOf(':')
  const path = colon < 0 ? body : body.slice(0, colon)
  const tag = colon < 0 ? undefined : body.slice(colon + 1)
  if (path === '') invalid(whole, 'empty path')
  if (tag !== undefined && requireTagGrammar && !LAYOUT_REF_RE.test(tag)) invalid(whole, `${JSON.stringify(tag)} is not a valid image layout ref name`)
  return tag === undefined || tag === '' ? { path } : { path, tag }
}

function parseDockerArchive (body: string, whole: string): ImageRef {
  const { path, tag: rest } = splitPathAndTag(body, whole, false)
  if (rest === undefined) return { transport: 'docker-archive', path }
  if (rest.startsWith('@')) {
    const index = Number(rest.slice(1))
    if (!/^@\d+$/.test(rest) || !Number.isSafeInteger(index)) invalid(whole, `${JSON.stringify(rest)} is not a valid @INDEX`)
    return { transport: 'docker-archive', path, index }
  }
  const name = parseDockerName(rest, whole)
  if (name.digest !== undefined) invalid(whole, 'a docker-archive reference cannot carry a digest')
  return { transport: 'docker-archive', path, name }
}

/** Parses an image reference; throws ReferenceInvalidError saying what is wrong. */
export function parseImageRef (text: string): ImageRef {
  const whole = text
  if (text.trim() !== text || text === '') invalid(whole, 'empty or padded with whitespace')
  if (text.startsWith('sha256:')) {
    if (!isDigest(text)) invalid(whole, 'expected sha256:<64 lowercase hex characters>')
    return { transport: 'digest', digest: text as Digest }
  }
  if (text.startsWith('docker://')) return { transport: 'docker', name: parseDockerName(text.slice('docker://'.length), whole) }
  if (text.startsWith('oci:')) return { transport: 'oci', ...splitPathAndTag(text.slice(4), whole, true) }
  if (text.startsWith('oci-archive:')) return { transport: 'oci-archive', ...splitPathAndTag(text.slice(12), whole, true) }
  if (text.startsWith('docker-archive:')) return parseDockerArchive(text.slice(15), whole)
  const prefix = /^([a-z-]+):(?!\d)/.exec(text)?.[1]
  if (prefix === 'docker') invalid(whole, 'the docker transport is written docker://HOST/REPO:TAG')
  if (prefix !== undefined && UNSUPPORTED_TRANSPORTS.includes(prefix)) invalid(whole, `transport ${prefix}: is not supported by kiln`)
  const n = parseName(text, whole)
  const repository = n.domain === undefined ? n.path : `${n.domain}/${n.path}`
  const tag = n.tag ?? (n.digest === undefined ? DEFAULT_TAG : undefined)
  return { transport: 'local', repository, ...(tag === undefined ? {} : { tag }), ...(n.digest === undefined ? {} : { digest: n.digest }) }
}

/** Writes a reference back in the syntax parseImageRef reads. */
export function formatImageRef (ref: ImageRef): string {
  switch (ref.transport) {
    case 'oci':
    case 'oci-archive':
      return `${ref.transport}:${ref.path}${ref.tag === undefined ? '' : `:${ref.tag}`}`
    case 'docker-archive':
      return `docker-archive:${ref.path}${ref.name !== undefined ? `:${formatDockerName(ref.name)}` : ref.index !== undefined ? `:@${ref.index}` : ''}`
    case 'docker':
      return `docker://${formatDockerName(ref.name)}`
    case 'local':
      return `${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`
    case 'digest':
      return ref.digest
  }
}
