/**
 * The builder's public types.
 */
import type { ContentStore, Digest, RefStore } from '../content/index.ts'
import type { KilnDb } from '../db/index.ts'
import type { ImageConfig } from '../oci/index.ts'
import type { SourceLoc, StepOp, BuildPlan } from '../recipe/ir.ts'
import type { OutputStream, Sandbox, SandboxDriverName } from './sandbox/types.ts'
import type { RemoteStepCache } from '../cache/index.ts'
import type { IgnoreRules } from './context/index.ts'
import type { Logger } from 'pino'

export interface BuilderInit {
  store: ContentStore
  db: KilnDb
  refs: RefStore
  /** Default: the driver probing picks (bwrap, unshare, proot), or `sandboxDriver`. */
  sandbox?: Sandbox
  /** Use this driver (probed on first use); default the first that works. Ignored when `sandbox` is given. */
  sandboxDriver?: SandboxDriverName
  /** Where the result of probing the drivers is kept between processes (see sandbox/probe.ts); default: probe in every process. */
  probeCacheDir?: string
  logger?: Logger
  /** Where unpacked bases, step snapshots and temp dirs live (e.g. DATA_DIR/build). */
  workDir: string
  /** Asked for a filesystem step the local step cache lacks (e.g. the federation's signed cache records, src/cache). */
  remoteCache?: RemoteStepCache
  /** A Sylabs-library-API service for `library://` bases (Apptainer `Bootstrap: library`); unset: they are refused. */
  libraryUrl?: string
}

/** `kiln build --network=MODE`. */
export type NetworkMode = 'default' | 'none'

export type BuildEvent =
  /** `text`: the instruction as a person reads it (what the image history says), possibly several lines. */
  | { type: 'step', index: number, total: number, stage: number, text: string, source: SourceLoc }
  | { type: 'warning', message: string }
  /** `index`: the step whose output it is (steps of several stages may run at once), when known. */
  | { type: 'output', stream: OutputStream, chunk: Uint8Array, index?: number }
  | { type: 'step-done', index: number, cached: boolean, durationMs: number }
  | { type: 'done' }

/**
 * Bytes moving in a long part of a build, for a progress display: a base
 * image's blob pulled or imported into the store (`base`), a layer
 * compressed into the store (`layer`, whose size is known only when done).
 * Reports of one `id` come in order, the last with `done`.
 */
export interface BuildProgress {
  what: 'base' | 'layer'
  /** A blob digest (base) or the step's cache key (layer). */
  id: string
  /** What people read: the base's name, the step's instruction. */
  label: string
  /** Bytes stored so far (compressed, for a layer). */
  bytes: number
  total?: number
  done: boolean
}

export interface BuildOptions {
  /** Build context: COPY sources are resolved in it and may not leave it. */
  contextDir: string
  /**
   * What COPY/ADD may not see of the context (readContextIgnore in
   * src/builder/context: the `.dockerignore` rules). Default: nothing
   * excluded, right for a context tar, which was filtered when packed.
   */
  contextIgnore?: IgnoreRules
  /** os/arch[/variant]; default the host's. */
  platform?: string
  /**
   * The build's network mode, Docker's and buildah's model: `default` gives
   * every RUN (every Apptainer %post) the node's network unless the step
   * says `RUN --network=none`; `none` (the default) runs every step in a
   * private network namespace with loopback only (docs/building.md).
   */
  network?: NetworkMode
  /**
   * Secrets by id for `RUN --mount=type=secret` (`kiln build --secret`):
   * given to the steps that mount them, never logged, stored, put in a layer
   * or hashed into a step key (docs/security.md).
   */
  secrets?: Readonly<Record<string, Uint8Array>>
  /** Seconds; every timestamp in the image is clamped to it. Default 0 (see docs/building.md). */
  sourceDateEpoch?: number
  /**
   * Registry bases (`docker://`, or a name not in the local store): `missing`
   * (default) asks the registry only for what the store lacks, `always` asks
   * every time (a moved tag is followed).
   */
  pull?: 'missing' | 'always'
  /**
   * Labels added to the image config's Labels after the last step (`kiln
   * build --label`, as docker build's): they win over the recipe's LABELs.
   */
  labels?: Readonly<Record<string, string>>
  /** Annotations of the image manifest (`kiln build --annotation`, as buildx's). */
  annotations?: Readonly<Record<string, string>>
  /**
   * Whose RUN cache mounts the steps use (`RUN --mount=type=cache`): builds
   * of different scopes never share a cache dir, nor a step-cache entry of a
   * step that mounted one, since such a step's result depends on the dir's
   * content, which one scope could prepare for another. Default '' (the
   * node's own builds); an agent gives each requester its own scope.
   */
  cacheScope?: string
  /** Ignore the step cache (entries are still written). */
  noCache?: boolean
  /**
   * Compression of the layers the build writes (default gzip; an output's
   * `compression=`). Any other than gzip is part of every step key, so a
   * layer written one way never answers a build that asks for the other.
   */
  layerCompression?: 'gzip' | 'zstd'
  stepTimeoutMs?: number
  /**
   * Stages built at once at most, among those that do not read from each
   * other (./stage-schedule.ts); default the node's cores
   * (os.availableParallelism). 1 builds them one after another.
   */
  parallelStages?: number
  signal?: AbortSignal
  onEvent?: (event: BuildEvent) => void
  onProgress?: (progress: BuildProgress) => void
}

export interface StepReport {
  index: number
  stage: number
  op: StepOp
  canonical: string
  cached: boolean
  durationMs: number
}

export interface BuildResult {
  /** The image manifest, in the store. */
  descriptor: { mediaType: string, digest: Digest, size: number }
  digest: Digest
  config: ImageConfig
  steps: StepReport[]
  /** Bytes of manifest, config and layers. */
  size: number
  durationMs: number
  /** The sandbox driver that ran RUN steps, when any ran. */
  sandboxDriver?: string
}

/** Builds plans into images in the store. `build` may run concurrently for different plans. */
export interface Builder {
  build: (plan: BuildPlan, options: BuildOptions) => Promise<BuildResult>
  /**
   * The environment (config `Env`) of each image base of `plan`, by the
   * stage's position in `plan.stages`, resolved as `build` resolves them
   * (pulling when `options.pull` allows): what a Dockerfile's `ENV
   * PATH=/opt/bin:$PATH` sees of its base. Absent in builders that cannot say.
   */
  baseEnvs?: (plan: BuildPlan, options: BuildOptions) => Promise<Map<number, Record<string, string>>>
}
