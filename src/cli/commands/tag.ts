/**
 * `kiln tag [SOURCE] REPO:TAG [--publish]`: name an image in the local store,
 * and with --publish sign a tag record for the name (protocols/tag.md) and
 * store it in the network's DHT, so gateways that trust this node resolve
 * the name. The image's bytes are served by whoever holds them (an agent or
 * `kiln up` on this data dir announces the store).
 */
import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'

interface TagFlags {
  publish?: boolean
  bootstrap?: string
  listen?: string
  mdns?: boolean
  json?: boolean
}

export function register (program: Command, ctx: CliContext): void {
  program.command('tag')
    .usage('[options] SOURCE [REPO:TAG]')
    .description('name an image in the local store; --publish also signs a tag record and stores it on the peer network')
    .argument('<source>', 'the image: REPO:TAG or sha256:<digest> in the local store (alone: the name to publish)')
    .argument('[name]', 'REPO[:TAG] to give it (default: source, which must then be a name)')
    .option('--publish', 'sign a kiln/tag/v1 record for the name and put it on the DHT')
    .option('--bootstrap <multiaddrs>', 'comma-separated multiaddrs (with /p2p/<id>) to join through, for --publish')
    .option('--listen <multiaddrs>', 'comma-separated multiaddrs to listen on (default: a free port)')
    .option('--no-mdns', 'do not look for peers on the local network')
    .option('--json', 'print JSON: { repository, tag, digest, mediaType, size, published?: { signer, seq, storedOn } }')
    .addHelpText('after', `
Examples:
  kiln tag sha256:4f1c...e9 hpc/app:v1
  kiln tag hpc/app:v1 --publish --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...`)
    .action(async (first: string, second: string | undefined, flags: TagFlags) => {
      const { parseTagName, resolveLocalImage } = await import('../local-image.ts')
      const source = first
      const nameText = second ?? first
      const { repository, tag } = await parseTagName(nameText)
      const store = await ctx.store()
      const image = await resolveLocalImage(store, source)
      const target = { digest: image.descriptor.digest, mediaType: image.descriptor.mediaType, size: image.descriptor.size }
      store.refs.set(repository, tag, target)
      let published: { signer: string, seq: number, storedOn: number } | undefined
      if (flags.publish === true) {
        const [{ createKilnNode, nodeInitFromOptions, waitForPeers }, { publishTagRecord }, { loadCertificates }] = await Promise.all([
          import('../../p2p/index.ts'), import('../../p2p/tag-records.ts'), import('../../trust/index.ts')
        ])
        const config = await ctx.config()
        const identity = await ctx.identity()
        const node = await createKilnNode(await nodeInitFromOptions(config.node, flags, identity.privateKey, true))
        ctx.onClose(async () => { await node.stop() })
        if (!(await waitForPeers(node, 15_000))) {
          throw new CliError('no peer reachable to store the tag record', { exitCode: EXIT.network, hint: 'pass --bootstrap /ip4/HOST/tcp/PORT/p2p/PEERID of a running agent or gateway' })
        }
        const certificates = await loadCertificates(store.root, identity.peerId.toString())
        const result = await publishTagRecord(node, identity.privateKey, { repository, tag, ...target }, { certificates, signal: AbortSignal.timeout(60_000) })
        if (result.storedOn === 0) throw new CliError(`no peer stored the tag record for ${repository}:${tag}`, { exitCode: EXIT.network })
        published = { signer: result.record.signer, seq: result.record.payload.seq, storedOn: result.storedOn }
      }
      if (flags.json === true) ctx.out.json({ repository, tag, ...target, ...(published === undefined ? {} : { published }) })
      else {
        ctx.out.line(`${repository}:${tag} -> ${target.digest}`)
        if (published !== undefined) ctx.out.line(`published as ${published.signer} (seq ${published.seq}) on ${published.storedOn} peer${published.storedOn === 1 ? '' : 's'}`)
      }
    })
}
