/**
 * Builds on this node with its rootless builder, for the node's own user:
 * `runLocalBuild` is `kiln build` (step caches imported, the recipe run,
 * the result named and exported), `createLocalBuildRunner` the gateway's
 * build extension (src/gateway's BuildRunner: the context tar unpacked
 * safely into a temp dir, the job's platform built; others than this host's
 * fail unless emulated). Both run the recipe with `runRecipe` (src/builder)
 * and lease what a build reads and writes while it runs, so that a `kiln gc`
 * or quota run in another process never takes a layer of a build in
 * progress, however long it runs.
 */
import type { Builder, BuildProgress, BuildResult, IgnoreRules, NetworkMode, RecipeLogLine, RecipeRequest, SandboxDriverName } from '../builder/index.ts'
import type { BuildLeases, Ingester, LocalStore } from '../content/index.ts'
import type { Descriptor, Platform } from '../oci/index.ts'
import type { BuildPlan } from '../recipe/index.ts'
import type { CacheToSpec, ExportProgress, OutputSpec } from '../export/index.ts'
import type { BuildRunner } from '../gateway/index.ts'
import type { NodeSandbox } from './sandbox.ts'

/** The sandbox a local builder uses: one probed already, or a driver to probe on first use; neither: auto. */
type LocalSandbox = NodeSandbox | { driver: SandboxDriverName }

/** A builder on the data dir's store, work dir `<dataDir>/build`, whose store leases what each held build touches. */
async function localBuilder (store: LocalStore, sandbox: LocalSandbox, libraryUrl?: string): Promise<{ builder: Builder, building: BuildLeases, workDir: string }> {
  const [{ join }, { createBuilder }, { createBuildLeases, createLeases }] = await Promise.all([
    import('node:path'), import('../builder/index.ts'), import('../content/index.ts')
  ])
  const workDir = join(store.root, 'build')
  const building = createBuildLeases(store.content, createLeases(store.db))
  const builder = createBuilder({
    store: building.store, db: store.db, refs: store.refs, workDir, probeCacheDir: workDir,
    ...(libraryUrl !== undefined ? { libraryUrl } : {}),
    ...('driver' in sandbox ? { sandboxDriver: sandbox.driver } : sandbox.sandbox !== undefined ? { sandbox: sandbox.sandbox } : {})
  })
  return { builder, building, workDir }
}

export interface LocalBuildInit {
  store: LocalStore
  request: RecipeRequest
  contextDir: string
  /** The context's `.dockerignore` rules (readContextIgnore, src/builder). */
  contextIgnore: IgnoreRules
  /** Default: the driver probing picks. */
  sandboxDriver?: SandboxDriverName
  /** The build's network mode (BuildOptions.network, src/builder). */
  network: NetworkMode
  /** `kiln build --secret` values by id, for RUN --mount=type=secret; handed to the builder only. */
  secrets?: Readonly<Record<string, Uint8Array>>
  noCache: boolean
  /** Stages built at once at most (BuildOptions.parallelStages); default the cores. */
  parallelStages?: number
  pull?: 'missing' | 'always'
  /** Seconds (build.sourceDateEpoch, src/config); default the builder's 0. */
  sourceDateEpoch?: number
  /** Where `Bootstrap: library` bases come from (build.libraryUrl, src/config). */
  libraryUrl?: string
  /** Step caches imported before the build (parseCacheFromSpec values). */
  cacheFrom: string[]
  /** Names the result gets in the store, inside the build's lease. */
  tags: Array<{ repository: string, tag: string }>
  outputs: OutputSpec[]
  cacheTo: CacheToSpec[]
  /**
   * Several platforms (os/arch[/variant]) to build one after the other, into
   * an OCI index that is then named and exported; with fewer than two, the
   * request's platform (default the host's) is built into one manifest.
   */
  platforms?: readonly string[]
  /** Added to each image config's Labels (`kiln build --label`). */
  labels?: Readonly<Record<string, string>>
  /** Annotations of each image manifest (`kiln build --annotation`). */
  annotations?: Readonly<Record<string, string>>
  /** Annotations of the index, when several platforms make one (`--annotation index:K=V`). */
  indexAnnotations?: Readonly<Record<string, string>>
  signal?: AbortSignal
  /** Called before each platform's build when several are built. */
  onPlatform?: (platform: string, index: number, total: number) => void
  onLine?: (line: RecipeLogLine) => void
  /** Bases pulled or imported, layers compressed (BuildOptions.onProgress, src/builder). */
  onProgress?: (progress: BuildProgress) => void
  /** The export to `outputs[output]` going on (src/export's ExportOptions.onProgress). */
  onExportProgress?: (output: number, progress: ExportProgress) => void
  /** A cache imported; a cache that cannot be read is `error` and only makes the build slower, as with buildx. */
  onCacheFrom?: (ref: string, outcome: { added: number, kept: number } | { error: Error }) => void
}

