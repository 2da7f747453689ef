/**
 * What the parts of one build share (docs/architecture.md, "src/builder"):
 * the build's *scope* (store, options, platform, work dirs, events) and the
 * *state* of each stage while it is built: its config, its layers so far,
 * and its filesystem as the snapshotter keeps it (overlay: snapshot dirs
 * stacked on the unpacked base; scan: one plain root dir).
 */
import type { ContentStore, Digest } from '../content/index.ts'
import type { CachedLayer, UrlCache } from '../cache/index.ts'
import type { ImageConfig, Platform } from '../oci/index.ts'
import type { RunStep, Stage, Step } from '../recipe/ir.ts'
import type { BaseResolverInit, ResolvedBase } from './base.ts'
import type { BuildEvent, BuildOptions } from './types.ts'

export type Config = NonNullable<ImageConfig['config']>
export type LayerDescriptor = CachedLayer['descriptor']

/** Where a build keeps unpacked bases, step snapshots, temp dirs and RUN cache mounts (./executor/mounts.ts), under the builder's work dir. */
export interface WorkDirs { rootfs: string, snapshots: string, tmp: string, cacheMounts: string }

export interface StageBase {
  /** Manifest and config the stage starts from. */
  resolved: ResolvedBase
  /** The image whose unpacked rootfs is the bottom layer (for a stage base: that stage's own base). */
  bottom: ResolvedBase
  key: string
  uppers: string[]
  /** Scan mode, a stage built on a stage: that stage's root dir, holding its first `rootLayers` layers. */
  root?: string
  rootLayers?: number
}

export interface StageState {
  stage: Stage
  base: StageBase
  key: string
  config: Config
  diffIds: Digest[]
  layers: LayerDescriptor[]
  history: NonNullable<ImageConfig['history']>
  /** Step snapshot dirs, top-most first (the base rootfs comes after, lazily). */
  uppers: string[]
  /** Scan mode: the stage's plain root dir, the base with every layer so far applied. */
  root?: string
  /** Report index of the step the stage is running (its output events carry it: stages may run at once). */
  step?: number
}

export interface BuildScope {
  store: ContentStore
  /** What `ADD <url>` last downloaded, with the URL's validator (src/cache/url-cache.ts). */
  urlCache: UrlCache
  options: BuildOptions
  platform: Platform
  /** SOURCE_DATE_EPOCH in seconds, and as the RFC 3339 time the image records. */
  epoch: number
  created: string
  dirs: WorkDirs
  /** Stages built so far, by index (COPY --from and FROM <stage> read them). */
  states: Map<number, StageState>
  resolver: BaseResolverInit
  emit: (event: BuildEvent) => void
  /** The instruction as a person reads it (what the image history says). */
  textOf: (step: Step) => string
  /** Whether a RUN gets the network: the build's mode is `default` and the step does not say `--network=none`. */
  networkFor: (step: RunStep) => boolean
}
