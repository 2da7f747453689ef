/**
 * The external exporter protocol, version 1 (see ./exporter.md, the
 * normative text): the JSON request kiln writes on a program's stdin, the
 * one-line JSON result the program writes on stdout, and the limits kiln
 * enforces. Schemas and limits only; no I/O.
 */
import { z } from 'zod'

// §4 limits
export const EXPORTER_PROTOCOL_VERSION = 1
/** Default time a program may run before kiln kills it (`timeout=` overrides, in seconds). */
export const EXPORTER_DEFAULT_TIMEOUT_MS = 10 * 60 * 1000
/** After SIGTERM on timeout or abort, kiln waits this long before SIGKILL. */
export const EXPORTER_KILL_GRACE_MS = 5_000
/** Stdout beyond this fails the export: it is for the result line, not for logs. */
export const EXPORTER_MAX_STDOUT_BYTES = 64 * 1024
/** The end of stderr kiln keeps to report a failure. */
export const EXPORTER_STDERR_TAIL_BYTES = 8 * 1024
/** Most tags and option entries in a request. */
export const EXPORTER_MAX_TAGS = 64
export const EXPORTER_MAX_OPTIONS = 64

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/
const Digest = z.custom<`sha256:${string}`>(v => typeof v === 'string' && DIGEST_RE.test(v), 'expected sha256:<64 hex>')
const StringMap = z.record(z.string().max(256), z.string().max(4096))

/** §2 an OCI descriptor, as in the image spec. */
export const ExporterDescriptorSchema = z.looseObject({
  mediaType: z.string().min(1).max(255),
  digest: Digest,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  annotations: StringMap.optional(),
  platform: z.looseObject({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).optional()
})

/** §2 the request, one JSON document on the program's stdin (then stdin is closed). */
export const ExporterRequestSchema = z.strictObject({
  version: z.literal(EXPORTER_PROTOCOL_VERSION),
  /** Absolute path of the OCI image layout; also the program's working directory. */
  layout: z.string().min(1),
  /** The image: a manifest or an index. index.json lists it once per tag. */
  root: ExporterDescriptorSchema,
  /** Names the user gave the image (`-t` / `name=`), possibly none. */
  tags: z.array(z.string().max(512)).max(EXPORTER_MAX_TAGS),
  /** The single-platform manifests: the root itself, or the entries of the root index. */
  manifests: z.array(ExporterDescriptorSchema),
  /** The root's annotations (empty object when none). */
  annotations: StringMap,
  /** `opt.KEY=VALUE` fields of the `--output`, keys without `opt.`. */
  options: StringMap.refine(o => Object.keys(o).length <= EXPORTER_MAX_OPTIONS, `at most ${EXPORTER_MAX_OPTIONS} options`)
})
export type ExporterRequest = z.infer<typeof ExporterRequestSchema>

/** §3 the result: the last non-empty line of stdout. */
export const ExporterResultSchema = z.discriminatedUnion('ok', [
  z.looseObject({
    ok: z.literal(true),
    /** Where the image went, for people and logs (a URL, a path, an id). */
    location: z.string().min(1).max(4096),
    /** The digest a consumer will see, when it differs from the root's (e.g. after conversion). */
    digest: Digest.optional()
  }),
  z.looseObject({
    ok: z.literal(false),
    error: z.string().max(4096)
  })
])
export type ExporterResult = z.infer<typeof ExporterResultSchema>

// §7 the build cache artifact
/** artifactType of the manifest and mediaType of its config blob. */
export const BUILD_CACHE_MEDIA_TYPE = 'application/vnd.kiln.cache.v1+json'
export const BUILD_CACHE_VERSION = 1
/** Most step records in one cache artifact. */
export const BUILD_CACHE_MAX_RECORDS = 100_000
/** Largest cache config blob read. */
export const BUILD_CACHE_MAX_CONFIG_BYTES = 32 * 1024 * 1024

/** One step: its cache key and the layer it produced. */
export const BuildCacheRecordSchema = z.strictObject({
  key: Digest,
  layer: z.strictObject({ mediaType: z.string().min(1).max(255), digest: Digest, size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER) }),
  diffId: Digest
})
export type BuildCacheRecord = z.infer<typeof BuildCacheRecordSchema>

/** §7 the config blob of a cache artifact. */
export const BuildCacheConfigSchema = z.strictObject({
  version: z.literal(BUILD_CACHE_VERSION),
  mode: z.enum(['min', 'max']),
  records: z.array(BuildCacheRecordSchema).max(BUILD_CACHE_MAX_RECORDS)
})
export type BuildCacheConfig = z.infer<typeof BuildCacheConfigSchema>
