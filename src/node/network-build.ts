/**
 * The gateway's build extension on the network: `createNetworkBuildRunner`
 * builds one platform of a gateway build as a job, through the requester
 * session `kiln submit` uses (src/requester): the recipe parsed for the
 * platform, its bases pinned, the context blob leased and announced, the job
 * signed and awarded, and the builder's offers, award, progress and log
 * written to the build's log. The result's blobs are fetched into the store
 * by the session; the gateway records and tags the image as for a local
 * build. `chooseBuildRunner` picks, per platform, between the local builder
 * and the network by the `gateway.builds` setting (docs/configuration.md).
 *
 * @example
 * ```ts
 * const requester = await attachRequester({ store, log, network: { node, transfer, privateKey, transport }, trust })
 * const network = createNetworkBuildRunner({ session: requester.session, store: store.content })
 * const runner = chooseBuildRunner({ mode: 'auto', local, network, localPlatforms: ['linux/amd64'] })
 * ```
 */
import type { Digest, ContentStore } from '../content/index.ts'
import type { BuildRunner } from '../gateway/index.ts'
import type { JobEvent, RequesterSession } from '../requester/index.ts'

/** `gateway.builds`: where the gateway's build extension builds. */
export type GatewayBuildMode = 'local' | 'network' | 'auto'

/** An empty tar (two zero blocks): the context of a build that was given none. */
const EMPTY_TAR = new Uint8Array(1024)

export interface NetworkBuildRunnerInit {
  session: RequesterSession
  store: ContentStore
  /** How long to collect offers; default the requester's. */
  offerWindowMs?: number
}

/** One line of the build log for a job event, naming the builder (a peer id) where there is one. */
export function jobEventLine (e: JobEvent): string | undefined {
  switch (e.kind) {
    case 'published': return `job ${e.jobId} published`
    case 'offer': return `offer from ${e.builder} (queue ${e.queue})`
    case 'decline': return `declined by ${e.builder}: ${e.reason}`
    case 'refused': return `${e.of === 'result' ? 'result' : 'offer'} from ${e.builder} refused: ${e.reason}`
    case 'award': return `awarded to ${e.builder}`
    case 'lost': return `lost ${e.builder}${e.reason !== undefined ? `: ${e.reason}` : ''}; awarding again`
    case 'republished': return 'nobody left to award it to: job published again'
    case 'progress': return `${e.builder}: ${e.state}${e.detail !== undefined ? ` ${e.detail}` : ''}`
    case 'fetching': return `fetching ${e.digest} from ${e.builder}`
    case 'result': return `result ${e.digest} from ${e.builder}`
    case 'failed': return `failed: ${e.error}`
    case 'log': return undefined
  }
}

export function createNetworkBuildRunner (init: NetworkBuildRunnerInit): BuildRunner {
  const { session, store } = init
  return {
    name: 'network',
    run: async (job, io) => {
      const { parseRecipe } = await import('../recipe/index.ts')
      const file = job.recipe.kind === 'apptainer' ? 'Singularity.def' : 'Dockerfile'
      // Parsed here too, as kiln submit does: a broken recipe fails before anyone is asked to build it, and the plan names the bases to pin.
      const plan = parseRecipe(job.recipe.text, { filename: file, frontend: job.recipe.kind, buildArgs: job.buildArgs, platform: job.platform, ...(job.target !== undefined ? { target: job.target } : {}) })
      let context: { digest: Digest, size: number }
      if (job.context !== undefined) {
        context = { digest: job.context, size: (await store.info(job.context)).size }
      } else {
        const info = await store.ingest(EMPTY_TAR)
        context = { digest: info.digest, size: info.size }
      }
      session.shareStored(context.digest)
      const bases = await session.pinBases([{ platform: job.platform, plan }], { signal: io.signal })
      for (const b of bases.pins) io.log(`base ${b.ref} pinned to ${b.digest}`)
      for (const b of bases.unpinned) io.log(`base ${b.ref} not pinned, the builder must hold it: ${b.reason}`)
      const result = await session.requester.submit({
        recipe: { kind: job.recipe.kind, file, text: job.recipe.text },
        context,
        platforms: [job.platform],
        bases: bases.pins,
        buildArgs: job.buildArgs,
        ...(job.target !== undefined ? { target: job.target } : {}),
        ...(init.offerWindowMs !== undefined ? { offerWindowMs: init.offerWindowMs } : {}),
        signal: io.signal,
        onEvent: (e) => {
          if (e.kind === 'log') {
            for (const line of e.lines) io.log(`${e.builder}: ${line}`)
            return
          }
          const line = jobEventLine(e)
          if (line !== undefined) io.log(line)
        }
      })
      const p = result.platforms[0]
      if (p === undefined) throw new Error(`job ${result.jobId} came back without a result for ${job.platform}`)
      return { digest: p.digest as Digest, mediaType: p.mediaType, size: p.size }
    }
  }
}

export interface BuildRunnerChoice {
  mode: GatewayBuildMode
  /** The local builder (`kiln up`); absent: this process does not build. */
  local?: BuildRunner
  /** The network runner; absent: the gateway is not on a network. */
  network?: BuildRunner
  /** Platforms the local builder builds, natively or emulated. */
  localPlatforms: readonly string[]
}

/**
 * The gateway's runner for a mode: `local` the local builder only,
 * `network` every platform as a job, `auto` the local builder for the
 * platforms it builds (unless it refuses gateway builds) and the network for
 * the others. Undefined when nothing can build.
 */
export function chooseBuildRunner (choice: BuildRunnerChoice): BuildRunner | undefined {
  const { mode, network } = choice
  const local = choice.local
  if (mode === 'local' || network === undefined) return local
  if (mode === 'network' || local === undefined || local.refuses !== undefined) return network
  const picks = (platform: string): BuildRunner => choice.localPlatforms.includes(platform) ? local : network
  return {
    name: 'auto',
    nameFor: platform => picks(platform).name,
    run: async (job, io) => await picks(job.platform).run(job, io)
  }
}
