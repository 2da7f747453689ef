import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'
import { networkAndContext, secretFlags } from '../flags.ts'
import { createProgress, progressOption } from '../progress.ts'
import type { ProgressMode } from '../progress.ts'
import { onBuild, onExport } from '../progress-sources.ts'

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
  notest?: boolean
  progress: ProgressMode
}

const SANDBOX_CHOICES = ['auto', 'bwrap', 'unshare', 'proot'] as const
type SandboxChoice = typeof SANDBOX_CHOICES[number]
const isSandboxChoice = (v: string): v is SandboxChoice => (SANDBOX_CHOICES as readonly string[]).includes(v)

const collect = (value: string, previous: string[]): string[] => [...previous, value]

export function register (program: Command, ctx: CliContext): void {
  program.command('build')
    .description('build an image from a Dockerfile or Apptainer definition, rootlessly, into the local store')
    .argument('[context]', 'build context directory (COPY sources are resolved in it, less what .dockerignore or RECIPE.dockerignore excludes)')
    .option('-f, --file <recipe>', 'recipe file (default: CONTEXT/Dockerfile, else CONTEXT/Singularity.def)')
    .option('-t, --tag <repo:tag>', 'name the result in the local store (repeatable)', collect, [])
    .option('--platform <os/arch>', 'target platform (default: this node\'s)')
    .option('--build-arg <k=v>', 'set a build argument (repeatable)', collect, [])
    .option('--target <stage>', 'build this stage (name or index) instead of the last')
    .option('-o, --output <spec>', 'also export the image (repeatable): type=oci-layout|oci-archive|docker-archive|registry|static|s3|exec|sif,KEY=VALUE,... or oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF], docker://HOST/REPO:TAG, sif:FILE (docs/exporters.md)', collect, [])
    .option('--cache-to <spec>', 'export the step cache after the build (repeatable): any --output value plus mode=min|max (default max), or type=registry,ref=HOST/REPO:TAG', collect, [])
    .option('--cache-from <ref>', 'import a step cache before the build (repeatable): oci:DIR[:TAG], oci-archive:FILE[:TAG], docker://HOST/REPO:TAG, type=registry,ref=REF or type=local,src=DIR', collect, [])
    .option('--network [mode]', 'default: every RUN (Apptainer %post) gets the network unless it says RUN --network=none; none (the default): no step does. The bare flag means default')
    .option('--secret <id=ID,src=FILE|env=VAR>', 'a secret for RUN --mount=type=secret (repeatable); never logged, stored, put in a layer or in a cache key', collect, [])
    .option('--sandbox <driver>', 'sandbox driver for RUN: auto, bwrap, unshare or proot (default $KILN_SANDBOX, else build.sandbox in kiln.yaml, else auto)')
    .option('--no-cache', 'run every step even when the step cache has it')
    .option('--pull', 'ask the registry for registry bases even when the local store has them (and make Bootstrap: debootstrap bases afresh)')
    .option('--notest', 'Apptainer: do not run %test at the end of the build')
    .option('--dry-run', 'parse the recipe and print the build plan without building')
    .option('--json', 'with --dry-run: the plan as JSON; otherwise a JSON summary')
    .addOption(progressOption())
    .addHelpText('after', '\nExamples:\n  kiln build -t app:1 .\n  kiln build -f Singularity.def --build-arg VERSION=2 -t tools:2 ./ctx\n  kiln build --dry-run --json .\n  kiln build -t hpc/app:1 --output type=static,dest=/srv/registry --output oci-archive:app.tar .\n  kiln build --cache-from docker://registry.example.org/cache/app:bc --cache-to type=registry,ref=registry.example.org/cache/app:bc,mode=max .')
    .action(async (contextWord: string | undefined, opts: BuildCliOptions) => {
      const { network, contextArg } = networkAndContext(opts.network, contextWord)
      const { basename } = await import('node:path')
      const { readRecipeInput } = await import('../recipe-input.ts')
      const { parseTagName } = await import('../local-image.ts')
      // Refused before the build: a bad name found after it wastes the build (and the gateway would refuse it).
      const tags = await Promise.all((opts.tag ?? []).map(parseTagName))
      const { contextDir, recipePath, text, buildArgs } = await readRecipeInput(contextArg, opts.file, opts.buildArg)
      const { planRecipe, readContextIgnore } = await import('../../builder/index.ts')
      const request = {
        recipe: { text, file: basename(recipePath) },
        buildArgs,
        ...(opts.target !== undefined ? { target: opts.target } : {}),
        ...(opts.platform !== undefined ? { platform: opts.platform } : {}),
        ...(opts.notest === true ? { skipTest: true } : {})
      }
      if (opts.dryRun === true) {
        const plan = planRecipe(request)
        if (opts.json === true) { ctx.out.json(plan); return }
        for (const stage of plan.stages) {
          ctx.out.line(`stage ${stage.index}${stage.name !== undefined ? ` (${stage.name})` : ''} from ${stage.base.kind === 'image' ? stage.base.ref : stage.base.kind === 'stage' ? `stage ${stage.base.stage}` : stage.base.kind === 'debootstrap' ? `debootstrap ${stage.base.suite} ${stage.base.mirror}` : 'scratch'}`)
          for (const step of stage.steps) ctx.out.line(`  ${String(step.source.line).padStart(4)}  ${step.canonical}`)
        }
        return
      }
      const { parseOutputSpec, parseCacheToSpec, parseCacheFromSpec } = await import('../../export/index.ts')
      const outputs = opts.output.map(parseOutputSpec)
      const cacheTo = opts.cacheTo.map(parseCacheToSpec)
      const cacheFrom = opts.cacheFrom.map(parseCacheFromSpec)
      const secrets = await secretFlags(opts.secret)
      const config = await ctx.config()
      const sandboxChoice = opts.sandbox ?? config.build.sandbox
      if (!isSandboxChoice(sandboxChoice)) throw new CliError(`--sandbox ${sandboxChoice}: expected one of ${SANDBOX_CHOICES.join(', ')}`, { exitCode: EXIT.usage })
      const contextIgnore = await readContextIgnore(contextDir, { recipeFile: recipePath })
      const store = await ctx.store()
      const { sweepAtStart } = await import('../sweep-at-start.ts')
      await sweepAtStart(store.root)
      const ac = new AbortController()
      const onSignal = (): void => { ac.abort(new CliError('build interrupted', { exitCode: EXIT.failure })) }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      const { runLocalBuild } = await import('../../node/index.ts')
      const progress = await createProgress(opts.progress, { json: opts.json === true })
      ctx.onClose(progress.close)
      const exports = opts.output.map(o => onExport(progress, o))
      let built
      try {
        built = await runLocalBuild({
          store,
          request,
          contextDir,
          contextIgnore,
          ...(sandboxChoice !== 'auto' ? { sandboxDriver: sandboxChoice } : {}),
          network,
          secrets,
          noCache: opts.cache === false,
          ...(opts.pull === true ? { pull: 'always' as const } : {}),
          ...(config.build.sourceDateEpoch !== undefined ? { sourceDateEpoch: config.build.sourceDateEpoch } : {}),
          ...(config.build.libraryUrl !== undefined ? { libraryUrl: config.build.libraryUrl } : {}),
          cacheFrom,
          tags,
          outputs,
          cacheTo,
          signal: ac.signal,
          onCacheFrom: (ref, outcome) => {
            if ('error' in outcome) process.stderr.write(`kiln: warning: --cache-from ${ref}: ${outcome.error.message}\n`)
            else if (opts.json !== true) ctx.out.line(`cache from ${ref}: ${outcome.added} steps added, ${outcome.kept} known`)
          },
          onProgress: onBuild(progress),
          // Outputs are written one after another: one reporting means those before it are done.
          onExportProgress: (i, p) => { for (const e of exports.slice(0, i)) e.done(); exports[i]?.onProgress(p) },
          onLine: (line) => {
            if (opts.json === true) return
            if (line.kind === 'step' || line.kind === 'cached') progress.print(line.text)
            else progress.print(`${line.kind === 'warning' ? 'kiln: ' : ''}${line.text}`, process.stderr)
          }
        })
        for (const e of exports) e.done()
      } finally {
        progress.close()
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
      const { result } = built
      const exported = built.exported.map((r, i) => ({ output: opts.output[i] as string, ...r }))
      const cacheExported = built.cacheExported.map((r, i) => ({ output: opts.cacheTo[i] as string, ...r }))
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