export interface LocalBuild {
  /** What was named and exported: the image manifest, or the index of the platforms built. */
  root: Descriptor
  /** The build of each platform, in the order given. */
  platforms: Array<{ platform: string, result: BuildResult }>
  /** The first (with one platform, the only) build. */
  result: BuildResult
  /** One per output, in order. */
  exported: Array<{ description: string, digest: string }>
  /** One per cache-to, in order. */
  cacheExported: Array<{ description: string, records: number }>
}

export async function runLocalBuild (init: LocalBuildInit): Promise<LocalBuild> {
  const [{ join }, { runRecipe }, exp, cache, { formatPlatform }] = await Promise.all([import('node:path'), import('../builder/index.ts'), import('../export/index.ts'), import('../cache/index.ts'), import('../oci/index.ts')])
  const { store } = init
  const { builder, building, workDir } = await localBuilder(store, init.sandboxDriver !== undefined ? { driver: init.sandboxDriver } : {}, init.libraryUrl)
  for (const ref of init.cacheFrom) {
    try {
      const root = await cache.fetchCacheImage(store.content, ref)
      init.onCacheFrom?.(ref, await cache.importCacheImage(store.db, store.content, root, { snapshotsDir: join(workDir, 'snapshots') }))
    } catch (err) {
      init.onCacheFrom?.(ref, { error: err as Error })
    }
  }
  const platforms = init.platforms !== undefined && init.platforms.length > 1 ? init.platforms : [init.request.platform]
  if (platforms.length > 1) {
    const { checkPlanRuns, planRecipe } = await import('../builder/index.ts')
    for (const platform of platforms as string[]) await checkPlanRuns(planRecipe({ ...init.request, platform }), platform)
  }
  const { root, built, plan } = await building.hold(async () => {
    const built: LocalBuild['platforms'] = []
    let plan
    for (const [i, platform] of platforms.entries()) {
      if (platforms.length > 1) init.onPlatform?.(platform as string, i, platforms.length)
      const run = await runRecipe(builder, { ...init.request, ...(platform !== undefined ? { platform } : {}) }, {
        contextDir: init.contextDir,
        contextIgnore: init.contextIgnore,
        network: init.network,
        ...(init.secrets !== undefined ? { secrets: init.secrets } : {}),
        noCache: init.noCache,
        layerCompression: exp.layerCompressionOf(init.outputs),
        ...(init.parallelStages !== undefined ? { parallelStages: init.parallelStages } : {}),
        ...(init.pull !== undefined ? { pull: init.pull } : {}),
        ...(init.sourceDateEpoch !== undefined ? { sourceDateEpoch: init.sourceDateEpoch } : {}),
        ...(init.labels !== undefined ? { labels: init.labels } : {}),
        ...(init.annotations !== undefined ? { annotations: init.annotations } : {}),
        ...(init.signal !== undefined ? { signal: init.signal } : {}),
        ...(init.onLine !== undefined ? { onLine: init.onLine } : {}),
        ...(init.onProgress !== undefined ? { onProgress: init.onProgress } : {})
      })
      plan = run.plan
      built.push({ platform: formatPlatform(platformOf(run.result)), result: run.result })
    }
    const root = built.length === 1 ? (built[0] as LocalBuild['platforms'][number]).result.descriptor : await storeIndex(building.store, built, init.indexAnnotations)
    for (const t of init.tags) store.refs.set(t.repository, t.tag, root)
    return { root, built, plan: plan as BuildPlan }
  })
  const result = (built[0] as LocalBuild['platforms'][number]).result
  const exported: LocalBuild['exported'] = []
  const cacheExported: LocalBuild['cacheExported'] = []
  if (init.outputs.length > 0 || init.cacheTo.length > 0) {
    const exporter = exp.createExporter()
    const signal = init.signal !== undefined ? { signal: init.signal } : {}
    for (const [i, target] of init.outputs.entries()) {
      const onExportProgress = init.onExportProgress
      exported.push(await exporter.export({ store: store.content, root }, target, {
        ...(onExportProgress !== undefined ? { onProgress: (p: ExportProgress) => { onExportProgress(i, p) } } : {}),
        tags: init.tags.map(t => `${t.repository}:${t.tag}`),
        // A SIF keeps the definition it was built from, as Apptainer's do.
        ...(plan.frontend === 'apptainer' ? { definition: init.request.recipe.text } : {}),
        ...(init.sourceDateEpoch !== undefined ? { sourceDateEpoch: init.sourceDateEpoch } : {}),
        ...signal
      }))
    }
    for (const spec of init.cacheTo) {
      const image = await cache.createCacheImage(store.db, store.content, { mode: spec.mode, image: root })
      const r = await exporter.export({ store: store.content, root: image.descriptor }, spec.output, signal)
      cacheExported.push({ description: r.description, records: image.records })
    }
  }
  return { root, platforms: built, result, exported, cacheExported }
}

