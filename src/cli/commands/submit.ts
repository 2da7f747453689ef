import type { Command } from 'commander'
import type { BuildPlan } from '../../recipe/index.ts'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'
import { durationFlag, JOB_TIMEOUT_HELP, jobTimeoutFlag, networkAndContext, secretFlags, writeIidFile } from '../flags.ts'
import { eventPrinter, jobError, summarize } from '../job-output.ts'
import { openSession } from '../services.ts'
import { createProgress, progressOption } from '../progress.ts'
import type { ProgressMode } from '../progress.ts'
import { onExport } from '../progress-sources.ts'

interface SubmitFlags {
  file?: string
  platform?: string
  tag: string[]
  require: string[]
  to: string[]
  buildArg: string[]
  target?: string
  network?: string | boolean
  secret: string[]
  verify?: string
  output: string[]
  bootstrap?: string
  listen?: string
  mdns?: boolean
  offerWindow?: string
  timeout?: string
  json?: boolean
  quiet?: boolean
  iidfile?: string
  /** Commander's form of --no-publish. */
  publish?: boolean
  progress: ProgressMode
}

const collect = (value: string, previous: string[]): string[] => [...previous, value]

function positiveInt (flag: string, text: string | undefined, max: number): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1 || n > max) throw new CliError(`${flag} ${text}: expected an integer from 1 to ${max}`, { exitCode: EXIT.usage })
  return n
}

/**
 * The secrets the job sends: those the recipe mounts (RUN
 * --mount=type=secret), checked as kiln build would at the step, but
 * before anything is signed: a required one missing is an error; one
 * given that no step mounts is left out (it goes to nobody) with a warning.
 */
async function jobSecrets (given: Record<string, Uint8Array>, plans: readonly BuildPlan[], warn: (line: string) => void): Promise<Record<string, Uint8Array> | undefined> {
  const mounted = new Map<string, boolean>()
  for (const plan of plans) {
    for (const stage of plan.stages) {
      for (const step of stage.steps) {
        if (step.op !== 'run') continue
        for (const m of step.mounts ?? []) if (m.type === 'secret') mounted.set(m.id, (mounted.get(m.id) ?? false) || m.required)
      }
    }
  }
  for (const [id, required] of mounted) {
    if (required && given[id] === undefined) throw new CliError(`RUN --mount=type=secret,id=${id}: the build has no secret '${id}'`, { exitCode: EXIT.usage, hint: `add --secret id=${id},src=FILE (or env=VARIABLE)` })
  }
  const out: Record<string, Uint8Array> = {}
  for (const [id, value] of Object.entries(given)) {
    if (mounted.has(id)) out[id] = value
    else warn(`--secret id=${id}: no RUN step of the recipe mounts it; it is not sent`)
  }
  if (Object.keys(out).length === 0) return undefined
  const { checkSecrets } = await import('../../jobs/index.ts')
  try { checkSecrets(out) } catch (err) { throw new CliError(`--secret: ${(err as Error).message}`, { exitCode: EXIT.usage, cause: err }) }
  return out
}

