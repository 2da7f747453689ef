import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'
import { networkAndContext, secretFlags } from '../flags.ts'

interface BuildCliOptions {
  file?: string
  tag?: string[]
  platform?: string
  buildArg: string[]
  target?: string
  output: string[]
  cacheTo: string[]
  cacheFrom: string[]
  network?: string | boolean
  secret: string[]
  dryRun?: boolean
  json?: boolean
  noCache?: boolean
  cache?: boolean
  pull?: boolean
  sandbox?: string
}

const SANDBOX_CHOICES = ['auto', 'bwrap', 'unshare', 'proot'] as const
type SandboxChoice = typeof SANDBOX_CHOICES[number]
const isSandboxChoice = (v: string): v is SandboxChoice => (SANDBOX_CHOICES as readonly string[]).includes(v)

const collect = (value: string, previous: string[]): string[] => [...previous, value]

function splitTag (text: string): { repository: string, tag: string } {
  const slash = text.lastIndexOf('/')
  const colon = text.lastIndexOf(':')
  if (colon > slash) return { repository: text.slice(0, colon), tag: text.slice(colon + 1) }
  return { repository: text, tag: 'latest' }
}

export function register (program: Command, ctx: CliContext): void {
  program.command('build')
    .description('build an image from a Dockerfile or Apptainer definition, rootlessly, into the local store')
    .argument('[context]', 'build context directory (COPY sources are resolved in it, less what .dockerignore or RECIPE.dockerignore excludes)')
    .option('-f, --file <recipe>', 'recipe file (default: CONTEXT/Dockerfile, else CONTEXT/Singularity.def)')
    .option('-t, --tag <repo:tag>', 'name the result in the local store (repeatable)', collect, [])
    .option('--platform <os/arch>', 'target platform (default: this node\'s)')
    .option('--build-arg <k=v>', 'set a build argument (repeatable)', collect, [])
    .option('--target <stage>', 'build this stage (name or index) instead of the last')
    .option('-o, --output <spec>', 'also export the image (repeatable): type=oci-layout|oci-archive|docker-archive|registry|static|s3|exec,KEY=VALUE,... or oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF], docker://HOST/REPO:TAG (docs/exporters.md)', collect, [])
    .option('--cache-to <spec>', 'export the step cache after the build (repeatable): any --output value plus mode=min|max (default max), or type=registry,ref=HOST/REPO:TAG', collect, [])
    .option('--cache-from <ref>', 'import a step cache before the build (repeatable): oci:DIR[:TAG], oci-archive:FILE[:TAG], docker://HOST/REPO:TAG, type=registry,ref=REF or type=local,src=DIR', collect, [])
    .option('--network [mode]', 'default: every RUN (Apptainer %post) gets the network unless it says RUN --network=none; none (the default): no step does. The bare flag means default')
    .option('--secret <id=ID,src=FILE|env=VAR>', 'a secret for RUN --mount=type=secret (repeatable); never logged, stored, put in a layer or in a cache key', collect, [])
    .option('--sandbox <driver>', 'sandbox driver for RUN: auto, bwrap, unshare or proot (default $KILN_SANDBOX, else build.sandbox in kiln.yaml, else auto)')
    .option('--no-cache', 'run every step even when the step cache has it')
    .option('--pull', 'ask the registry for registry bases even when the local store has them')
    .option('--dry-run', 'parse the recipe and print the build plan without building')
    .option('--json', 'with --dry-run: the plan as JSON; otherwise a JSON summary')
    .addHelpText('after', '\nExamples:\n  kiln build -t app:1 .\n  kiln build -f Singularity.def --build-arg VERSION=2 -t tools:2 ./ctx\n  kiln build --dry-run --json .\n  kiln build -t hpc/app:1 --output type=static,dest=/srv/registry --output oci-archive:app.tar .\n  kiln build --cache-from docker://registry.example.org/cache/app:bc --cache-to type=registry,ref=registry.example.org/cache/app:bc,mode=max .')
    .action(async (contextWord: string | undefined, opts: BuildCliOptions) => {
      const { network, contextArg } = networkAndContext(opts.network, contextWord)
      const { join, basename } = await import('node:path')
      const { readRecipeInput } = await import('../recipe-input.ts')
      const { contextDir, recipePath, text, buildArgs } = await readRecipeInput(contextArg, opts.file, opts.buildArg)
      const { parseRecipe } = await import('../../recipe/index.ts')
      const plan = parseRecipe(text, { filename: basename(recipePath), buildArgs, ...(opts.target !== undefined ? { target: opts.target } : {}), ...(opts.platform !== undefined ? { platform: opts.platform } : {}) })
      if (opts.dryRun === true) {
        if (opts.json === true) { ctx.out.json(plan); return }
        for (const stage of plan.stages) {
          ctx.out.line(`stage ${stage.index}${stage.name !== undefined ? ` (${stage.name})` : ''} from ${stage.base.kind === 'image' ? stage.base.ref : stage.base.kind === 'stage' ? `stage ${stage.base.stage}` : 'scratch'}`)
          for (const step of stage.steps) ctx.out.line(`  ${String(step.source.line).padStart(4)}  ${step.canonical}`)
        }
        return
      }
      const { parseOutputSpec, parseCacheToSpec, parseCacheFromSpec } = await import('../../export/index.ts')
      const outputs = opts.output.map(parseOutputSpec)
      const cacheTo = opts.cacheTo.map(parseCacheToSpec)
      const cacheFrom = opts.cacheFrom.map(parseCacheFromSpec)
      const secrets = await secretFlags(opts.secret)
      const sandboxChoice = opts.sandbox ?? process.env.KILN_SANDBOX ?? (await ctx.config()).build.sandbox
      if (!isSandboxChoice(sandboxChoice)) throw new CliError(`--sandbox ${sandboxChoice}: expected one of ${SANDBOX_CHOICES.join(', ')}`, { exitCode: EXIT.usage })
      const { createBuilder, instructionSummary, readContextIgnore } = await import('../../builder/index.ts')
      const contextIgnore = await readContextIgnore(contextDir, { recipeFile: recipePath })
      const store = await ctx.store()
      const workDir = join(await ctx.dataDir(), 'build')
      const { sweepAtStart } = await import('../sweep-at-start.ts')
      await sweepAtStart(await ctx.dataDir())
      // What the build reads and writes is leased until its names are set: a `kiln gc` or quota run in
      // another process must not take a layer of a build still in progress, however long it runs.
      const { createBuildLeases, createLeases } = await import('../../content/index.ts')
      const building = createBuildLeases(store.content, createLeases(store.db))
      const builder = createBuilder({
        store: building.store, db: store.db, refs: store.refs, workDir, probeCacheDir: workDir,
        ...(sandboxChoice !== 'auto' ? { sandboxDriver: sandboxChoice } : {})
      })
      for (const ref of cacheFrom) {
        const { fetchCacheImage, importCacheImage } = await import('../../cache/index.ts')
        try {
          const root = await fetchCacheImage(store.content, ref)
          const r = await importCacheImage(store.db, store.content, root, { snapshotsDir: join(workDir, 'snapshots') })
          if (opts.json !== true) ctx.out.line(`cache from ${ref}: ${r.added} steps added, ${r.kept} known`)
        } catch (err) {
          // A cache that cannot be read only makes the build slower, as with buildx.
          process.stderr.write(`kiln: warning: --cache-from ${ref}: ${(err as Error).message}\n`)
        }
      }
      const ac = new AbortController()
      const onSignal = (): void => { ac.abort(new CliError('build interrupted', { exitCode: EXIT.failure })) }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      const epochEnv = process.env.SOURCE_DATE_EPOCH
      const sourceDateEpoch = epochEnv !== undefined && /^\d+$/.test(epochEnv) ? Number(epochEnv) : undefined
      const tags = (opts.tag ?? []).map(splitTag)
      let result
      try {
        result = await building.hold(async () => await builder.build(plan, {
          contextDir,
          contextIgnore,
          ...(opts.platform !== undefined ? { platform: opts.platform } : {}),
          network,
          secrets,
          noCache: opts.cache === false,
          ...(opts.pull === true ? { pull: 'always' as const } : {}),
          ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
          signal: ac.signal,
          onEvent: (e) => {
            if (opts.json === true) return
            if (e.type === 'step') ctx.out.line(`[${e.index}/${e.total}] ${instructionSummary(e.text)}`)
            else if (e.type === 'warning') process.stderr.write(`kiln: warning: ${e.message}\n`)
            else if (e.type === 'output') process.stderr.write(e.chunk)
            else if (e.type === 'step-done' && e.cached) ctx.out.line('  cached')
          }
        }).then(r => {
          for (const t of tags) store.refs.set(t.repository, t.tag, r.descriptor)
          return r
        }))
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
      const exported: Array<{ output: string, description: string, digest: string }> = []
      const cacheExported: Array<{ output: string, description: string, records: number }> = []
      if (outputs.length > 0 || cacheTo.length > 0) {
        const [{ createExporter }, { createCacheImage }] = await Promise.all([import('../../export/index.ts'), import('../../cache/index.ts')])
        const exporter = createExporter()
        for (const [i, target] of outputs.entries()) {
          const r = await exporter.export({ store: store.content, root: result.descriptor }, target, { tags: tags.map(t => `${t.repository}:${t.tag}`) })
          exported.push({ output: opts.output[i] as string, ...r })
        }
        for (const [i, spec] of cacheTo.entries()) {
          const cache = await createCacheImage(store.db, store.content, { mode: spec.mode, image: result.descriptor })
          const r = await exporter.export({ store: store.content, root: cache.descriptor }, spec.output)
          cacheExported.push({ output: opts.cacheTo[i] as string, description: r.description, records: cache.records })
        }
      }
      const cached = result.steps.filter(s => s.cached).length
      const summary = {
        digest: result.digest,
        size: result.size,
        steps: result.steps.length,
        cachedSteps: cached,
        durationMs: Math.round(result.durationMs),
        sandboxDriver: result.sandboxDriver ?? null,
        stepReports: result.steps.map(s => ({ index: s.index, stage: s.stage, op: s.op, cached: s.cached, durationMs: Math.round(s.durationMs) })),
        tags: tags.map(t => `${t.repository}:${t.tag}`),
        outputs: exported,
        cacheExports: cacheExported
      }
      if (opts.json === true) { ctx.out.json(summary); return }
      const { formatBytes, formatDuration } = await import('../output.ts')
      ctx.out.line(`built ${result.digest}`)
      ctx.out.line(`  size ${formatBytes(result.size)}, ${result.steps.length} steps (${cached} cached), ${formatDuration(result.durationMs)}, sandbox ${result.sandboxDriver ?? 'not used'}`)
      for (const t of summary.tags) ctx.out.line(`  tagged ${t}`)
      for (const e of exported) ctx.out.line(`  exported to ${e.description}`)
      for (const e of cacheExported) ctx.out.line(`  cache (${e.records} steps) exported to ${e.description}`)
    })
}