function platformOf (result: BuildResult): Platform {
  const c = result.config
  return { os: c.os, architecture: c.architecture, ...(c.variant !== undefined ? { variant: c.variant } : {}) }
}

/** Stores the OCI index of the platforms built, each entry with its platform; returns its descriptor. */
async function storeIndex (store: Ingester, built: LocalBuild['platforms'], annotations?: Readonly<Record<string, string>>): Promise<Descriptor> {
  const { OCI_INDEX, encodeJson } = await import('../oci/index.ts')
  const bytes = encodeJson({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: built.map(({ result }) => ({ ...result.descriptor, platform: platformOf(result) })),
    ...(annotations !== undefined && Object.keys(annotations).length > 0 ? { annotations } : {})
  })
  const info = await store.ingest(bytes)
  return { mediaType: OCI_INDEX, digest: info.digest, size: info.size }
}

export async function createLocalBuildRunner (store: LocalStore, nodeSandbox: NodeSandbox): Promise<BuildRunner> {
  const [{ mkdtemp, rm }, { join }, { runRecipe }, { extractLayer }, { mkdirPrivate }, { scratchPrefix }] = await Promise.all([
    import('node:fs/promises'), import('node:path'), import('../builder/index.ts'), import('../oci/index.ts'), import('../util/fs.ts'), import('../util/owner.ts')
  ])
  const { builder, building, workDir } = await localBuilder(store, nodeSandbox)
  return {
    name: 'local',
    ...(nodeSandbox.othersRefused !== undefined ? { refuses: nodeSandbox.othersRefused } : {}),
    run: async (job, io) => {
      await mkdirPrivate(workDir)
      const contextDir = await mkdtemp(join(workDir, scratchPrefix('gateway-context-')))
      try {
        if (job.context !== undefined) await extractLayer(store.content.read(job.context), contextDir, { signal: io.signal })
        const { result } = await building.hold(async () => await runRecipe(builder, {
          recipe: { text: job.recipe.text, file: job.recipe.kind === 'apptainer' ? 'Singularity.def' : 'Dockerfile', kind: job.recipe.kind },
          buildArgs: job.buildArgs,
          platform: job.platform,
          ...(job.target === undefined ? {} : { target: job.target })
        }, {
          contextDir,
          // Whoever may push to the repository posts its builds: their cache mounts are the repository's, never the node user's own.
          cacheScope: `gateway:${job.repository}`,
          signal: io.signal,
          onLine: (line) => {
            if (line.kind === 'step') io.step(line.index, line.total)
            io.log(line.text)
          }
        }))
        return result.descriptor
      } finally {
        await rm(contextDir, { recursive: true, force: true })
      }
    }
  }
}
