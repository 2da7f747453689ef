import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'

interface AgentFlags {
  listen?: string
  bootstrap?: string
  mdns?: boolean
  relay?: boolean
  platform?: string
  institution?: string
  maxBuilds?: string
  allowNetwork?: boolean
  jobs?: boolean
}

export function register (program: Command, ctx: CliContext): void {
  program.command('agent')
    .description('run a build agent in the foreground: join the network, advertise capabilities, serve the store')
    .option('--listen <multiaddrs>', 'comma-separated multiaddrs to listen on (default from config: /ip4/0.0.0.0/tcp/4001)')
    .option('--bootstrap <multiaddrs>', 'comma-separated multiaddrs (with /p2p/<id>) to join through')
    .option('--no-mdns', 'do not look for peers on the local network')
    .option('--platform <platforms>', 'comma-separated platforms to advertise (default: this host\'s)')
    .option('--relay', 'relay connections for peers that nobody can dial')
    .option('--institution <name>', 'institution named in the capability record')
    .option('--max-builds <n>', 'jobs built at once (default: agent.maxConcurrentBuilds, 1)')
    .option('--allow-network', 'let RUN steps of jobs that ask for it use the network (default: agent.allowNetwork, off)')
    .option('--no-jobs', 'do not take build jobs: only advertise and serve the store')
    .addHelpText('after', '\nBuild jobs come from requesters the trust policy accepts (kiln trust ls); the agent presents its\nown certificates (kiln trust add-cert). See docs/jobs.md.\n\nExample:\n  kiln agent --listen /ip4/0.0.0.0/tcp/4001 --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW... --institution hpc.example.org --max-builds 2')
    .action(async (flags: AgentFlags) => {
      const [{ createKilnNode, nodeInitFromOptions, splitList }, { startAgent }, { detectCapabilities }, { parsePlatform, formatPlatform }] = await Promise.all([
        import('../../p2p/index.ts'), import('../../../agent/runtime.ts'), import('../../../agent/capabilities.ts'), import('../../oci/platform.ts')
      ])
      const config = await ctx.config()
      const log = (await ctx.logger()).child({ component: 'agent' })
      let platforms: string[] | undefined
      try {
        platforms = splitList(flags.platform)?.map(p => formatPlatform(parsePlatform(p)))
      } catch (err) {
        throw new CliError((err as Error).message, { exitCode: 2 })
      }
      if (platforms === undefined && config.agent.platforms.length > 0) platforms = config.agent.platforms
      const institution = flags.institution ?? (config.agent.institution !== '' ? config.agent.institution : undefined)
      let maxBuilds = config.agent.maxConcurrentBuilds
      if (flags.maxBuilds !== undefined) {
        maxBuilds = Number(flags.maxBuilds)
        if (!Number.isInteger(maxBuilds) || maxBuilds < 1 || maxBuilds > 64) throw new CliError(`--max-builds ${flags.maxBuilds}: expected an integer from 1 to 64`, { exitCode: 2 })
      }
      const identity = await ctx.identity()
      const store = await ctx.store()
      const self = identity.peerId.toString()
      const { loadTrustPolicy, loadCertificates } = await import('../../trust/index.ts')
      let policy
      try {
        policy = await loadTrustPolicy(store.root, { self, config: config.trust })
      } catch (err) {
        throw new CliError((err as Error).message, { exitCode: 2, hint: 'fix the trust policy (kiln trust ls shows it)' })
      }
      const certs = await loadCertificates(store.root, self, (file, reason) => { log.warn({ file, reason }, 'certificate skipped') })
      const description = await detectCapabilities({ platforms, institution, dataDir: store.root })
      let node
      try {
        node = await createKilnNode(await nodeInitFromOptions(config.node, flags, identity.privateKey, false))
      } catch (err) {
        throw new CliError(`cannot start the node: ${(err as Error).message}`, { exitCode: 6, hint: 'is another agent using the port? pick one with --listen /ip4/0.0.0.0/tcp/PORT' })
      }
      const peerLog = log.child({ peerId: node.peerId.toString() })
      const agent = await startAgent({
        node,
        privateKey: identity.privateKey,
        store: store.content,
        log: peerLog,
        describe: async () => await detectCapabilities({ platforms, institution, dataDir: store.root }),
        ...(flags.jobs === false
          ? {}
          : {
              jobs: {
                db: store.db,
                refs: store.refs,
                dataDir: store.root,
                policy,
                certs,
                platforms: description.platforms.map(p => p.platform),
                capabilities: [...description.capabilities, ...config.agent.capabilities],
                concurrency: maxBuilds,
                allowNetwork: flags.allowNetwork === true || config.agent.allowNetwork,
                ...(institution !== undefined ? { institution } : {})
              }
            })
      })
      ctx.out.line(`peer id: ${node.peerId.toString()}`)
      for (const ma of node.getMultiaddrs()) ctx.out.line(`listening: ${ma.toString()}`)
      ctx.out.line(`advertising: ${description.platforms.map(p => p.platform).join(', ')}${description.capabilities.length > 0 ? ` + ${description.capabilities.join(', ')}` : ''}`)
      if (agent.jobs !== undefined) ctx.out.line(`taking jobs: up to ${maxBuilds} at once, ${certs.length} certificate${certs.length === 1 ? '' : 's'} presented, network for RUN ${flags.allowNetwork === true || config.agent.allowNetwork ? 'allowed' : 'off'}`)
      node.addEventListener('peer:connect', (evt) => { peerLog.info({ peer: evt.detail.toString() }, 'peer connected') })
      node.addEventListener('peer:disconnect', (evt) => { peerLog.info({ peer: evt.detail.toString() }, 'peer disconnected') })
      await new Promise<void>(resolve => {
        const stop = (signal: string): void => {
          peerLog.info({ signal }, 'stopping')
          agent.stop().then(resolve, (err: Error) => { peerLog.error({ err }, 'stop failed'); resolve() })
        }
        process.once('SIGINT', () => { stop('SIGINT') })
        process.once('SIGTERM', () => { stop('SIGTERM') })
      })
      peerLog.info('stopped')
    })
}
