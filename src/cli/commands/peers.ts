import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { checkMultiaddrFlags } from '../multiaddr-flags.ts'

interface PeersFlags {
  listen?: string
  bootstrap?: string
  mdns?: boolean
  platform?: string
  capability?: string
  json?: boolean
  timeout: string
}

/** Refuses a capability no agent could provide a key for, before any search: `gpu=nvidia` names a value, not a capability. */
async function checkCapability (value: string): Promise<void> {
  // Loaded here, not at the top: `kiln --help` registers every command and should not load zod.
  const [{ CapabilityName }, { expectedText }] = await Promise.all([import('../../../protocols/capability.ts'), import('../../config/index.ts')])
  const parsed = CapabilityName.safeParse(value)
  if (parsed.success) return
  const [name] = value.split('=')
  throw new CliError(`--capability: expected a capability name like gpu, cuda or mpi (${parsed.error.issues.map(expectedText).join('; ')}), got ${JSON.stringify(value)}`, {
    exitCode: 2,
    hint: value.includes('=') && name !== undefined && CapabilityName.safeParse(name).success
      ? `capabilities are searched by name only: try --capability ${name}, and see the CAPABILITIES column for what each agent offers`
      : 'kiln peers without --capability lists what each agent offers in its CAPABILITIES column'
  })
}

export function register (program: Command, ctx: CliContext): void {
  program.command('peers')
    .description('list build agents on the network, with what they build and how busy they are')
    .option('--platform <platform>', 'only agents that build this platform natively, e.g. linux/arm64')
    .option('--capability <name>', 'only agents offering this capability, e.g. gpu, cuda, mpi')
    .option('--bootstrap <multiaddrs>', 'comma-separated multiaddrs (with /p2p/<id>) to join through')
    .option('--listen <multiaddrs>', 'comma-separated multiaddrs to listen on (default: a free port)')
    .option('--no-mdns', 'do not look for peers on the local network')
    .option('--timeout <seconds>', 'how long to search', '10')
    .option('--json', 'print the verified capability records as JSON')
    .addHelpText('after', '\nExample:\n  kiln peers --platform linux/arm64 --capability gpu --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...')
    .action(async (flags: PeersFlags) => {
      const [{ findAgents }, { parsePlatform, formatPlatform }] = await Promise.all([
        import('../../p2p/index.ts'), import('../../oci/platform.ts')
      ])
      const timeoutMs = Number(flags.timeout) * 1000
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new CliError(`--timeout must be a positive number of seconds, not ${flags.timeout}`, { exitCode: 2 })
      let platform: string | undefined
      try {
        platform = flags.platform !== undefined ? formatPlatform(parsePlatform(flags.platform)) : undefined
      } catch (err) {
        throw new CliError((err as Error).message, { exitCode: 2 })
      }
      if (flags.capability !== undefined) await checkCapability(flags.capability)
      await checkMultiaddrFlags(flags)
      const config = await ctx.config()
      const identity = await ctx.identity()
      const { startPeer, untilFirstPeer } = await import('../../node/index.ts')
      const node = await startPeer(config.node, flags, identity.privateKey, true)
      ctx.onClose(async () => { await node.stop() })
      const { peerSearchSources, sayingPeerSearch } = await import('../peer-search.ts')
      await sayingPeerSearch(ctx.out, peerSearchSources(flags, config.node), untilFirstPeer(node, Math.min(timeoutMs, 5000), 'pass --bootstrap /ip4/HOST/tcp/PORT/p2p/PEERID of a running agent, or run one on this network (mdns)'))
      // Let the DHT routing table fill from the first peers before querying.
      await new Promise(resolve => setTimeout(resolve, 500))
      const records = await findAgents(node, { platform, capability: flags.capability, timeoutMs })
      records.sort((a, b) => (a.institution ?? '').localeCompare(b.institution ?? '') || a.peerId.localeCompare(b.peerId))
      if (flags.json === true) { ctx.out.json(records); return }
      if (records.length === 0) { ctx.out.warn('no agents found'); return }
      const ago = (t: number): string => { const s = Math.max(0, Math.round((Date.now() - t) / 1000)); return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago` }
      ctx.out.table(records, [
        { header: 'PEER', value: r => r.peerId },
        { header: 'INSTITUTION', value: r => r.institution ?? '-' },
        { header: 'PLATFORMS', value: r => [...r.platforms.map(p => p.platform), ...r.emulated.map(p => `${p}(emu)`)].join(',') },
        { header: 'CAPABILITIES', value: r => r.capabilities.join(',') || '-' },
        { header: 'QUEUE', value: r => `${r.queue.running}+${r.queue.queued}`, right: true },
        { header: 'LAST SEEN', value: r => ago(r.issuedAt) }
      ])
    })
}
