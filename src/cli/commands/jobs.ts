import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'
import type { RequesterJobStore, StoredJob } from '../../requester/index.ts'
import type { NodeFlags } from '../../p2p/index.ts'
import { eventPrinter, jobError, summarize } from '../job-output.ts'
import { JOB_TIMEOUT_HELP, jobTimeoutFlag, secretFlags } from '../flags.ts'
import { openSession } from '../services.ts'

const collect = (value: string, previous: string[]): string[] => [...previous, value]

async function jobStore (ctx: CliContext): Promise<RequesterJobStore> {
  const { createRequesterJobStore } = await import('../../requester/index.ts')
  const log = await ctx.logger()
  return createRequesterJobStore((await ctx.store()).db, message => { log.warn(message) })
}

async function find (store: RequesterJobStore, id: string): Promise<StoredJob> {
  const job = store.get(id)
  if (job === undefined) throw new CliError(`no job ${id} in this data dir`, { exitCode: EXIT.notFound, hint: 'kiln jobs ls lists the jobs submitted from here' })
  return job
}

const when = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').slice(0, 19)

function showJson (j: StoredJob): Record<string, unknown> {
  return {
    id: j.id,
    state: j.state,
    error: j.error ?? null,
    createdAt: j.createdAt,
    updatedAt: j.updatedAt,
    recipe: { kind: j.job.payload.recipe.kind, file: j.job.payload.recipe.file, digest: j.job.payload.recipe.digest },
    context: j.job.payload.context,
    requirements: j.job.payload.requirements,
    verify: j.verify,
    index: j.index ?? null,
    tags: j.meta.tags ?? [],
    output: j.meta.output ?? null,
    platforms: j.platforms.map(p => ({
      platform: p.platform, state: p.state, builders: p.builders, digest: p.digest ?? null, error: p.error ?? null,
      cachedSteps: p.cachedSteps ?? null, steps: p.steps ?? null, provenance: p.result?.provenance ?? null
    }))
  }
}

