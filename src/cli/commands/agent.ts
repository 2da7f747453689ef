import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { checkMultiaddrFlags } from '../multiaddr-flags.ts'
import { DRAIN_TIMEOUT_HELP, RELAY_HELP, RELAY_VIA_HELP, durationFlag, logLevelFlag } from '../flags.ts'
import { startMetricsFor } from '../services.ts'

interface AgentFlags {
  listen?: string
  bootstrap?: string
  mdns?: boolean
  relay?: boolean
  relayVia?: string
  platform?: string
  institution?: string
  maxBuilds?: string
  allowNetwork?: boolean
  jobs?: boolean
  metricsListen?: string
  drainTimeout?: string
}

export function register (program: Command, ctx: CliContext): void {
  program.command('agent')
    .description('run a build agent in the foreground: join the network, advertise capabilities, serve the store')
    .option('--listen <multiaddrs>', 'comma-separated multiaddrs to listen on (default from config: /ip4/0.0.0.0/tcp/4001 and /ip4/0.0.0.0/tcp/4002/tls; a list without a /tls address gets one on a free port)')
    .option('--bootstrap <multiaddrs>', 'comma-separated multiaddrs (with /p2p/<id>) to join through')
    .option('--no-mdns', 'do not look for peers on the local network')
    .option('--platform <platforms>', 'comma-separated platforms to advertise (default: this host\'s)')
    .option('--relay', RELAY_HELP)
    .option('--relay-via <multiaddrs>', RELAY_VIA_HELP)
    .option('--institution <name>', 'institution named in the capability record')
    .option('--max-builds <n>', 'jobs built at once (default: agent.maxConcurrentBuilds, 1)')
    .option('--allow-network', 'build jobs that ask for the network (kiln submit --network=default: every RUN gets it unless RUN --network=none); default: agent.allowNetwork, off')
    .option('--no-jobs', 'do not take build jobs: only advertise and serve the store')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (default from config: metrics.listen, off)')
    .option('--drain-timeout <duration>', DRAIN_TIMEOUT_HELP, '90s')
    .addHelpText('after', `
Build jobs come from requesters the trust policy accepts (kiln trust ls); the agent presents its
own certificates (kiln trust add-cert). See docs/jobs.md. Jobs run in the sandbox KILN_SANDBOX or
build.sandbox names (default auto); one that cannot isolate build steps from the agent (proot) builds
no job of another peer: named explicitly it stops the agent at start, picked as the only one that
works here it makes the agent decline those jobs (docs/security.md).

Signals: SIGTERM (or Ctrl-C) takes no new jobs, lets running builds finish for --drain-timeout,
hands back the rest and exits 0; a second one ends the drain. SIGHUP reloads kiln.yaml's logLevel,
agent.allowNetwork, agent.maxConcurrentBuilds and trust section. Changes made with kiln trust
(add-peer, add-root, add-cert) apply at the next job, without a signal. See docs/hpc-deployment.md.

A compute node that accepts no inbound connection is reached through a relay: run the login node's
agent with --relay, and the compute node's with --relay-via that agent's address (docs/network.md#relays).

Examples:
  kiln agent --listen /ip4/0.0.0.0/tcp/4001 --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW... --institution hpc.example.org --max-builds 2 --metrics-listen 127.0.0.1:9464
  kiln agent --relay --listen /ip4/0.0.0.0/tcp/4001          # on the login node
  kiln agent --listen '' --relay-via /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...   # on a compute node`)
    .action(async (flags: AgentFlags, command: Command) => {
      const [{ splitList }, { parsePlatform, formatPlatform }, { followLogLevel, runAgentUntilStopped, sandboxForOthers, startAgentNode }] = await Promise.all([
        import('../../p2p/index.ts'), import('../../oci/platform.ts'), import('../../node/index.ts')
      ])
      await checkMultiaddrFlags(flags)
      const config = await ctx.config()
      const drainMs = durationFlag('--drain-timeout', flags.drainTimeout ?? '90s')
      const root = await ctx.logger()
      const setLogLevel = await followLogLevel(root)
      const log = root.child({ component: 'agent' })
      let platforms: string[] | undefined
      try {
        platforms = splitList(flags.platform)?.map(p => formatPlatform(parsePlatform(p)))
      } catch (err) {
        throw new CliError((err as Error).message, { exitCode: 2 })
      }
      let maxBuilds = config.agent.maxConcurrentBuilds
      if (flags.maxBuilds !== undefined) {
        maxBuilds = Number(flags.maxBuilds)
        if (!Number.isInteger(maxBuilds) || maxBuilds < 1 || maxBuilds > 64) throw new CliError(`--max-builds ${flags.maxBuilds}: expected an integer from 1 to 64`, { exitCode: 2 })
      }
      const store = await ctx.store()
      const { sweepAtStart } = await import('../sweep-at-start.ts')
      await sweepAtStart(store.root, log)
      const { metrics, url: metricsUrl } = await startMetricsFor(ctx, flags.metricsListen)
      const nodeSandbox = await sandboxForOthers(config, flags.jobs === false ? [] : ['--no-jobs'])
      const allowNetwork = flags.allowNetwork === true || config.agent.allowNetwork
      const started = await startAgentNode({
        config,
        store,
        identity: await ctx.identity(),
        metrics,
        log,
        network: flags,
        ...(platforms !== undefined ? { platforms } : {}),
        ...(flags.institution !== undefined ? { institution: flags.institution } : {}),
        ...(flags.jobs === false ? {} : { jobs: { concurrency: maxBuilds, allowNetwork, ...nodeSandbox } })
      })
      const { node, description, agent } = started
      // Signals are handled from here on, before anything says "listening": a SIGTERM that follows that line
      // must drain and stop the agent, not kill it with the default action.
      const running = runAgentUntilStopped(started, {
        drainMs,
        setLogLevel,
        flags: {
          ...logLevelFlag(command),
          ...(flags.allowNetwork === true ? { allowNetwork: true } : {}),
          ...(flags.maxBuilds !== undefined ? { maxConcurrentBuilds: maxBuilds } : {})
        }
      })
      ctx.out.line(`peer id: ${node.peerId.toString()}`)
      for (const ma of node.getMultiaddrs()) ctx.out.line(`listening: ${ma.toString()}`)
      ctx.out.line(`advertising: ${description.platforms.map(p => p.platform).join(', ')}${description.capabilities.length > 0 ? ` + ${description.capabilities.join(', ')}` : ''}`)
      if (agent.jobs !== undefined) ctx.out.line(`taking jobs: up to ${maxBuilds} at once, ${started.trust.certs.length} certificate${started.trust.certs.length === 1 ? '' : 's'} presented, network for RUN ${allowNetwork ? 'allowed' : 'off'}`)
      if (nodeSandbox.othersRefused !== undefined) {
        ctx.out.line(`declining jobs of other peers: ${nodeSandbox.othersRefused}`)
        started.log.warn({ reason: nodeSandbox.othersRefused }, 'jobs of other peers are declined')
      }
      if (metricsUrl !== undefined) ctx.out.line(`metrics: ${metricsUrl}`)
      node.addEventListener('peer:connect', (evt) => { started.log.info({ peer: evt.detail.toString() }, 'peer connected') })
      node.addEventListener('peer:disconnect', (evt) => { started.log.info({ peer: evt.detail.toString() }, 'peer disconnected') })
      await running
    })
}
