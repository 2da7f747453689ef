/**
 * The real JobBuilder: runs the job's recipe for the awarded platform with
 * `runRecipe` (src/builder) and reports what the result and its provenance
 * need (manifest, blobs, base digests, sandbox, cached steps). The agent
 * (agent/runtime.ts) announces the image before it sends the result.
 *
 * Bases a job may name: the images it pins (protocols/job.md §3.1), built
 * from their pinned digests and never resolved by name here; images in this
 * agent's store (by name or digest), earlier stages and `scratch`. Other
 * refs are refused: registries are reached only through a pin, and paths
 * on the agent's disk (`oci:DIR`, archives) are none of a requester's
 * business.
 */
import type { BasePin } from '../../protocols/job.ts'
import type { ContentStore, Digest, RefStore } from '../../src/content/index.ts'
import type { KilnDb } from '../../src/db/index.ts'
import { createBuilder, runRecipe } from '../../src/builder/index.ts'
import type { Builder, Sandbox } from '../../src/builder/index.ts'
import type { RemoteStepCache } from '../../src/cache/index.ts'
import { MAX_MANIFEST_SIZE, parseImageRef, parseManifestBytes } from '../../src/oci/index.ts'
import { imageRefsOf, mapImageRefs } from '../../src/recipe/index.ts'
import type { BuildPlan } from '../../src/recipe/index.ts'
import { JobRefusedError } from './errors.ts'
import type { BuildOutput, JobBuilder } from './index.ts'

export interface RecipeBuilderInit {
  store: ContentStore
  db: KilnDb
  refs: RefStore
  /** The builder's work dir (DATA_DIR/build). */
  workDir: string
  sandbox?: Sandbox
  /** Steps other trusted builders already built (the network build cache); consulted before running a step. */
  remoteCache?: RemoteStepCache
  /** Seconds; default the builder's (0). */
  sourceDateEpoch?: number
  stepTimeoutMs?: number
  /** Stages of one job built at once at most (BuildOptions.parallelStages); default the builder's (the cores). */
  parallelStages?: number
}


/**
 * The plan with every pinned image ref replaced by its pinned digest, so
 * that the builder never resolves those names; an image ref the pins do
 * not name must be in the local store (by name or digest), else
 * JobRefusedError.
 */
export function pinPlan (plan: BuildPlan, pins: readonly BasePin[] = []): BuildPlan {
  for (const stage of plan.stages) {
    // The bootstrap tool runs package scripts on the host, outside any sandbox: never for a peer's job.
    if (stage.base.kind === 'debootstrap') throw new JobRefusedError(`Bootstrap: debootstrap (${stage.base.suite}): jobs may start from pinned images, images in the agent's store, or scratch only`)
  }
  const pinned = new Map(pins.map(p => [p.ref, p.digest]))
  return mapImageRefs(plan, ref => {
    const digest = pinned.get(ref)
    if (digest !== undefined) return digest
    // SIF bases (sif:, oras://, library://) are no containers-transports reference: refused like any remote source.
    if (/^(sif:|oras:\/\/|library:\/\/)/.test(ref)) throw new JobRefusedError(`base ${ref}: SIF bases are not pinned in jobs; jobs may start from pinned images, images in the agent's store, or scratch only`)
    const parsed = parseImageRef(ref)
    if (parsed.transport !== 'local' && parsed.transport !== 'digest') {
      throw new JobRefusedError(`base ${ref}: the job does not pin it, and unpinned jobs may start from images in the agent's store or scratch only`)
    }
    return ref
  })
}

export function createRecipeBuilder (init: RecipeBuilderInit): JobBuilder {
  const builder: Builder = createBuilder({
    store: init.store, db: init.db, refs: init.refs, workDir: init.workDir,
    ...(init.sandbox !== undefined ? { sandbox: init.sandbox } : {}),
    ...(init.remoteCache !== undefined ? { remoteCache: init.remoteCache } : {})
  })

  const baseDigest = (text: string): Digest | undefined => {
    const ref = parseImageRef(text)
    if (ref.transport === 'digest') return ref.digest
    if (ref.transport !== 'local') return undefined
    if (ref.digest !== undefined) return ref.digest
    return init.refs.find(ref.repository, ref.tag ?? 'latest')?.digest
  }

  return {
    async build (request, options): Promise<BuildOutput> {
      let bases: string[] = []
      const { result } = await runRecipe(builder, {
        recipe: request.recipe,
        buildArgs: request.buildArgs,
        platform: request.platform,
        ...(request.target !== undefined ? { target: request.target } : {})
      }, {
        contextDir: request.contextDir,
        network: request.network ? 'default' : 'none',
        ...(request.secrets !== undefined ? { secrets: request.secrets } : {}),
        // Cache mounts are per requester: one requester's job cannot plant files for, or read files of, another's.
        ...(request.requester !== undefined ? { cacheScope: `peer:${request.requester}` } : {}),
        signal: options.signal,
        ...(init.sourceDateEpoch !== undefined ? { sourceDateEpoch: init.sourceDateEpoch } : {}),
        ...(init.stepTimeoutMs !== undefined ? { stepTimeoutMs: init.stepTimeoutMs } : {}),
        ...(init.parallelStages !== undefined ? { parallelStages: init.parallelStages } : {}),
        admit: (plan) => {
          const pinned = pinPlan(plan, request.bases)
          bases = imageRefsOf(pinned)
          return pinned
        },
        onLine: (line) => {
          options.onLog(line.text)
          if (line.kind === 'step') options.onProgress(line.index, line.total, line.instruction)
        }
      })
      const manifest = parseManifestBytes(await init.store.readBytes(result.digest, MAX_MANIFEST_SIZE))
      if (manifest.kind !== 'manifest') throw new Error(`the builder produced ${manifest.mediaType}, not an image manifest`)
      const blobs = [manifest.value.config, ...manifest.value.layers].map(d => ({ digest: d.digest, size: d.size }))
      const cachedSteps = result.steps.filter(s => s.cached).length
      return {
        digest: result.digest,
        mediaType: result.descriptor.mediaType,
        size: result.descriptor.size,
        blobs,
        baseDigests: [...new Set(bases.map(baseDigest).filter((d): d is Digest => d !== undefined))],
        ...(result.sandboxDriver !== undefined ? { sandbox: result.sandboxDriver } : {}),
        cachedSteps,
        steps: result.steps.length
      }
    }
  }
}
