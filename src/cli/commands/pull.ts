import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { checkMultiaddrFlags } from '../multiaddr-flags.ts'
import { EXIT } from '../exit-codes.ts'
import { NoProvidersError } from '../../transfer/errors.ts'
import { isErrorOf } from '../../util/error-class.ts'
import { createProgress, progressOption } from '../progress.ts'
import { onFetch } from '../progress-sources.ts'
import type { ProgressMode } from '../progress.ts'

interface PullFlags {
  listen?: string
  bootstrap?: string
  mdns?: boolean
  output?: string
  from?: string
  json?: boolean
  progress: ProgressMode
}

export function register (program: Command, ctx: CliContext): void {
  program.command('pull')
    .description('fetch an image (or any blob) by digest from the peer network into the local store')
    .argument('<ref>', 'sha256:<hex> digest, or name:tag@sha256:<hex> (the tag is recorded locally)')
    .option('--output <dest>', 'also write the blob to this file (for a single blob) ')
    .option('--from <peers>', 'comma-separated peer ids known to hold it, asked first')
    .option('--bootstrap <multiaddrs>', 'comma-separated multiaddrs (with /p2p/<id>) to join through')
    .option('--listen <multiaddrs>', 'comma-separated multiaddrs to listen on (default: a free port)')
    .option('--no-mdns', 'do not look for peers on the local network')
    .option('--json', 'print JSON: { digest, name, blobs, size, fetched, peers, banned }')
    .addOption(progressOption())
    .addHelpText('after', '\nExamples:\n  kiln pull sha256:4f1c...e9 --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...\n  kiln pull myapp:1.0@sha256:4f1c...e9\n  kiln pull sha256:4f1c...e9 --progress=json 2>events.jsonl')
    .action(async (ref: string, flags: PullFlags) => {
      const [{ splitList }, { createTransfer }, { parseDigest }, { formatBytes }] = await Promise.all([
        import('../../p2p/index.ts'), import('../../transfer/index.ts'), import('../../content/index.ts'), import('../output.ts')
      ])
      const at = ref.lastIndexOf('@')
      const name = at > 0 ? ref.slice(0, at) : undefined
      let digest
      try {
        digest = parseDigest(at > 0 ? ref.slice(at + 1) : ref)
      } catch (err) {
        throw new CliError((err as Error).message, { exitCode: 2, hint: 'pull takes a digest: sha256:<64 hex> or name:tag@sha256:<64 hex>' })
      }
      await checkMultiaddrFlags(flags)
      const config = await ctx.config()
      const identity = await ctx.identity()
      const store = await ctx.store()
      const { startPeer, untilFirstPeer } = await import('../../node/index.ts')
      const node = await startPeer(config.node, flags, identity.privateKey, true)
      ctx.onClose(async () => { await node.stop() })
      const progress = await createProgress(flags.progress, { json: flags.json === true })
      ctx.onClose(progress.close)
      const { peerSearchSources, sayingPeerSearch } = await import('../peer-search.ts')
      await sayingPeerSearch(progress, peerSearchSources(flags, config.node), untilFirstPeer(node, 10_000))
      const transfer = createTransfer({ node, store: store.content })
      let result
      try {
        result = await transfer.pull(digest, {
          providers: splitList(flags.from),
          onProgress: onFetch(progress, 'pull')
        })
      } catch (err) {
        // Nobody providing the digest means, to a pull, that it is not there (the table says network).
        if (isErrorOf(err, NoProvidersError)) throw new CliError(err.message, { exitCode: EXIT.notFound, cause: err, hint: 'is an agent holding it online? try --from PEERID or --bootstrap' })
        throw err
      }
      for (const b of result.blobs) if (!b.alreadyPresent) progress.task('pull', b.digest, { total: b.size }).done(b.size)
      progress.close()
      const total = result.blobs.reduce((n, b) => n + b.size, 0)
      const fetched = result.blobs.reduce((n, b) => n + [...b.fromPeers.values()].reduce((a, c) => a + c, 0), 0)
      const peers = new Set(result.blobs.flatMap(b => [...b.fromPeers.keys()]))
      let recorded: string | undefined
      if (name !== undefined) {
        const colon = name.lastIndexOf(':')
        const slash = name.lastIndexOf('/')
        const [repository, tag] = colon > slash ? [name.slice(0, colon), name.slice(colon + 1)] : [name, 'latest']
        const { parseManifestBytes } = await import('../../oci/schemas.ts')
        try {
          const root = result.blobs[0]
          const mediaType = parseManifestBytes(await store.content.readBytes(digest, 4 * 1024 * 1024)).mediaType
          store.refs.set(repository, tag, { digest, mediaType, size: root?.size ?? 0 })
          recorded = `${repository}:${tag}`
        } catch (err) {
          ctx.out.warn(`pulled, but ${name} was not recorded: ${(err as Error).message}`)
        }
      }
      if (flags.output !== undefined) {
        const { copyBlobFile } = await import('../../util/fs.ts')
        await copyBlobFile(await store.content.path(digest), flags.output)
      }
      const banned = [...new Set(result.blobs.flatMap(b => b.banned))]
      if (flags.json === true) {
        ctx.out.json({ digest, name: recorded ?? null, blobs: result.blobs.length, size: total, fetched, peers: [...peers], banned })
        return
      }
      ctx.out.line(`pulled ${digest}: ${result.blobs.length} blob${result.blobs.length === 1 ? '' : 's'}, ${formatBytes(total)} (${formatBytes(fetched)} fetched from ${peers.size} peer${peers.size === 1 ? '' : 's'})`)
      for (const b of result.blobs) if (b.banned.length > 0) ctx.out.warn(`banned for sending bad bytes: ${b.banned.join(', ')}`)
    })
}
