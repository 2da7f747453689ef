/**
 * Exporters: write an image from the content store to somewhere else, named
 * by an `--output` value (see ./output-spec.ts for the syntax).
 *
 * Terms:
 * - image: a root descriptor (manifest or index) and the store that holds it
 *   and everything below it.
 * - target: a parsed `--output`, one of the OutputSpec types.
 * - names: what the image is called at the target (`name=` keys, else the
 *   build's `-t` tags). Their form depends on the type: a layout ref name,
 *   `REPO:TAG`, or `HOST/REPO:TAG`.
 *
 * Types: oci-layout, oci-archive, docker-archive (`docker load` format),
 * registry (push), static (a directory any static HTTP server can serve as a
 * read-only registry), s3 (the same site in an S3-compatible bucket), exec
 * (any program speaking protocols/exporter.md), kiln (the peer network;
 * wired in by whoever owns a transfer) and sif (Apptainer's image format,
 * one platform, made by src/sif), local and tar (the root filesystem as
 * files or as a tar, not an image).
 *
 * Build caches are src/cache's: it packs the step cache as an OCI artifact
 * that any exporter here writes; parseCacheToSpec reads `--cache-to`, an
 * output spec plus `mode`.
 *
 * @example
 * ```ts
 * const exporter = createExporter()
 * const r = await exporter.export({ store, root }, parseOutputSpec('type=static,dest=./site'), { tags: ['hpc/app:1.0'] })
 * console.log(r.description, r.digest)
 * ```
 */
import type { BlobReader, Digest } from '../content/index.ts'
import type { DockerName, Descriptor } from '../oci/index.ts'
import type { RegistryClient } from '../registry/index.ts'
import { KilnExporter } from './exporter.ts'
import type { ObjectStore } from './object-store.ts'
import type { OutputSpec, OutputType, S3Spec } from './output-spec.ts'

export * from './errors.ts'
export { parseOutputSpec, formatOutputSpec, layerCompressionOf } from './output-spec.ts'
export type { OutputCompression, OutputSpec, OutputType, OciLayoutSpec, OciArchiveSpec, DockerArchiveSpec, RegistrySpec, StaticSiteSpec, S3Spec, ExecSpec, KilnSpec, SifSpec, LocalSpec, TarSpec } from './output-spec.ts'
export type { ObjectStore, ObjectInfo } from './object-store.ts'
export { nginxConfig, htaccessFiles } from './site-config.ts'
export type { SiteState } from './site-state.ts'
export { parseCacheToSpec, parseCacheFromSpec, DEFAULT_CACHE_TAG } from './cache-spec.ts'
export type { CacheToSpec } from './cache-spec.ts'

/** What to export: a manifest or index and the store holding it and all it references. */
export interface ExportImage {
  store: BlobReader
  root: Descriptor
}

export interface ExportProgress {
  type: OutputType
  /**
   * What just finished: a blob or manifest written, or the external program
   * started; `written`: the bytes written so far to a layout or archive, in `size`.
   */
  event: 'blob' | 'manifest' | 'tag' | 'exec' | 'written'
  digest?: Digest
  /** Bytes of the blob or manifest, when there is one. */
  size?: number
}

export interface ExportOptions {
  /** Names to use when the target gives none (the build's `-t`). */
  tags?: readonly string[]
  onProgress?: (progress: ExportProgress) => void
  /** The Apptainer definition the image was built from: type=sif stores it as the SIF's definition object. */
  definition?: string
  /** Seconds; the times in a SIF. Default $SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number
  signal?: AbortSignal
}

export interface ExportResult {
  /** Where the image went, for people: `oci:./out:latest`, `docker://host/repo:tag@sha256:...`. */
  description: string
  /**
   * The digest a consumer will see: the root's for layout, archive, registry,
   * site, s3, local and tar; the image ID (config digest) for docker-archive; what the
   * program reports (else the root's) for exec; the single-platform
   * manifest's that the SIF holds for sif.
   */
  digest: Digest
}

export interface Exporter {
  /**
   * Writes the image to the target. Idempotent for file-based targets: blobs
   * already present are not rewritten; files that change are replaced
   * atomically. Throws ExporterUnavailableError, ExportUnsupportedError,
   * ExecExporter*Error, or the error of the store / registry / object store.
   */
  export: (image: ExportImage, target: OutputSpec, options?: ExportOptions) => Promise<ExportResult>
}

/** The peer-network output, implemented by the transfer module's owner. */
export interface PeerProvider {
  /** Announces every blob of the image on the DHT and keeps serving them. */
  provideImage: (image: ExportImage, options: { signal?: AbortSignal }) => Promise<{ description: string }>
}

export interface ExporterComponents {
  /** Registry client for a name; default createRegistryClient (auth from the usual auth files). */
  registry?: (name: DockerName, insecure: boolean) => RegistryClient
  /** Object store for an s3 target; default the AWS SDK v3 client. */
  objectStore?: (spec: S3Spec) => ObjectStore
  /** For type=kiln; absent means ExporterUnavailableError. */
  network?: PeerProvider
  /** Environment for S3 credentials and the exec program; default process.env. */
  env?: NodeJS.ProcessEnv
  /** Where the exec and sif exporters make their working directories; default os.tmpdir(). */
  tmpDir?: string
}

export function createExporter (components: ExporterComponents = {}): Exporter {
  return new KilnExporter(components)
}
