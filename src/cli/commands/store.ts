import type { Command } from 'commander'
import type { Digest, LocalStore } from '../../content/index.ts'
import type { BuildCache } from '../../builder/snapshots.ts'
import type { CliContext } from '../context.ts'
import type { StoreUsage } from '../../node/index.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'
import { durationFlag } from '../flags.ts'
import { formatBytes } from '../output.ts'
import { createProgress, progressOption } from '../progress.ts'
import type { ProgressMode } from '../progress.ts'

/** The digests a blob refers to, read without counting as use. */
async function childrenReader (store: LocalStore): Promise<(d: Digest) => Promise<Digest[]>> {
  const { blobChildren } = await import('../../oci/index.ts')
  const { untracked } = await import('../../content/quota.ts')
  return blobChildren(untracked(store.content))
}

/** The builder's snapshots and unpacked bases beside the store (src/builder/snapshots.ts). */
async function buildCacheOf (store: LocalStore): Promise<BuildCache> {
  const { createBuildCache } = await import('../../builder/snapshots.ts')
  const { join } = await import('node:path')
  return createBuildCache({ workDir: join(store.root, 'build'), db: store.db, store: store.content })
}

async function quotaFrom (ctx: CliContext, flag: string | undefined): Promise<number | undefined> {
  const { parseByteSize } = await import('../../content/quota.ts')
  const value = flag ?? (await ctx.config()).store.quota
  if (value === undefined) return undefined
  try {
    return parseByteSize(value)
  } catch (err) {
    throw new CliError((err as Error).message, { exitCode: EXIT.usage })
  }
}

async function usage (ctx: CliContext): Promise<StoreUsage> {
  const { storeUsage } = await import('../../node/index.ts')
  return await storeUsage(await ctx.store(), await quotaFrom(ctx, undefined))
}