export function register (program: Command, ctx: CliContext): void {
  program.command('submit')
    .description('submit a signed build job to the peer network and wait for verified results (docs/jobs.md)')
    .argument('[context]', 'build context directory (packed without what .dockerignore or RECIPE.dockerignore excludes, and served to the builder)')
    .option('--platform <platforms>', 'comma-separated target platforms, e.g. linux/amd64,linux/arm64 (default: this host\'s)')
    .option('-f, --file <recipe>', 'recipe file (default: CONTEXT/Dockerfile, else CONTEXT/Singularity.def)')
    .option('-t, --tag <repo:tag>', 'name the result in the local store and publish a signed tag record for it (repeatable)', collect, [])
    .option('--no-publish', 'name the result only in the local store: publish no tag record')
    .option('--require <capability>', 'a capability the builder must have, e.g. gpu or cuda>=12 (repeatable)', collect, [])
    .option('--to <peer>', 'send the job straight to this agent instead of publishing it (repeatable)', collect, [])
    .option('--build-arg <k=v>', 'set a build argument (repeatable)', collect, [])
    .option('--target <stage>', 'build this stage instead of the last')
    .option('--secret <id=ID,src=FILE|env=VAR>', 'a secret for RUN --mount=type=secret (repeatable): sealed to the awarded agent\'s key in its award only, never in the published job, never logged, stored, put in a layer or in a cache key (docs/security.md)', collect, [])
    .option('--network [mode]', 'default: ask that every RUN get the network unless it says RUN --network=none (the agent\'s agent.allowNetwork decides); none (the default) asks for none. The bare flag means default')
    .option('--verify <n>', 'builders per platform whose digests must agree (default 1)')
    .option('-o, --output <spec>', 'also export the result (repeatable): any kiln build --output value, e.g. oci:DIR[:TAG], docker://HOST/REPO:TAG, type=static,dest=DIR (docs/exporters.md)', collect, [])
    .option('--bootstrap <multiaddrs>', 'comma-separated multiaddrs (with /p2p/<id>) to join through')
    .option('--listen <multiaddrs>', 'comma-separated multiaddrs to listen on (default: a free port)')
    .option('--no-mdns', 'do not look for peers on the local network')
    .option('--offer-window <duration>', 'how long to collect offers before awarding, e.g. 1500ms, 5s; a bare number is milliseconds (default 3000)')
    .option('--timeout <duration>', JOB_TIMEOUT_HELP)
    .option('--json', 'print a JSON summary on stdout (logs go to stderr)')
    .option('-q, --quiet', 'print nothing but the result\'s digest (the index\'s for several platforms); warnings still go to stderr')
    .option('--iidfile <file>', 'write the result\'s digest to this file')
    .addOption(progressOption())
    .addHelpText('after', '\nExamples:\n  kiln submit -t app:1 .\n  kiln submit --secret id=token,src=$HOME/.token -t app:1 .\n  kiln submit --platform linux/amd64,linux/arm64 -t app:1 --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW... .\n  kiln submit -f Singularity.def --platform linux/amd64 --require cuda>=12 --output oci-archive:app.tar ./ctx')
    .action(async (contextWord: string | undefined, opts: SubmitFlags) => {
      const { network, contextArg } = networkAndContext(opts.network, contextWord)
      if (opts.quiet === true && opts.json === true) throw new CliError('--quiet and --json both say what to print', { exitCode: EXIT.usage, hint: 'give one: -q prints the digest alone, --json a summary' })
      const startedAt = Date.now()
      const { basename } = await import('node:path')
      const { readRecipeInput } = await import('../recipe-input.ts')
      const { contextDir, recipePath, text, buildArgs, cleanup } = await readRecipeInput(contextArg, opts.file, opts.buildArg)
      ctx.onClose(cleanup)
      const [{ splitList }, { parsePlatform, formatPlatform, hostPlatform, parseImageRef, exportOptionsFromRef }, { parseRecipe, detectFrontend }, { parseTagName }, { Requirement }] = await Promise.all([
        import('../../p2p/index.ts'), import('../../oci/index.ts'), import('../../recipe/index.ts'), import('../local-image.ts'), import('../../../protocols/job.ts')
      ])
      let platforms: string[]
      try {
        platforms = [...new Set((splitList(opts.platform ?? formatPlatform(hostPlatform())) ?? []).map(p => formatPlatform(parsePlatform(p))))]
      } catch (err) { throw new CliError(`--platform: ${(err as Error).message}`, { exitCode: EXIT.usage }) }
      if (platforms.length === 0) throw new CliError('--platform names no platform', { exitCode: EXIT.usage })
      for (const r of opts.require) if (!Requirement.safeParse(r).success) throw new CliError(`--require ${r}: expected NAME or NAME(>=|<=|=|>|<)VALUE, e.g. gpu or cuda>=12`, { exitCode: EXIT.usage })
      const filename = basename(recipePath)
      const kind = detectFrontend(filename, text)
      // Parse here too: a broken recipe is the submitter's problem, found before anyone is asked to build it.
      // The plans also say which images to pin (protocols/job.md §3.1).
      const plans = platforms.map(platform => {
        try {
          return { platform, plan: parseRecipe(text, { filename, frontend: kind, buildArgs, platform, ...(opts.target !== undefined ? { target: opts.target } : {}) }) }
        } catch (err) { throw new CliError((err as Error).message, { exitCode: EXIT.usage, cause: err }) }
      })
      const secrets = await jobSecrets(await secretFlags(opts.secret), plans.map(p => p.plan), (line) => { ctx.out.warn(line) })
      const tags = await Promise.all(opts.tag.map(parseTagName))
      const { parseOutputSpec } = await import('../../export/index.ts')
      let outputs
      try { outputs = opts.output.map(parseOutputSpec) } catch (err) { throw new CliError((err as Error).message, { exitCode: EXIT.usage, cause: err, hint: 'docs/exporters.md lists the output types and their keys' }) }
      // kiln jobs resume re-exports to a layout or archive named here (src/oci's short forms).
      const resumeOutput = opts.output.find(o => { try { exportOptionsFromRef(parseImageRef(o)); return true } catch { return false } })
      const verify = positiveInt('--verify', opts.verify, 8) ?? 1
      const offerWindowMs = opts.offerWindow !== undefined ? durationFlag('--offer-window', opts.offerWindow, 1, 600_000) : undefined
      const timeoutMs = jobTimeoutFlag(opts.timeout)

      const progress = await createProgress(opts.quiet === true ? 'quiet' : opts.progress, { json: opts.json === true })
      ctx.onClose(progress.close)
      const requester = await openSession(ctx, opts, offerWindowMs, progress)
      const { session } = requester
      // The agents are looked up while the context is packed and the bases pinned: the job then goes to them at once (docs/jobs.md).
      if (opts.to.length === 0) {
        const discovering = new AbortController()
        ctx.onClose(() => { discovering.abort() })
        void session.requester.discover({ platforms, requirements: opts.require, signal: discovering.signal })
      }
      const packing = progress.task('context', contextDir, { label: contextDir })
      const context = await session.shareContext(contextDir, { recipeFile: recipePath, onProgress: packing.update })
      packing.done(context.size)
      const write = opts.quiet === true ? () => {} : opts.json === true ? (line: string) => { progress.print(line, process.stderr) } : (line: string) => { progress.print(line) }
      const print = eventPrinter(write)
      const bases = await session.pinBases(plans)
      for (const b of bases.pins) write(`[${b.platform}] base ${b.ref} pinned to ${b.digest}`)
      for (const b of bases.unpinned) write(`[${b.platform}] base ${b.ref} not pinned, the builder must hold it: ${b.reason}`)
      const meta = { tags: tags.map(t => `${t.repository}:${t.tag}`), ...(resumeOutput !== undefined ? { output: resumeOutput } : {}) }
      const ac = new AbortController()
      const onSignal = (): void => { ac.abort(new Error('interrupted')) }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      const timeout = timeoutMs !== undefined ? AbortSignal.timeout(timeoutMs) : undefined
      const signal = timeout !== undefined ? AbortSignal.any([ac.signal, timeout]) : ac.signal
      let result
      try {
        result = await session.requester.submit({
          recipe: { kind, file: filename, text },
          context,
          platforms,
          bases: bases.pins,
          requirements: opts.require,
          buildArgs,
          network: network === 'default',
          ...(secrets !== undefined ? { secrets } : {}),
          verify,
          ...(opts.target !== undefined ? { target: opts.target } : {}),
          ...(tags[0] !== undefined ? { output: `${tags[0].repository}:${tags[0].tag}` } : {}),
          ...(opts.to.length > 0 ? { to: opts.to } : {}),
          signal,
          onEvent: (e) => {
            if (e.kind === 'published') session.journal.setMeta(e.jobId, meta)
            print(e)
          }
        })
      } catch (err) {
        throw jobError(err, timeout?.aborted === true, timeoutMs)
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
      const image = await session.keep(result, { tags })
      const exported: string[] = []
      if (outputs.length > 0) {
        const [{ createExporter }, store] = await Promise.all([import('../../export/index.ts'), ctx.store()])
        const exporter = createExporter()
        try {
          for (const [i, target] of outputs.entries()) {
            const sink = onExport(progress, opts.output[i] as string)
            exported.push((await exporter.export({ store: store.content, root: image }, target, { tags: meta.tags, ...(kind === 'apptainer' ? { definition: text } : {}), onProgress: sink.onProgress })).description)
            sink.done()
          }
        } catch (err) { throw new CliError(`export failed: ${(err as Error).message}`, { exitCode: EXIT.failure, cause: err, hint: `the result is in the local store as ${image.digest}; kiln image export can write it again` }) }
      }
      progress.close()
      // Gateways resolve the tags through these records (docs/jobs.md); --no-publish keeps them local.
      const published = opts.publish === false || tags.length === 0
        ? []
        : await requester.publishTags(image, tags, AbortSignal.timeout(60_000)).catch((err: Error) => {
          ctx.out.warn(`the result is in the local store, but publishing its tag records failed: ${err.message} (kiln tag REPO:TAG --publish retries)`)
          return []
        })
      if (opts.iidfile !== undefined) await writeIidFile(opts.iidfile, image.digest)
      const summary = summarize(result, session.journal.get(result.jobId), image, { tags: meta.tags, ...(exported.length > 0 ? { output: exported.join(', ') } : {}), startedAt })
      if (opts.quiet === true) ctx.out.line(image.digest)
      else if (opts.json === true) ctx.out.json({ ...summary.json, published })
      else {
        for (const l of summary.lines) ctx.out.line(l)
        for (const p of published) ctx.out.line(`  published ${p.repository}:${p.tag} (tag record on ${p.storedOn} peer${p.storedOn === 1 ? '' : 's'})`)
      }
      for (const p of published.filter(p => p.storedOn === 0)) ctx.out.warn(`no peer stored the tag record of ${p.repository}:${p.tag}: gateways will not find it once this command exits (kiln tag ${p.repository}:${p.tag} --publish retries)`)
    })
}
