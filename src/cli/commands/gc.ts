import type { Command } from 'commander'
import type { Digest } from '../../content/index.ts'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'
import { formatBytes } from '../output.ts'

function parseDuration (text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim())
  if (m === null) throw new CliError(`invalid duration ${JSON.stringify(text)}`, { exitCode: EXIT.usage, hint: 'use e.g. 0, 30s, 15m, 2h' })
  const n = Number(m[1])
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd' ?? 's']
  return n * unit
}

export function register (program: Command, ctx: CliContext): void {
  program.command('gc')
    .description('remove blobs that no image name, pin or running work refers to')
    .option('--dry-run', 'list what would be removed, remove nothing')
    .option('--grace <duration>', 'keep unreferenced blobs younger than this (another process may be about to name them)', '15m')
    .option('--json', 'print JSON: { removed: [{digest,size}], bytesFreed, kept, missing }')
    .addHelpText('after', '\nA blob reachable from any image name is never removed.\n\nExample:\n  kiln image rm old/image:1 && kiln gc --grace 0')
    .action(async (opts: { dryRun?: boolean, grace: string, json?: boolean }) => {
      const store = await ctx.store()
      const oci = await import('../../oci/index.ts')
      const { collectGarbage, createLeases } = await import('../../content/index.ts')
      const roots = new Set(store.refs.list().map(r => r.digest))
      for (const d of createLeases(store.db).held()) roots.add(d)
      // Manifests pushed to the gateway by digest only (signatures, other referrers) are named by its repository index.
      const { gatewayGcRoots } = await import('../../gateway/index.ts')
      for (const d of gatewayGcRoots(store.db)) roots.add(d)
      // Only manifests and indexes have children; anything else parses as neither and has none.
      const children = async (digest: Digest): Promise<Digest[]> => {
        const { size } = await store.content.info(digest)
        if (size > oci.MAX_MANIFEST_SIZE) return []
        const bytes = await store.content.readBytes(digest, oci.MAX_MANIFEST_SIZE)
        let parsed
        try { parsed = oci.parseManifestBytes(bytes) } catch { return [] }
        return oci.childrenOf(parsed).map(c => c.descriptor.digest)
      }
      const result = await collectGarbage({ store: store.content, roots, children, graceMs: parseDuration(opts.grace), dryRun: opts.dryRun === true })
      if (opts.json === true) { ctx.out.json(result); return }
      const verb = opts.dryRun === true ? 'would remove' : 'removed'
      for (const b of result.removed) ctx.out.line(`${verb} ${b.digest} (${formatBytes(b.size)})`)
      ctx.out.line(`${verb} ${result.removed.length} blob(s), ${formatBytes(result.bytesFreed)}; kept ${result.kept}`)
      if (result.missing.length > 0) ctx.out.warn(`${result.missing.length} referenced blob(s) are not in the store (images pulled in part)`)
    })
}
