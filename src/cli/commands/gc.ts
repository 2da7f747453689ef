import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { durationFlag } from '../flags.ts'
import { formatBytes } from '../output.ts'

export function register (program: Command, ctx: CliContext): void {
  program.command('gc')
    .description('remove blobs that no image name, pin or running work refers to, and the build snapshots and unpacked bases they made useless')
    .option('--dry-run', 'list what would be removed, remove nothing')
    .option('--grace <duration>', 'keep unreferenced blobs younger than this (another process may be about to name them)', '15m')
    .option('--json', 'print JSON: { removed: [{digest,size}], bytesFreed, kept, missing, buildCache: { removed: [{path,bytes}], bytesFreed, skipped } }')
    .addHelpText('after', '\nA blob reachable from any image name is never removed. A step snapshot goes with its layer\'s blob, an\nunpacked base with its manifest; while a build runs on the data dir they all stay.\n\nExample:\n  kiln image rm old/image:1 && kiln gc --grace 0')
    .action(async (opts: { dryRun?: boolean, grace: string, json?: boolean }) => {
      const store = await ctx.store()
      const { blobChildren } = await import('../../oci/index.ts')
      const { collectGarbage } = await import('../../content/index.ts')
      const { gcRoots } = await import('../../node/index.ts')
      const children = blobChildren(store.content)
      const roots = await gcRoots(store)
      const graceMs = durationFlag('--grace', opts.grace)
      const result = await collectGarbage({ store: store.content, roots, children, graceMs, dryRun: opts.dryRun === true })
      const { createBuildCache } = await import('../../builder/snapshots.ts')
      const { join } = await import('node:path')
      const buildCache = await createBuildCache({ workDir: join(store.root, 'build'), db: store.db, store: store.content }).collect({ graceMs, dryRun: opts.dryRun === true })
      if (opts.json === true) { ctx.out.json({ ...result, buildCache }); return }
      const verb = opts.dryRun === true ? 'would remove' : 'removed'
      for (const b of result.removed) ctx.out.line(`${verb} ${b.digest} (${formatBytes(b.size)})`)
      for (const d of buildCache.removed) ctx.out.line(`${verb} ${d.path} (${formatBytes(d.bytes)})`)
      ctx.out.line(`${verb} ${result.removed.length} blob(s) and ${buildCache.removed.length} build cache dir(s), ${formatBytes(result.bytesFreed + buildCache.bytesFreed)}; kept ${result.kept} blob(s)`)
      if (buildCache.skipped) ctx.out.warn('a build is running on this data dir: the build cache was left as it is')
      if (result.missing.length > 0) ctx.out.warn(`${result.missing.length} referenced blob(s) are not in the store (images pulled in part)`)
    })
}
