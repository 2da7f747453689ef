/**
 * The local build runner: the gateway's build extension (src/gateway's
 * BuildRunner) over this node's rootless builder. The context tar is
 * unpacked safely into a temp dir under the work dir, and `runRecipe`
 * (src/builder) builds the job's platform (others than this host's fail
 * unless emulated), its log lines going to the build's log. What the build
 * reads and writes is leased while it runs, as for `kiln build`.
 */
import type { LocalStore } from '../content/index.ts'
import type { BuildRunner } from '../gateway/index.ts'
import type { NodeSandbox } from './sandbox.ts'

export async function createLocalBuildRunner (store: LocalStore, workDir: string, nodeSandbox: NodeSandbox): Promise<BuildRunner> {
  const [{ mkdtemp, rm }, { join }, { createBuilder, runRecipe }, { extractLayer }, { createBuildLeases, createLeases }, { mkdirPrivate }, { scratchPrefix }] = await Promise.all([
    import('node:fs/promises'), import('node:path'), import('../builder/index.ts'), import('../oci/index.ts'), import('../content/index.ts'), import('../util/fs.ts'), import('../util/owner.ts')
  ])
  const building = createBuildLeases(store.content, createLeases(store.db))
  const builder = createBuilder({
    store: building.store, db: store.db, refs: store.refs, workDir, probeCacheDir: workDir,
    ...(nodeSandbox.sandbox === undefined ? {} : { sandbox: nodeSandbox.sandbox })
  })
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
