import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { durationFlag } from '../flags.ts'
import { formatBytes } from '../output.ts'

export function register (program: Command, ctx: CliContext): void {
  program.command('gc')
    .description('remove blobs that no image name, pin or running work refers to')
    .option('--dry-run', 'list what would be removed, remove nothing')
    .option('--grace <duration>', 'keep unreferenced blobs younger than this (another process may be about to name them)', '15m')
    .option('--json', 'print JSON: { removed: [{digest,size}], bytesFreed, kept, missing }')
    .addHelpText('after', '\nA blob reachable from any image name is never removed.\n\nExample:\n  kiln image rm old/image:1 && kiln gc --grace 0')
    .action(async (opts: { dryRun?: boolean, grace: string, json?: boolean }) => {
      const store = await ctx.store()
      const { blobChildren } = await import('../../oci/index.ts')
      const { collectGarbage } = await import('../../content/index.ts')
      const { gcRoots } = await import('../gc-roots.ts')
      const children = blobChildren(store.content)
      const roots = await gcRoots(store)
      const result = await collectGarbage({ store: store.content, roots, children, graceMs: durationFlag('--grace', opts.grace), dryRun: opts.dryRun === true })
      if (opts.json === true) { ctx.out.json(result); return }
      const verb = opts.dryRun === true ? 'would remove' : 'removed'
      for (const b of result.removed) ctx.out.line(`${verb} ${b.digest} (${formatBytes(b.size)})`)
      ctx.out.line(`${verb} ${result.removed.length} blob(s), ${formatBytes(result.bytesFreed)}; kept ${result.kept}`)
      if (result.missing.length > 0) ctx.out.warn(`${result.missing.length} referenced blob(s) are not in the store (images pulled in part)`)
    })
}
