import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'
import { collectList, keyValueFlags, networkAndContext, secretFlags, writeIidFile } from '../flags.ts'
import { createProgress, progressOption } from '../progress.ts'
import type { ProgressMode } from '../progress.ts'
import { onBuild, onExport } from '../progress-sources.ts'

interface BuildCliOptions {
  file?: string
  tag?: string[]
  platform: string[]
  label: string[]
  annotation: string[]
  quiet?: boolean
  iidfile?: string
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
  jobs?: string
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
    .argument('[context]', 'build context directory (COPY sources are resolved in it, less what .dockerignore or RECIPE.dockerignore excludes), or - for a tar of it on stdin (or a recipe alone, with an empty context)')
    .option('-f, --file <recipe>', 'recipe file (default: CONTEXT/Dockerfile, else CONTEXT/Singularity.def); - reads it from stdin; with context -, a path inside the tar')
    .option('-t, --tag <repo:tag>', 'name the result in the local store (repeatable); with several platforms it names the index', collect, [])
    .option('--platform <os/arch>', 'target platform (default: this node\'s); several (comma-separated or repeated) build each and store an OCI index of them', collectList, [])
    .option('--build-arg <k[=v]>', 'set a build argument (repeatable); KEY alone takes its value from the environment (unset there: not set)', collect, [])
    .option('--label <k=v>', 'add a label to the image config (repeatable); wins over the recipe\'s LABEL', collect, [])
    .option('--annotation <k=v>', 'add an annotation to the image manifest (repeatable); index:K=V annotates the index of a multi-platform build', collect, [])
    .option('-q, --quiet', 'print nothing but the image digest (the manifest\'s, or the index\'s with several platforms)')
    .option('--iidfile <file>', 'write the image digest to this file')
    .option('--target <stage>', 'build this stage (name or index) instead of the last')
    .option('-o, --output <spec>', 'also export the image (repeatable): type=oci-layout|oci-archive|docker-archive|registry|static|s3|exec|sif|local|tar,KEY=VALUE,... or oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF], docker://HOST/REPO:TAG, sif:FILE, or a plain DIR (type=local: the root filesystem as files) (docs/exporters.md)', collect, [])
    .option('--cache-to <spec>', 'export the step cache after the build (repeatable): any --output value plus mode=min|max (default max), or type=registry,ref=HOST/REPO:TAG', collect, [])
    .option('--cache-from <ref>', 'import a step cache before the build (repeatable): oci:DIR[:TAG], oci-archive:FILE[:TAG], docker://HOST/REPO:TAG, type=registry,ref=REF or type=local,src=DIR', collect, [])
    .option('--network [mode]', 'default: every RUN (Apptainer %post) gets the network unless it says RUN --network=none; none (the default): no step does. The bare flag means default')
    .option('--secret <id=ID,src=FILE|env=VAR>', 'a secret for RUN --mount=type=secret (repeatable); never logged, stored, put in a layer or in a cache key', collect, [])
    .option('--sandbox <driver>', 'sandbox driver for RUN: auto, bwrap, unshare or proot (default $KILN_SANDBOX, else build.sandbox in kiln.yaml, else auto)')
    .option('--no-cache', 'run every step even when the step cache has it')
    .option('--jobs <n>', 'build at most N stages at once, among those that do not read from each other (default: the number of cores; 1: one after another)')
    .option('--pull', 'ask the registry for registry bases even when the local store has them (and make Bootstrap: debootstrap bases afresh)')
    .option('--notest', 'Apptainer: do not run %test at the end of the build')
    .option('--dry-run', 'parse the recipe and print the build plan without building')
    .option('--json', 'with --dry-run: the plan as JSON; otherwise a JSON summary')
    .addOption(progressOption())
    .addHelpText('after', '\nExamples:\n  kiln build -t app:1 .\n  kiln build -f Singularity.def --build-arg VERSION=2 -t tools:2 ./ctx\n  kiln build --dry-run --json .\n  kiln build --platform linux/amd64,linux/arm64 -t app:1 --label org.opencontainers.image.version=1 .\n  tar -C ctx -c . | kiln build -q --iidfile app.iid -\n  kiln build -f - --output type=local,dest=./rootfs . < Dockerfile\n  kiln build --output type=oci-layout,dest=./layout,name=app:1,compression=zstd .\n  kiln build -t hpc/app:1 --output type=static,dest=/srv/registry --output oci-archive:app.tar .\n  kiln build --cache-from docker://registry.example.org/cache/app:bc --cache-to type=registry,ref=registry.example.org/cache/app:bc,mode=max .')
    .action(async (contextWord: string | undefined, opts: BuildCliOptions) => {
      const { network, contextArg } = networkAndContext(opts.network, contextWord)
      const { basename } = await import('node:path')
      const { readRecipeInput } = await import('../recipe-input.ts')
      let parallelStages: number | undefined
      if (opts.jobs !== undefined) {
        parallelStages = Number(opts.jobs)
        if (!Number.isInteger(parallelStages) || parallelStages < 1 || parallelStages > 64) throw new CliError(`--jobs ${opts.jobs}: expected an integer from 1 to 64`, { exitCode: EXIT.usage })
      }
      const { parseTagName } = await import('../local-image.ts')
      // Refused before the build: a bad name found after it wastes the build (and the gateway would refuse it).
      const tags = await Promise.all((opts.tag ?? []).map(parseTagName))
      if (opts.quiet === true && opts.json === true) throw new CliError('--quiet and --json both say what to print', { exitCode: EXIT.usage, hint: 'give one: -q prints the digest alone, --json a summary' })
      const platforms = await platformFlags(opts.platform)
      const labels = keyValueFlags('--label', opts.label)
      const { manifest: annotations, index: indexAnnotations } = annotationFlags(opts.annotation, platforms.length)
      const { contextDir, recipePath, text, buildArgs, cleanup } = await readRecipeInput(contextArg, opts.file, opts.buildArg)
      ctx.onClose(cleanup)
      const { planRecipe, readContextIgnore } = await import('../../builder/index.ts')
      const request = {
        recipe: { text, file: basename(recipePath) },
        buildArgs,
        ...(opts.target !== undefined ? { target: opts.target } : {}),
        ...(platforms.length === 1 ? { platform: platforms[0] as string } : {}),
        ...(opts.notest === true ? { skipTest: true } : {})
      }
      if (opts.dryRun === true) {
        if (platforms.length > 1) throw new CliError('--dry-run shows the plan of one platform', { exitCode: EXIT.usage, hint: `give one --platform, e.g. --platform ${platforms[0] as string}` })
        const plan = planRecipe(request)
        if (opts.json === true) { ctx.out.json(plan); return }
        for (const stage of plan.stages) {
          ctx.out.line(`stage ${stage.index}${stage.name !== undefined ? ` (${stage.name})` : ''} from ${stage.base.kind === 'image' ? stage.base.ref : stage.base.kind === 'stage' ? `stage ${stage.base.stage}` : stage.base.kind === 'debootstrap' ? `debootstrap ${stage.base.suite} ${stage.base.mirror}` : 'scratch'}`)
          for (const step of stage.steps) ctx.out.line(`  ${String(step.source.line).padStart(4)}  ${step.canonical}`)
        }
        return
      }
      const { parseOutputSpec, parseCacheToSpec, parseCacheFromSpec, layerCompressionOf } = await import('../../export/index.ts')
      const outputs = opts.output.map(parseOutputSpec)
      layerCompressionOf(outputs) // outputs that disagree are refused before the build
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
      const progress = await createProgress(opts.quiet === true ? 'quiet' : opts.progress, { json: opts.json === true })
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
          ...(parallelStages !== undefined ? { parallelStages } : {}),
          ...(opts.pull === true ? { pull: 'always' as const } : {}),
          ...(config.build.sourceDateEpoch !== undefined ? { sourceDateEpoch: config.build.sourceDateEpoch } : {}),
          ...(config.build.libraryUrl !== undefined ? { libraryUrl: config.build.libraryUrl } : {}),
          cacheFrom,
          tags,
          outputs,
          cacheTo,
          platforms,
          labels,
          annotations,
          indexAnnotations,
          signal: ac.signal,
          onPlatform: (platform, i, total) => { if (opts.json !== true && opts.quiet !== true) progress.print(`platform ${platform} (${i + 1}/${total})`) },
          onCacheFrom: (ref, outcome) => {
            if ('error' in outcome) process.stderr.write(`kiln: warning: --cache-from ${ref}: ${outcome.error.message}\n`)
            else if (opts.json !== true && opts.quiet !== true) ctx.out.line(`cache from ${ref}: ${outcome.added} steps added, ${outcome.kept} known`)
          },
          onProgress: onBuild(progress),
          // Outputs are written one after another: one reporting means those before it are done.
          onExportProgress: (i, p) => { for (const e of exports.slice(0, i)) e.done(); exports[i]?.onProgress(p) },
          onLine: (line) => {
            if (opts.json === true || opts.quiet === true) return
            if (line.kind === 'step' || line.kind === 'cached') progress.print(line.text)
            else progress.print(`${line.kind === 'warning' ? 'kiln: ' : ''}${line.text}`, process.stderr)
          }
        })
        for (const e of exports) e.done()
      } catch (err) {
        throw await foreignPlatformError(err, platforms)
      } finally {
        progress.close()
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
      const { result, root } = built
      if (opts.iidfile !== undefined) await writeIidFile(opts.iidfile, root.digest)
      if (opts.quiet === true) { ctx.out.line(root.digest); return }
      const exported = built.exported.map((r, i) => ({ output: opts.output[i] as string, ...r }))
      const cacheExported = built.cacheExported.map((r, i) => ({ output: opts.cacheTo[i] as string, ...r }))
      const results = built.platforms.map(p => p.result)
      const steps = results.flatMap(r => r.steps)
      const cached = steps.filter(s => s.cached).length
      const durationMs = results.reduce((n, r) => n + r.durationMs, 0)
      const summary = {
        digest: root.digest,
        mediaType: root.mediaType,
        size: results.reduce((n, r) => n + r.size, 0),
        steps: steps.length,
        cachedSteps: cached,
        durationMs: Math.round(durationMs),
        sandboxDriver: result.sandboxDriver ?? null,
        platforms: built.platforms.map(p => ({ platform: p.platform, digest: p.result.digest })),
        stepReports: built.platforms.flatMap(p => p.result.steps.map(s => ({ platform: p.platform, index: s.index, stage: s.stage, op: s.op, cached: s.cached, durationMs: Math.round(s.durationMs) }))),
        tags: tags.map(t => `${t.repository}:${t.tag}`),
        outputs: exported,
        cacheExports: cacheExported
      }
      if (opts.json === true) { ctx.out.json(summary); return }
      const { formatBytes, formatDuration } = await import('../output.ts')
      ctx.out.line(`built ${root.digest}${built.platforms.length > 1 ? ` (an index of ${built.platforms.length} platforms)` : ''}`)
      if (built.platforms.length > 1) for (const p of built.platforms) ctx.out.line(`  ${p.platform} ${p.result.digest}`)
      ctx.out.line(`  size ${formatBytes(summary.size)}, ${steps.length} steps (${cached} cached), ${formatDuration(durationMs)}, sandbox ${result.sandboxDriver ?? 'not used'}`)
      for (const t of summary.tags) ctx.out.line(`  tagged ${t}`)
      for (const e of exported) ctx.out.line(`  exported to ${e.description}`)
      for (const e of cacheExported) ctx.out.line(`  cache (${e.records} steps) exported to ${e.description}`)
    })
}

