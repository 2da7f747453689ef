import type { Command } from 'commander'
import type { CliContext } from '../context.ts'

export function register (program: Command, ctx: CliContext): void {
  const key = program.command('key').description('the node identity (an Ed25519 key; its public half is the peer id)')
  key.command('show')
    .description('print this node\'s peer id, creating the key on first use')
    .option('--json', 'print JSON: { peerId, publicKey, path, created }')
    .addHelpText('after', '\nExample:\n  kiln key show --json | jq -r .peerId')
    .action(async (opts: { json?: boolean }) => {
      const id = await ctx.identity()
      const publicKey = Buffer.from(id.privateKey.publicKey.raw).toString('base64')
      if (opts.json === true) ctx.out.json({ peerId: id.peerId.toString(), publicKey, path: id.path, created: id.created })
      else {
        ctx.out.line(`peer id:    ${id.peerId.toString()}`)
        ctx.out.line(`public key: ed25519:${publicKey}`)
        ctx.out.line(`key file:   ${id.path}${id.created ? ' (created now)' : ''}`)
      }
    })
}
