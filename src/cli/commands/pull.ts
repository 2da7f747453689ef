import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { checkMultiaddrFlags } from '../multiaddr-flags.ts'
import { EXIT } from '../exit-codes.ts'
import { NoProvidersError } from '../../transfer/errors.ts'
import { isErrorOf } from '../../util/error-class.ts'
import type { KilnConfig } from '../../config/index.ts'
import type { Digest } from '../../content/index.ts'
import type { KilnNode } from '../../p2p/index.ts'
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
    .description('fetch an image (or any blob) from the peer network into the local store, by digest or by a tag the network\'s signed tag records name')
    .argument('<ref>', 'REPO[:TAG] (resolved through signed tag records that the trust policy accepts, then pulled by digest and named locally), sha256:<hex>, or REPO:TAG@sha256:<hex> (the tag is recorded locally)')
    .option('--output <dest>', 'also write the blob to this file (for a single blob) ')
    .option('--from <peers>', 'comma-separated peer ids known to hold it, asked first')
    .option('--bootstrap <multiaddrs>', 'comma-separated multiaddrs (with /p2p/<id>) to join through')
    .option('--listen <multiaddrs>', 'comma-separated multiaddrs to listen on (default: a free port)')
    .option('--no-mdns', 'do not look for peers on the local network')
    .option('--json', 'print JSON: { digest, name, blobs, size, fetched, peers, banned, signer }')
    .addOption(progressOption())
    .addHelpText('after', `
A tag is taken from the newest tag record whose signer the trust policy
accepts as builder or gateway (kiln trust ls), as the gateway does; the
image is then fetched by that digest and checked byte for byte.

Examples:
  kiln pull hpc/app:1.0 --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...
  kiln pull sha256:4f1c...e9
  kiln pull myapp:1.0@sha256:4f1c...e9
  kiln pull sha256:4f1c...e9 --progress=json 2>events.jsonl`)
    .action(async (ref: string, flags: PullFlags) => {
      const [{ splitList }, { createTransfer }, { parseDigest }, { formatBytes }] = await Promise.all([
        import('../../p2p/index.ts'), import('../../transfer/index.ts'), import('../../content/index.ts'), import('../output.ts')
      ])
      const at = ref.lastIndexOf('@')
      const byTag = at < 0 && !/^[a-z0-9]+:[0-9a-f]{32,}$/i.test(ref)
      let name = at > 0 ? ref.slice(0, at) : undefined
      let digest
      if (byTag) {
        const { parseTagName } = await import('../local-image.ts')
        const { repository, tag } = await parseTagName(ref)
        name = `${repository}:${tag}`
      } else {
        try {
          digest = parseDigest(at > 0 ? ref.slice(at + 1) : ref)
        } catch (err) {
          throw new CliError((err as Error).message, { exitCode: 2, hint: 'pull takes REPO[:TAG], a digest sha256:<64 hex>, or REPO:TAG@sha256:<64 hex>' })
        }
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
      let signer: string | undefined
      if (digest === undefined) {
        const resolved = await resolveTag(name as string, node, store.root, config)
        digest = resolved.digest
        signer = resolved.signer
        if (flags.json !== true) progress.print(`${name as string} is ${digest} (tag record signed by ${signer})`)
      }
      const wanted = digest
      const transfer = createTransfer({ node, store: store.content })
      let result
      try {
        result = await transfer.pull(wanted, {
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
          const mediaType = parseManifestBytes(await store.content.readBytes(wanted, 4 * 1024 * 1024)).mediaType
          store.refs.set(repository, tag, { digest: wanted, mediaType, size: root?.size ?? 0 })
          recorded = `${repository}:${tag}`
        } catch (err) {
          ctx.out.warn(`pulled, but ${name} was not recorded: ${(err as Error).message}`)
        }
      }
      if (flags.output !== undefined) {
        const { copyBlobFile } = await import('../../util/fs.ts')
        await copyBlobFile(await store.content.path(wanted), flags.output)
      }
      const banned = [...new Set(result.blobs.flatMap(b => b.banned))]
      if (flags.json === true) {
        ctx.out.json({ digest: wanted, name: recorded ?? null, blobs: result.blobs.length, size: total, fetched, peers: [...peers], banned, signer: signer ?? null })
        return
      }
      ctx.out.line(`pulled ${wanted}: ${result.blobs.length} blob${result.blobs.length === 1 ? '' : 's'}, ${formatBytes(total)} (${formatBytes(fetched)} fetched from ${peers.size} peer${peers.size === 1 ? '' : 's'})`)
      for (const b of result.blobs) if (b.banned.length > 0) ctx.out.warn(`banned for sending bad bytes: ${b.banned.join(', ')}`)
    })
}

/**
 * `REPO:TAG` to the digest the network's newest trusted tag record names
 * (src/node's resolveNetworkTag, the gateway's rule), or a CliError that
 * says which records were found and why none counted.
 */
async function resolveTag (name: string, node: KilnNode, dataDir: string, config: KilnConfig): Promise<{ digest: Digest, signer: string }> {
  const [{ loadTrustPolicy }, { resolveNetworkTag }] = await Promise.all([import('../../trust/index.ts'), import('../../node/index.ts')])
  const colon = name.lastIndexOf(':')
  const [repository, tag] = [name.slice(0, colon), name.slice(colon + 1)]
  const policy = await loadTrustPolicy(dataDir, { self: node.peerId.toString(), config: config.trust })
  const { target, skipped } = await resolveNetworkTag(node, policy, repository, tag)
  if (target !== undefined) return { digest: target.digest, signer: target.signer }
  if (skipped.length > 0) {
    throw new CliError(`no trusted tag record for ${name}: ${skipped.length} found, none counted (${skipped.map(s => `${s.signer}: ${s.reason}`).join('; ')})`, {
      exitCode: EXIT.verification,
      hint: 'trust the signer as a builder or gateway (kiln trust add-root FILE --roles builder, or kiln trust add-peer PEERID --roles builder), or pull by digest'
    })
  }
  throw new CliError(`no tag record for ${name} on the network`, { exitCode: EXIT.notFound, hint: 'was it built with kiln submit -t or pushed to a kiln gateway? pull by digest with kiln pull sha256:..., or join through --bootstrap' })
}
