/**
 * The real JobBuilder: parses the job's recipe (src/recipe), runs the
 * rootless builder (src/builder) for the awarded platform, announces the
 * image's blobs to the network, and reports what the result and its
 * provenance need (manifest, blobs, base digests, sandbox, cached steps).
 *
 * Bases a job may name: images in this agent's store (by name or digest),
 * earlier stages and `scratch`. Paths on the agent's disk (`oci:DIR`,
 * archives) are refused: a requester has no business reading them.
 */
import type { ContentStore, Digest, RefStore } from '../../src/content/index.ts'
import type { KilnDb } from '../../src/db/index.ts'
import { createBuilder } from '../../src/builder/index.ts'
import type { Builder, Sandbox } from '../../src/builder/index.ts'
import type { RemoteStepCache } from '../../src/cache/index.ts'
import { MAX_MANIFEST_SIZE, parseImageRef, parseManifestBytes } from '../../src/oci/index.ts'
import { parseRecipe } from '../../src/recipe/index.ts'
import type { BuildPlan } from '../../src/recipe/index.ts'
import { JobRefusedError } from './errors.ts'
import type { BuildOutput, JobBuilder } from './index.ts'

export interface RecipeBuilderInit {
  store: ContentStore
  db: KilnDb
  refs: RefStore
  /** The builder's work dir (DATA_DIR/build). */
  workDir: string
  /** Announces a blob on the network; failures are logged, not fatal (the requester is told who holds it). */
  provide?: (digest: Digest) => Promise<void>
  sandbox?: Sandbox
  /** Steps other trusted builders already built (the network build cache); consulted before running a step. */
  remoteCache?: RemoteStepCache
  /** Seconds; default the builder's (0). */
  sourceDateEpoch?: number
  stepTimeoutMs?: number
  log?: (level: 'info' | 'warn', message: string) => void
}


/** Base refs of a plan that must come from the local store; throws JobRefusedError for any other source. */
export function localBaseRefs (plan: BuildPlan): string[] {
  const out: string[] = []
  for (const stage of plan.stages) {
    if (stage.base.kind !== 'image') continue
    const ref = parseImageRef(stage.base.ref)
    if (ref.transport !== 'local' && ref.transport !== 'digest') {
      throw new JobRefusedError(`base ${stage.base.ref}: jobs may start from images in the agent's store or scratch only`)
    }
    out.push(stage.base.ref)
  }
  return out
}

export function createRecipeBuilder (init: RecipeBuilderInit): JobBuilder {
  const builder: Builder = createBuilder({
    store: init.store, db: init.db, refs: init.refs, workDir: init.workDir,
    ...(init.sandbox !== undefined ? { sandbox: init.sandbox } : {}),
    ...(init.remoteCache !== undefined ? { remoteCache: init.remoteCache } : {})
  })
  const log = init.log ?? (() => {})

  const baseDigest = (text: string): Digest | undefined => {
    const ref = parseImageRef(text)
    if (ref.transport === 'digest') return ref.digest
    if (ref.transport !== 'local') return undefined
    if (ref.digest !== undefined) return ref.digest
    return init.refs.find(ref.repository, ref.tag ?? 'latest')?.digest
  }

  return {
    async build (request, options): Promise<BuildOutput> {
      const plan = parseRecipe(request.recipe.text, {
        filename: request.recipe.file,
        frontend: request.recipe.kind,
        buildArgs: request.buildArgs,
        platform: request.platform,
        ...(request.target !== undefined ? { target: request.target } : {})
      })
      const bases = localBaseRefs(plan)
      const decoder = new TextDecoder()
      let partial = ''
      const result = await builder.build(plan, {
        contextDir: request.contextDir,
        platform: request.platform,
        network: request.network ? 'default' : 'none',
        signal: options.signal,
        ...(init.sourceDateEpoch !== undefined ? { sourceDateEpoch: init.sourceDateEpoch } : {}),
        ...(init.stepTimeoutMs !== undefined ? { stepTimeoutMs: init.stepTimeoutMs } : {}),
        onEvent: (e) => {
          if (e.type === 'step') {
            options.onLog(`[${e.index}/${e.total}] ${e.text}`)
            options.onProgress(e.index, e.total, e.text)
          } else if (e.type === 'output') {
            const lines = (partial + decoder.decode(e.chunk, { stream: true })).split('\n')
            partial = lines.pop() ?? ''
            for (const l of lines) options.onLog(l)
          } else if (e.type === 'step-done') {
            if (partial !== '') { options.onLog(partial); partial = '' }
            if (e.cached) options.onLog('  cached')
          }
        }
      })
      if (partial !== '') options.onLog(partial)
      const manifest = parseManifestBytes(await init.store.readBytes(result.digest, MAX_MANIFEST_SIZE))
      if (manifest.kind !== 'manifest') throw new Error(`the builder produced ${manifest.mediaType}, not an image manifest`)
      const blobs = [manifest.value.config, ...manifest.value.layers].map(d => ({ digest: d.digest, size: d.size }))
      const cachedSteps = result.steps.filter(s => s.cached).length
      // Announce in the background: the requester fetches from this agent directly, and a slow DHT must not hold the result.
      if (init.provide !== undefined) {
        const provide = init.provide
        void Promise.all([result.digest, ...blobs.map(b => b.digest)].map(async d => { await provide(d) }))
          .catch((err: Error) => { log('warn', `announcing ${result.digest} failed: ${err.message}`) })
      }
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
