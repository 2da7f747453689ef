/**
 * The image graph: an index points at manifests (or indexes), a manifest at
 * its config and layers, either may point at a subject. Walking it gives
 * every blob an image needs, for GC, export and transfer.
 */
import { NotFoundError, sha256Digest } from '../content/index.ts'
import type { BlobReader, Digest } from '../content/index.ts'
import { MAX_MANIFEST_SIZE } from './constants.ts'
import { BlobMissingError, ManifestInvalidError } from './errors.ts'
import { isForeignLayer, isIndex, isManifest } from './media-types.ts'
import { parseManifestBytes } from './schemas.ts'
import type { Descriptor, ParsedManifest } from './schemas.ts'

/** A descriptor with the role it plays in its parent. */
export interface Child {
  descriptor: Descriptor
  role: 'manifest' | 'config' | 'layer' | 'subject'
}

/** Whether a descriptor names a manifest or index, whose bytes have children. */
export function hasChildren (descriptor: Descriptor): boolean {
  return isIndex(descriptor.mediaType) || isManifest(descriptor.mediaType)
}

/** The children of a parsed manifest or index, in document order, subject last. */
export function childrenOf (parsed: ParsedManifest): Child[] {
  const out: Child[] = parsed.kind === 'index'
    ? parsed.value.manifests.map(d => ({ descriptor: d, role: 'manifest' as const }))
    : [{ descriptor: parsed.value.config, role: 'config' as const }, ...parsed.value.layers.map(d => ({ descriptor: d, role: 'layer' as const }))]
  if (parsed.value.subject !== undefined) out.push({ descriptor: parsed.value.subject, role: 'subject' })
  return out
}

/**
 * Checks that bytes are what a descriptor names (size and digest), then
 * parses them as a manifest or index. Throws ManifestInvalidError.
 */
export function parseDescribed (descriptor: Descriptor, bytes: Uint8Array): ParsedManifest {
  if (bytes.byteLength !== descriptor.size) {
    throw new ManifestInvalidError(`${descriptor.digest}: descriptor says ${descriptor.size} bytes, content has ${bytes.byteLength}`)
  }
  const actual = sha256Digest(bytes)
  if (actual !== descriptor.digest) throw new ManifestInvalidError(`${descriptor.digest}: content hashes to ${actual}`)
  return parseManifestBytes(bytes, descriptor.mediaType)
}

/** Children of a descriptor given its bytes; empty for blobs that are not manifests or indexes. */
export function children (descriptor: Descriptor, bytes: Uint8Array): Descriptor[] {
  if (!hasChildren(descriptor)) return []
  return childrenOf(parseDescribed(descriptor, bytes)).map(c => c.descriptor)
}

export interface WalkedDescriptor {
  descriptor: Descriptor
  /** Digest of the manifest or index that referenced it; undefined for the root. */
  parent?: Digest
  role: Child['role'] | 'root'
  /** Whether the blob is in the store (always true except for optional blobs). */
  present: boolean
}

export interface WalkOptions {
  /**
   * Blobs allowed to be absent; they are yielded with present=false. Default:
   * subjects (a referrer may outlive what it refers to) and foreign layers.
   */
  optional?: (child: Child) => boolean
}

const defaultOptional = (c: Child): boolean => c.role === 'subject' || isForeignLayer(c.descriptor.mediaType)

function describeRef (parent: WalkedDescriptor): string {
  return `${parent.role === 'root' ? '' : `${parent.role} `}${parent.descriptor.mediaType} ${parent.descriptor.digest}`
}

/**
 * Yields every descriptor reachable from root, each digest once, parents
 * before their children. Manifests and indexes are read and verified;
 * other blobs are checked for presence and size. A missing blob throws
 * BlobMissingError naming it and what references it.
 */
export async function * walkImage (store: BlobReader, root: Descriptor, options: WalkOptions = {}): AsyncGenerator<WalkedDescriptor> {
  const optional = options.optional ?? defaultOptional
  const seen = new Set<Digest>()
  const stack: Array<{ node: WalkedDescriptor, optional: boolean, referrer: string }> = [
    { node: { descriptor: root, role: 'root', present: true }, optional: false, referrer: 'the root reference' }
  ]
  while (stack.length > 0) {
    const { node, optional: isOptional, referrer } = stack.pop() as (typeof stack)[number]
    const d = node.descriptor
    if (seen.has(d.digest)) continue
    seen.add(d.digest)
    let size: number
    try {
      size = (await store.info(d.digest)).size
    } catch (err) {
      if ((err as Error).name !== NotFoundError.name) throw err
      if (isOptional) { yield { ...node, present: false }; continue }
      throw new BlobMissingError(d.digest, referrer)
    }
    if (size !== d.size) throw new ManifestInvalidError(`${referrer} says ${d.digest} has ${d.size} bytes; the stored blob has ${size}`)
    yield node
    if (!hasChildren(d)) continue
    const parsed = parseDescribed(d, await store.readBytes(d.digest, MAX_MANIFEST_SIZE))
    const kids = childrenOf(parsed)
    for (let i = kids.length - 1; i >= 0; i--) {
      const c = kids[i] as Child
      stack.push({ node: { descriptor: c.descriptor, parent: d.digest, role: c.role, present: true }, optional: optional(c), referrer: describeRef(node) })
    }
  }
}

/** Every blob of an image, as walkImage yields them. */
export async function collectImage (store: BlobReader, root: Descriptor, options?: WalkOptions): Promise<WalkedDescriptor[]> {
  const out: WalkedDescriptor[] = []
  for await (const w of walkImage(store, root, options)) out.push(w)
  return out
}

/**
 * The digests a stored blob refers to, for GC and quota marking: the children
 * of a manifest or index, none for anything else (layers, configs, blobs too
 * large to be a manifest, bytes that do not parse as one).
 */
export function blobChildren (store: BlobReader): (digest: Digest) => Promise<Digest[]> {
  return async (digest) => {
    const { size } = await store.info(digest)
    if (size > MAX_MANIFEST_SIZE) return []
    let parsed
    try {
      parsed = parseManifestBytes(await store.readBytes(digest, MAX_MANIFEST_SIZE))
    } catch {
      return []
    }
    return childrenOf(parsed).map(c => c.descriptor.digest)
  }
}