/** `--platform` values, normalized and without repeats; none: the host's (the builder's default). */
async function platformFlags (values: readonly string[]): Promise<string[]> {
  const { formatPlatform, parsePlatform } = await import('../../oci/index.ts')
  try {
    return [...new Set(values.map(p => formatPlatform(parsePlatform(p))))]
  } catch (err) {
    throw new CliError(`--platform: ${(err as Error).message}`, { exitCode: EXIT.usage })
  }
}

/** `--annotation [manifest:|index:]K=V`, as buildx spells the level; index: needs an index (several platforms). */
function annotationFlags (values: readonly string[], platforms: number): { manifest: Record<string, string>, index: Record<string, string> } {
  const manifest: string[] = []
  const index: string[] = []
  for (const v of values) {
    const level = /^([a-z-]+)(?:\[[^\]]*\])?:/.exec(v)?.[1]
    if (level !== undefined && level !== 'manifest' && level !== 'index' && /-descriptor$/.test(level)) {
      throw new CliError(`--annotation ${v}: the ${level} level is not supported`, { exitCode: EXIT.usage, hint: 'annotate the manifest (K=V or manifest:K=V) or the index of a multi-platform build (index:K=V)' })
    }
    const m = /^(manifest|index):(.*)$/s.exec(v)
    if (m?.[1] === 'index') index.push(m[2] as string)
    else manifest.push(m?.[2] ?? v)
  }
  if (index.length > 0 && platforms < 2) throw new CliError(`--annotation index:${index[0] as string}: a build of one platform makes no index`, { exitCode: EXIT.usage, hint: 'annotate the manifest (--annotation K=V), or build several --platform values' })
  return { manifest: keyValueFlags('--annotation', manifest), index: keyValueFlags('--annotation', index) }
}

/** A step this node cannot run in a build for another architecture (no emulator): say that a job (kiln submit) builds it on an agent that can. */
async function foreignPlatformError (err: unknown, platforms: readonly string[]): Promise<unknown> {
  const [{ UnsupportedStepError }, { isErrorOf }, { hostPlatform, parsePlatform }] = await Promise.all([
    import('../../builder/errors.ts'), import('../../util/error-class.ts'), import('../../oci/index.ts')
  ])
  const host = hostPlatform().architecture
  if (!isErrorOf(err, UnsupportedStepError) || !platforms.some(p => parsePlatform(p).architecture !== host)) return err
  return new CliError(err.message, { exitCode: EXIT.usage, cause: err, hint: `kiln submit --platform ${platforms.join(',')} sends the build to agents that build those platforms natively or emulated (kiln peers lists them)` })
}