export function register (program: Command, ctx: CliContext): void {
  const store = program.command('store')
    .description('the local content store: usage, pins, quota and integrity')
    .addHelpText('after', `
Eviction policy (store.quota in kiln.yaml, or kiln store prune --quota; the quota counts blobs and the build cache):
  never evicted: pinned content, content a running build or transfer holds, blobs younger than the grace period;
  evicted first: the build cache (step snapshots, unpacked bases), least recently used first, unless a build runs;
  then: blobs no image name reaches, least recently used first;
  then: blobs of named images that are not pinned, least recently used first (the name stays).

Examples:
  kiln store df
  kiln store pin site/base:2024.1        keep this image whole on this node
  kiln store prune --quota 200GiB --dry-run
  kiln store verify --quick              re-hash a sample, check images and the database`)

  store.command('df')
    .description('show how much the store holds, what is pinned or in use, and the quota')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  kiln store df --json | jq .bytes')
    .action(async (opts: { json?: boolean }) => {
      const u = await usage(ctx)
      if (opts.json === true) { ctx.out.json(u); return }
      const rows: Array<[string, string]> = [
        ['data dir', u.dataDir],
        ['blobs', String(u.blobs)],
        ['size', formatBytes(u.bytes)],
        ['build cache', `${formatBytes(u.buildCache.bytes)}: ${u.buildCache.snapshots.count} step snapshot(s) ${formatBytes(u.buildCache.snapshots.bytes)}, ${u.buildCache.bases.count} unpacked base(s) ${formatBytes(u.buildCache.bases.bytes)}, ${u.buildCache.cacheMounts.count} RUN cache mount(s) ${formatBytes(u.buildCache.cacheMounts.bytes)}`],
        ['quota', u.quota === null ? 'none (store.quota not set)' : `${formatBytes(u.quota)} (${Math.round((u.bytes + u.buildCache.bytes) / Math.max(1, u.quota) * 100)}% used, build cache included)`],
        ['pinned', `${formatBytes(u.pinnedBytes)} in ${u.pins} pin(s)`],
        ['in use', `${formatBytes(u.leasedBytes)} held by running builds and transfers`],
        ['filesystem', `${formatBytes(u.filesystem.freeBytes)} free of ${formatBytes(u.filesystem.sizeBytes)}, ${u.filesystem.freeInodes} inodes free`]
      ]
      ctx.out.table(rows, [{ header: 'WHAT', value: r => r[0] }, { header: 'VALUE', value: r => r[1] }])
    })

  store.command('pin')
    .argument('[target]', 'a digest (sha256:...) or an image name REPO:TAG; none: list pins')
    .description('keep content on this node: never evicted by the quota nor removed by gc')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  kiln store pin site/base:2024.1\n  kiln store pin          (lists the pins)')
    .action(async (target: string | undefined, opts: { json?: boolean }) => {
      const s = await ctx.store()
      const { createPins } = await import('../../content/pins.ts')
      const pins = createPins(s.db, s.refs)
      if (target === undefined) {
        const list = pins.list()
        if (opts.json === true) { ctx.out.json(list); return }
        ctx.out.table(list, [{ header: 'PINNED', value: p => p.target }, { header: 'KIND', value: p => p.kind }, { header: 'SINCE', value: p => new Date(p.createdAt).toISOString() }])
        return
      }
      const pin = pins.pin(target)
      if (opts.json === true) ctx.out.json(pin)
      else ctx.out.line(`pinned ${pin.target}`)
    })

  store.command('unpin')
    .argument('<target>', 'a digest or REPO:TAG that was pinned')
    .description('let pinned content be evicted again')
    .option('--json', 'print JSON: { target, unpinned }')
    .addHelpText('after', '\nExample:\n  kiln store unpin site/base:2024.1')
    .action(async (target: string, opts: { json?: boolean }) => {
      const s = await ctx.store()
      const { createPins } = await import('../../content/pins.ts')
      const unpinned = createPins(s.db, s.refs).unpin(target)
      if (opts.json === true) { ctx.out.json({ target, unpinned }); return }
      if (!unpinned) throw new CliError(`${target} is not pinned`, { exitCode: EXIT.notFound, hint: 'kiln store pin lists the pins' })
      ctx.out.line(`unpinned ${target}`)
    })

  store.command('verify')
    .description('check the store: re-hash blobs, check images are whole and database rows name blobs that exist')
    .option('--quick [fraction]', 're-hash every small blob (manifests, configs) but only a random sample of large ones (default fraction 0.05)')
    .option('--repair', 'move corrupt blobs aside to <data dir>/store/quarantine and drop database rows naming missing blobs; stop agents and gateways on this data dir first')
    .option('--json', 'print JSON: { blobs, bytes, hashed, hashedBytes, problems: [{kind, ...}], unreferencedIncomplete, quarantine? }')
    .addOption(progressOption())
    .addHelpText('after', `
Exit status: 0 when nothing is wrong (or everything found was repaired), 4 when a problem remains.
An image that a name or pin keeps but whose blobs are missing cannot be repaired here: pull it again.

Examples:
  kiln store verify
  kiln store verify --quick
  kiln store verify --repair --json`)
    .action(async (opts: { quick?: boolean | string, repair?: boolean, json?: boolean, progress: ProgressMode }) => {
      const sample = opts.quick === undefined ? undefined : opts.quick === true ? 0.05 : Number(opts.quick)
      if (sample !== undefined && !(sample > 0 && sample <= 1)) throw new CliError(`--quick ${String(opts.quick)}: give a fraction in (0, 1], e.g. 0.1`, { exitCode: EXIT.usage })
      const s = await ctx.store()
      const [{ verifyStore, contentReferenceTables, STORE_DIR }, { stepCacheReferences }, { repoIndexReferences }, { createPins }, { untracked }] = await Promise.all([
        import('../../content/index.ts'), import('../../cache/index.ts'), import('../../gateway/index.ts'), import('../../content/pins.ts'), import('../../content/quota.ts')
      ])
      const { join } = await import('node:path')
      const pins = createPins(s.db, s.refs)
      const roots = [
        ...s.refs.list().map(r => ({ digest: r.digest, what: `${r.repository}:${r.tag}` })),
        ...pins.roots().map(d => ({ digest: d, what: 'a pin' }))
      ]
      const progress = await createProgress(opts.progress, { json: opts.json === true })
      ctx.onClose(progress.close)
      const verifying = progress.task('verifying', 'store', { label: '' })
      const report = await verifyStore(untracked(s.content), join(s.root, STORE_DIR), {
        ...(sample !== undefined ? { sample } : {}),
        repair: opts.repair === true,
        children: await childrenReader(s),
        tables: [...contentReferenceTables(s.db, s.refs), stepCacheReferences(s.db), repoIndexReferences(s.db)],
        roots,
        onProgress: p => { verifying.update(p.bytes, undefined, `${p.done}/${p.total} blobs`) }
      })
      verifying.update(report.hashedBytes, undefined, `${report.hashed} of ${report.blobs} blobs re-hashed`)
      verifying.done()
      progress.close()
      const remaining = report.problems.filter(p => !p.repaired)
      if (opts.json === true) ctx.out.json(report)
      else {
        for (const p of report.problems) {
          const state = p.repaired ? 'repaired' : 'WRONG'
          if (p.kind === 'corrupt-blob') ctx.out.line(`${state}: blob ${p.digest} holds bytes of ${p.actual}${p.repaired ? ' (moved to quarantine)' : ''}`)
          else if (p.kind === 'dangling-row') ctx.out.line(`${state}: ${p.table}: ${p.what} names ${p.digest}, which the store lacks${p.repaired ? ' (row dropped)' : ''}`)
          else ctx.out.line(`${state}: image ${p.digest} (kept by ${p.keptBy.join(', ')}) lacks ${p.missing.length} blob(s): ${p.missing.slice(0, 3).join(', ')}${p.missing.length > 3 ? ', ...' : ''}; pull it again`)
        }
        ctx.out.line(`${report.blobs} blobs (${formatBytes(report.bytes)}), ${report.hashed} re-hashed (${formatBytes(report.hashedBytes)}): ${report.problems.length === 0 ? 'no problems' : `${report.problems.length} problem(s), ${remaining.length} left`}${report.unreferencedIncomplete > 0 ? `; ${report.unreferencedIncomplete} unnamed incomplete image(s) from interrupted pulls (kiln gc removes them)` : ''}`)
      }
      if (remaining.length > 0) {
        throw new CliError(`${remaining.length} problem(s) in the store`, {
          exitCode: EXIT.verification,
          hint: remaining.some(p => p.kind !== 'incomplete-image') ? 'kiln store verify --repair moves corrupt blobs aside and drops rows naming missing blobs' : 'pull the incomplete images again'
        })
      }
    })

  store.command('prune')
    .description('evict least recently used, unpinned content until the store fits its quota')
    .option('--quota <size>', 'quota to prune to, e.g. 200GiB; default store.quota from kiln.yaml')
    .option('--grace <duration>', 'keep blobs younger than this (e.g. 0, 30s, 15m, 2h)', '15m')
    .option('--dry-run', 'list what would be evicted, evict nothing')
    .option('--json', 'print JSON: { quota, before, after, evicted: [{digest,size}], derivedEvicted: [{id,bytes}], bytesFreed, protectedBytes, overQuota }')
    .addHelpText('after', '\nExample:\n  kiln store prune --quota 200GiB --dry-run')
    .action(async (opts: { quota?: string, grace: string, dryRun?: boolean, json?: boolean }) => {
      const quota = await quotaFrom(ctx, opts.quota)
      if (quota === undefined) throw new CliError('no quota to prune to', { exitCode: EXIT.usage, hint: 'set store.quota in kiln.yaml or pass --quota SIZE' })
      const graceMs = durationFlag('--grace', opts.grace)
      const s = await ctx.store()
      const { enforceQuota } = await import('../../content/quota.ts')
      const r = await enforceQuota({ store: s.content, db: s.db, quota, children: await childrenReader(s), graceMs, dryRun: opts.dryRun === true, derived: await buildCacheOf(s) })
      if (opts.json === true) { ctx.out.json(r); return }
      const verb = opts.dryRun === true ? 'would evict' : 'evicted'
      for (const d of r.derivedEvicted) ctx.out.line(`${verb} ${d.id} (${formatBytes(d.bytes)})`)
      for (const b of r.evicted) ctx.out.line(`${verb} ${b.digest} (${formatBytes(b.size)})`)
      ctx.out.line(`${verb} ${r.derivedEvicted.length} build cache dir(s) and ${r.evicted.length} blob(s), ${formatBytes(r.bytesFreed)}; store ${formatBytes(r.after)} of ${formatBytes(r.quota)} quota`)
      if (r.overQuota) ctx.out.warn(`still over quota: ${formatBytes(r.protectedBytes)} is pinned, in use or younger than the grace period`)
    })
}
