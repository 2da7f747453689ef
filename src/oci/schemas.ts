/**
 * The OCI image model as zod schemas: descriptors, manifests (OCI and Docker
 * schema 2), indexes / manifest lists, and image configs.
 *
 * Objects are loose: unknown fields survive parsing. kiln never re-serializes
 * a manifest it did not write; the bytes are kept as they came, because a
 * digest is over bytes. Parse to read, keep the bytes to store and serve.
 */
import { z } from 'zod'
import { isDigest } from '../content/index.ts'
import type { Digest } from '../content/index.ts'
import { MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE } from './constants.ts'
import { ConfigInvalidError, ManifestInvalidError, ManifestTooLargeError } from './errors.ts'
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, isIndex, isManifest } from './media-types.ts'

export const DigestSchema = z.custom<Digest>(v => isDigest(v), { message: 'invalid digest: expected sha256:<64 lowercase hex characters>' })

const StringMap = z.record(z.string(), z.string())

export const PlatformSchema = z.looseObject({
  architecture: z.string().min(1),
  os: z.string().min(1),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional()
})
export type PlatformSpec = z.infer<typeof PlatformSchema>

export const DescriptorSchema = z.looseObject({
  mediaType: z.string().min(1),
  digest: DigestSchema,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  urls: z.array(z.string()).optional(),
  annotations: StringMap.optional(),
  data: z.base64().optional(),
  artifactType: z.string().optional(),
  platform: PlatformSchema.optional()
})
export type Descriptor = z.infer<typeof DescriptorSchema>

export const ImageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  subject: DescriptorSchema.optional(),
  annotations: StringMap.optional()
})
export type ImageManifest = z.infer<typeof ImageManifestSchema>

export const ImageIndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
  subject: DescriptorSchema.optional(),
  annotations: StringMap.optional()
})
export type ImageIndex = z.infer<typeof ImageIndexSchema>

const StringList = z.array(z.string()).nullable().optional()
const EmptyObjectMap = z.record(z.string(), z.looseObject({})).nullable().optional()

export const ImageConfigSchema = z.looseObject({
  created: z.string().optional(),
  author: z.string().optional(),
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  config: z.looseObject({
    User: z.string().optional(),
    ExposedPorts: EmptyObjectMap,
    Env: StringList,
    Entrypoint: StringList,
    Cmd: StringList,
    Volumes: EmptyObjectMap,
    WorkingDir: z.string().optional(),
    OnBuild: z.array(z.string()).nullable().optional(),
    Labels: StringMap.nullable().optional(),
    StopSignal: z.string().optional()
  }).nullable().optional(),
  rootfs: z.looseObject({
    type: z.literal('layers'),
    diff_ids: z.array(DigestSchema)
  }),
  history: z.array(z.looseObject({
    created: z.string().optional(),
    created_by: z.string().optional(),
    author: z.string().optional(),
    comment: z.string().optional(),
    empty_layer: z.boolean().optional()
  })).nullable().optional()
})
export type ImageConfig = z.infer<typeof ImageConfigSchema>

export type ParsedManifest =
  | { kind: 'manifest', mediaType: string, value: ImageManifest }
  | { kind: 'index', mediaType: string, value: ImageIndex }

/** Formats zod issues as `path: message; path: message`, naming where the document is wrong. */
export function describeIssues (error: z.ZodError): string {
  return error.issues.slice(0, 5).map(i => {
    const path = i.path.map(p => typeof p === 'number' ? `[${p}]` : `.${String(p)}`).join('').replace(/^\./, '')
    return `${path === '' ? '(root)' : path}: ${i.message}`
  }).join('; ') + (error.issues.length > 5 ? `; and ${error.issues.length - 5} more` : '')
}

function parseJson (bytes: Uint8Array, what: string, makeError: (m: string) => Error): unknown {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw makeError(`${what} is not valid UTF-8`)
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw makeError(`${what} is not JSON: ${(err as Error).message}`)
  }
}