export function register (program: Command, ctx: CliContext): void {
  const cmd = program.command('jobs')
    .description('jobs submitted from this data dir: list, show, logs, cancel, resume (docs/jobs.md)')
    .addHelpText('after', '\nExamples:\n  kiln jobs\n  kiln jobs show Xk3v9QpL2mNa --json\n  kiln jobs logs Xk3v9QpL2mNa --platform linux/arm64\n  kiln jobs cancel Xk3v9QpL2mNa --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...\n  kiln jobs resume Xk3v9QpL2mNa --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...')

  const list = async (opts: { json?: boolean, limit?: string }): Promise<void> => {
    const store = await jobStore(ctx)
    const jobs = store.list(opts.limit !== undefined ? Math.max(1, Math.min(10_000, Number(opts.limit) || 50)) : 50)
    if (opts.json === true) { ctx.out.json(jobs.map(showJson)); return }
    ctx.out.table(jobs, [
      { header: 'ID', value: j => j.id },
      { header: 'STATE', value: j => j.state },
      { header: 'PLATFORMS', value: j => j.platforms.map(p => `${p.platform}:${p.state}`).join(' ') },
      { header: 'CREATED', value: j => when(j.createdAt) },
      { header: 'IMAGE', value: j => j.index?.digest ?? (j.platforms.length === 1 ? j.platforms[0]?.digest ?? '' : '') }
    ])
  }
  cmd.command('ls', { isDefault: true })
    .description('list jobs, newest first')
    .option('--limit <n>', 'at most this many (default 50)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  kiln jobs ls --limit 10')
    .action(list)

  cmd.command('show')
    .description('one job: recipe, context, each platform\'s state, builder, digest and provenance')
    .argument('<id>', 'job id')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  kiln jobs show Xk3v9QpL2mNa --json')
    .action(async (id: string, opts: { json?: boolean }) => {
      const j = await find(await jobStore(ctx), id)
      if (opts.json === true) { ctx.out.json(showJson(j)); return }
      ctx.out.line(`job ${j.id}: ${j.state}${j.error !== undefined ? ` (${j.error})` : ''}`)
      ctx.out.line(`  created ${when(j.createdAt)}, updated ${when(j.updatedAt)}`)
      ctx.out.line(`  recipe  ${j.job.payload.recipe.file} (${j.job.payload.recipe.kind}) ${j.job.payload.recipe.digest}`)
      ctx.out.line(`  context ${j.job.payload.context.digest} (${j.job.payload.context.size} bytes)`)
      if (j.index !== undefined) ctx.out.line(`  index   ${j.index.digest}`)
      for (const t of j.meta.tags ?? []) ctx.out.line(`  tag     ${t}`)
      for (const p of j.platforms) {
        ctx.out.line(`  [${p.platform}] ${p.state}${p.digest !== undefined ? ` ${p.digest}` : ''}${p.error !== undefined ? `: ${p.error}` : ''}`)
        if (p.builders.length > 0) ctx.out.line(`    builder ${p.builders.join(', ')}`)
        if (p.steps !== undefined) ctx.out.line(`    ${p.cachedSteps ?? 0}/${p.steps} steps cached`)
      }
    })

  cmd.command('logs')
    .description('the build output received for a job')
    .argument('<id>', 'job id')
    .option('--platform <p>', 'only this platform')
    .option('--json', 'print the lines as JSON objects')
    .addHelpText('after', '\nExample:\n  kiln jobs logs Xk3v9QpL2mNa --platform linux/arm64')
    .action(async (id: string, opts: { platform?: string, json?: boolean }) => {
      const store = await jobStore(ctx)
      await find(store, id)
      const lines = store.logs(id, opts.platform)
      if (opts.json === true) { ctx.out.json(lines); return }
      for (const l of lines) ctx.out.line(`[${l.platform}] ${l.line}`)
    })

  cmd.command('cancel')
    .description('ask the builders of a running job to stop, and mark it cancelled')
    .argument('<id>', 'job id')
    .option('--bootstrap <multiaddrs>', 'comma-separated multiaddrs (with /p2p/<id>) to join through')
    .option('--listen <multiaddrs>', 'comma-separated multiaddrs to listen on (default: a free port)')
    .option('--no-mdns', 'do not look for peers on the local network')
    .addHelpText('after', '\nExample:\n  kiln jobs cancel Xk3v9QpL2mNa --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...')
    .action(async (id: string, flags: NodeFlags) => {
      const store = await jobStore(ctx)
      const j = await find(store, id)
      if (j.state !== 'running') throw new CliError(`job ${id} has ended (${j.state})`, { exitCode: EXIT.usage })
      const builders = [...new Set(j.platforms.filter(p => !['succeeded', 'failed', 'cancelled'].includes(p.state)).flatMap(p => p.builders))]
      if (builders.length > 0) {
        const { session } = await openSession(ctx, flags)
        await session.requester.cancel(id, 'cancelled with kiln jobs cancel', builders)
      }
      store.markEnded(id, 'cancelled', 'cancelled with kiln jobs cancel')
      ctx.out.line(`job ${id} cancelled${builders.length > 0 ? `; told ${builders.length} builder${builders.length === 1 ? '' : 's'}` : ''}`)
    })

  cmd.command('resume')
    .description('follow a job again after the requester stopped: ask its builders for their results, re-award if they are gone')
    .argument('<id>', 'job id')
    .option('--bootstrap <multiaddrs>', 'comma-separated multiaddrs (with /p2p/<id>) to join through')
    .option('--listen <multiaddrs>', 'comma-separated multiaddrs to listen on (default: a free port)')
    .option('--no-mdns', 'do not look for peers on the local network')
    .option('--secret <id=ID,src=FILE|env=VAR>', 'give the job\'s secrets again (repeatable; every id the job lists): kiln keeps no secret, and a platform that must be built again fails without them', collect, [])
    .option('--timeout <duration>', JOB_TIMEOUT_HELP)
    .option('--json', 'print a JSON summary on stdout (logs go to stderr)')
    .addHelpText('after', '\nExamples:\n  kiln jobs resume Xk3v9QpL2mNa --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...\n  kiln jobs resume Xk3v9QpL2mNa --secret id=token,src=$HOME/.token')
    .action(async (id: string, flags: NodeFlags & { timeout?: string, json?: boolean, secret: string[] }) => {
      const startedAt = Date.now()
      const store = await jobStore(ctx)
      const j = await find(store, id)
      if (j.state !== 'running') throw new CliError(`job ${id} has ended (${j.state})`, { exitCode: EXIT.usage, hint: `kiln jobs show ${id}` })
      const spec = store.resumeSpec(id)
      if (spec === undefined) throw new CliError(`job ${id} cannot be read back`, { exitCode: EXIT.failure })
      const timeoutMs = jobTimeoutFlag(flags.timeout)
      const secrets = await secretFlags(flags.secret)
      const listed = spec.job.payload.secrets ?? []
      const stray = Object.keys(secrets).filter(s => !listed.includes(s))
      if (stray.length > 0) throw new CliError(`--secret: job ${id} has no secret ${stray.join(', ')}`, { exitCode: EXIT.usage, hint: listed.length > 0 ? `it lists ${listed.join(', ')}` : 'it lists none' })
      const missing = listed.filter(s => secrets[s] === undefined)
      if (flags.secret.length > 0 && missing.length > 0) throw new CliError(`--secret: job ${id} needs ${missing.join(', ')} too`, { exitCode: EXIT.usage, hint: `give every secret the job lists: ${listed.join(', ')}` })
      if (listed.length > 0 && flags.secret.length === 0) ctx.out.warn(`job ${id} has secrets (${listed.join(', ')}) and kiln keeps none: a platform that must be built again fails unless you give them with --secret`)
      const { session } = await openSession(ctx, flags)
      const write = flags.json === true ? (line: string) => { process.stderr.write(`${line}\n`) } : (line: string) => { ctx.out.line(line) }
      const timeout = timeoutMs !== undefined ? AbortSignal.timeout(timeoutMs) : undefined
      let result
      try {
        result = await session.requester.resume({ ...spec, ...(flags.secret.length > 0 ? { secrets } : {}), ...(timeout !== undefined ? { signal: timeout } : {}), onEvent: eventPrinter(write) })
      } catch (err) {
        throw jobError(err, timeout?.aborted === true, timeoutMs)
      }
      const { parseTagName } = await import('../local-image.ts')
      const { parseImageRef, exportOptionsFromRef } = await import('../../oci/index.ts')
      const tags = await Promise.all((j.meta.tags ?? []).map(parseTagName))
      const exportTo = j.meta.output !== undefined ? exportOptionsFromRef(parseImageRef(j.meta.output)) : undefined
      if (exportTo !== undefined && exportTo.refName === undefined && tags[0] !== undefined) exportTo.refName = tags[0].tag
      const image = await session.keep(result, { tags, ...(exportTo !== undefined ? { export: exportTo } : {}) })
      const summary = summarize(result, session.journal.get(id), image, { tags: j.meta.tags ?? [], ...(j.meta.output !== undefined ? { output: j.meta.output } : {}), startedAt })
      if (flags.json === true) ctx.out.json(summary.json)
      else for (const l of summary.lines) ctx.out.line(l)
    })
}