function decideKind (json: Record<string, unknown>, declared: string | undefined): { kind: 'manifest' | 'index', mediaType: string } {
  const inner = typeof json.mediaType === 'string' ? json.mediaType : undefined
  if (inner !== undefined && declared !== undefined && inner !== declared) {
    throw new ManifestInvalidError(`manifest declares mediaType ${inner} but was served or referenced as ${declared}`)
  }
  const mediaType = inner ?? declared
  if (mediaType !== undefined) {
    if (isIndex(mediaType)) return { kind: 'index', mediaType }
    if (isManifest(mediaType)) return { kind: 'manifest', mediaType }
    throw new ManifestInvalidError(`mediaType ${JSON.stringify(mediaType)} is neither an image manifest nor an index`)
  }
  // OCI allows mediaType to be absent; tell the two apart by their fields, as containerd does.
  if (Array.isArray(json.manifests) && json.config === undefined) return { kind: 'index', mediaType: OCI_INDEX }
  if (json.config !== undefined && json.manifests === undefined) return { kind: 'manifest', mediaType: OCI_MANIFEST }
  throw new ManifestInvalidError('cannot tell whether this is a manifest or an index: no mediaType, and neither config nor manifests alone')
}

/**
 * Parses manifest or index bytes. `declaredMediaType` is what the descriptor
 * or Content-Type said; it must agree with the document's own mediaType.
 * Throws ManifestTooLargeError above MAX_MANIFEST_SIZE and
 * ManifestInvalidError naming what is wrong otherwise.
 */
export function parseManifestBytes (bytes: Uint8Array, declaredMediaType?: string): ParsedManifest {
  if (bytes.byteLength > MAX_MANIFEST_SIZE) throw new ManifestTooLargeError(bytes.byteLength, MAX_MANIFEST_SIZE)
  const json = parseJson(bytes, 'manifest', m => new ManifestInvalidError(m))
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new ManifestInvalidError('manifest is not a JSON object')
  const obj = json as Record<string, unknown>
  if (obj.schemaVersion !== 2) {
    throw new ManifestInvalidError(`unsupported schemaVersion ${JSON.stringify(obj.schemaVersion)}: only 2 is supported (Docker schema 1 is not)`)
  }
  const { kind, mediaType } = decideKind(obj, declaredMediaType)
  if (kind === 'index') {
    const r = ImageIndexSchema.safeParse(obj)
    if (!r.success) throw new ManifestInvalidError(`invalid image index: ${describeIssues(r.error)}`)
    return { kind, mediaType, value: r.data }
  }
  const r = ImageManifestSchema.safeParse(obj)
  if (!r.success) throw new ManifestInvalidError(`invalid image manifest: ${describeIssues(r.error)}`)
  return { kind, mediaType, value: r.data }
}

/** Parses image config bytes; throws ConfigInvalidError naming what is wrong. */
export function parseConfigBytes (bytes: Uint8Array): ImageConfig {
  if (bytes.byteLength > MAX_CONFIG_SIZE) throw new ManifestTooLargeError(bytes.byteLength, MAX_CONFIG_SIZE, 'image config')
  const json = parseJson(bytes, 'image config', m => new ConfigInvalidError(m))
  const r = ImageConfigSchema.safeParse(json)
  if (!r.success) throw new ConfigInvalidError(`invalid image config: ${describeIssues(r.error)}`)
  return r.data
}

/** Parses a standalone descriptor (e.g. from a CLI or an API body). */
export function parseDescriptor (value: unknown): Descriptor {
  const r = DescriptorSchema.safeParse(value)
  if (!r.success) throw new ManifestInvalidError(`invalid descriptor: ${describeIssues(r.error)}`)
  return r.data
}

/** True for the Docker flavours, whose documents must carry their mediaType. */
export function isDockerMediaType (mediaType: string): boolean {
  return mediaType === DOCKER_MANIFEST || mediaType === DOCKER_MANIFEST_LIST
}

/**
 * Serializes a document kiln itself creates, with stable key order as given
 * by the object literal and no whitespace. The result is what gets hashed.
 */
export function encodeJson (value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value))
}
