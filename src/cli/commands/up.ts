/**
 * `kiln up`: everything one node needs, in one process on the data dir: the
 * agent (joins the network with mdns on, advertises, serves and announces
 * the store, takes build jobs from trusted requesters), the gateway on
 * loopback (pull-through from peers, tag records, mirrors), and the
 * gateway's build extension backed by the local rootless builder. Prints
 * what to run next; stops cleanly on SIGINT/SIGTERM.
 */
import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { collectList as collect, DRAIN_TIMEOUT_HELP, RELAY_HELP, RELAY_VIA_HELP, durationFlag, gatewayFlags, logLevelFlag, splitHostPort } from '../flags.ts'
import type { GatewayFlagValues } from '../flags.ts'
import { checkMultiaddrFlags } from '../multiaddr-flags.ts'
import { startMetricsFor } from '../services.ts'

/** `kiln up` has the gateway's flags but `--delete`. */
interface UpFlags extends Omit<GatewayFlagValues, 'deleteEnabled'> {
  gatewayListen?: string
  listen?: string
  bootstrap?: string
  mdns?: boolean
  relay?: boolean
  relayVia?: string
  upstream?: string[]
  jobs?: boolean
  localBuilds?: boolean
  json?: boolean
  metricsListen?: string
  drainTimeout?: string
}

export function register (program: Command, ctx: CliContext): void {
  program.command('up')
    .description('start an agent, a gateway and a local builder in one process on the data dir, and print what to run next')
    .option('--gateway-listen <host:port>', 'gateway address (default from config, 127.0.0.1:5000)')
    .option('--listen <multiaddrs>', 'comma-separated multiaddrs for the peer network (default from config: /ip4/0.0.0.0/tcp/4001 and /ip4/0.0.0.0/tcp/4002/tls; a list without a /tls address gets one on a free port)')
    .option('--bootstrap <multiaddrs>', 'comma-separated multiaddrs (with /p2p/<id>) to join through')
    .option('--no-mdns', 'do not look for peers on the local network (on by default)')
    .option('--relay', RELAY_HELP)
    .option('--relay-via <multiaddrs>', RELAY_VIA_HELP)
    .option('--upstream <ns[=url]>', 'registry the gateway mirrors after the peer network (repeatable), e.g. docker.io', collect)
    .option('--no-jobs', 'do not take build jobs from the network')
    .option('--no-local-builds', 'do not build the gateway\'s builds (/v2/<name>/_kiln/builds) on this node: with gateway.builds auto (the default) they all go to the network as jobs')
    .option('--anonymous-push', 'let anyone on this machine push to the gateway (loopback only)')
    .option('--no-anonymous-read', 'require a login to pull from the gateway')
    .option('--users <file>', 'gateway users file (default <data-dir>/gateway/users.yaml if present)')
    .option('--tls-cert <file>', 'PEM certificate chain: serve the gateway over HTTPS')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--insecure-listen', 'allow plain HTTP on a non-loopback gateway address')
    .option('--json', 'print { url, peerId, multiaddrs, dataDir, metricsUrl? } as JSON once up')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (default from config: metrics.listen, off)')
    .option('--drain-timeout <duration>', DRAIN_TIMEOUT_HELP, '90s')
    .addHelpText('after', `
SIGTERM drains as for kiln agent; SIGHUP reloads logLevel, agent.allowNetwork,
agent.maxConcurrentBuilds and kiln.yaml's trust section. Changes made with kiln trust (add-peer,
add-root, add-cert) apply to the agent and the gateway at their next decision, without a signal.

The gateway serves a read-only status page at http://HOST:PORT/_kiln/status (peers, jobs and
builds with their logs, store usage, recent pulls), behind its auth (docs/gateway.md).

Examples:
  kiln up
  kiln up --metrics-listen 127.0.0.1:9464
  kiln up --gateway-listen 127.0.0.1:5000 --listen /ip4/0.0.0.0/tcp/4001 --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...
  kiln up --anonymous-push --upstream docker.io`)
    .action(async (flags: UpFlags, command: Command) => {
      const { createLocalBuildRunner, followLogLevel, runAgentUntilStopped, sandboxForOthers, startAgentNode, startGatewayNode } = await import('../../node/index.ts')
      await checkMultiaddrFlags(flags)
      const config = await ctx.config()
      const { host, port } = splitHostPort(flags.gatewayListen ?? config.gateway.listen, '--gateway-listen')
      const drainMs = durationFlag('--drain-timeout', flags.drainTimeout ?? '90s')
      const root = await ctx.logger()
      const setLogLevel = await followLogLevel(root)
      const log = root.child({ component: 'up' })
      const identity = await ctx.identity()
      const store = await ctx.store()
      const self = identity.peerId.toString()
      const { sweepAtStart } = await import('../sweep-at-start.ts')
      await sweepAtStart(store.root, log)
      const nodeSandbox = await sandboxForOthers(config, [...(flags.jobs === false ? [] : ['--no-jobs']), ...(flags.localBuilds === false ? [] : ['--no-local-builds'])])
      const { metrics, url: metricsUrl } = await startMetricsFor(ctx, flags.metricsListen)
      const started = await startAgentNode({
        config,
        store,
        identity,
        metrics,
        log,
        network: { ...flags, mdns: flags.mdns ?? true },
        ...(flags.jobs === false ? {} : { jobs: { concurrency: config.agent.maxConcurrentBuilds, allowNetwork: config.agent.allowNetwork, ...nodeSandbox } })
      })
      const { node, agent, description } = started
      if (nodeSandbox.othersRefused !== undefined) started.log.warn({ reason: nodeSandbox.othersRefused }, 'jobs of other peers and gateway builds on this node are refused')
      // Also on an error below; after a drain it is already stopped (stop is idempotent).
      ctx.onClose(started.close)
      // Signals are handled from here on, before anything says "listening" (see kiln agent).
      const running = runAgentUntilStopped(started, { drainMs, setLogLevel, flags: logLevelFlag(command) })
      const builder = flags.localBuilds === false ? undefined : await createLocalBuildRunner(store, nodeSandbox)
      const service = await startGatewayNode({
        config,
        store,
        log: root,
        host,
        port,
        ...gatewayFlags(flags),
        ...(flags.upstream === undefined ? {} : { upstreams: flags.upstream }),
        // The agent's job transport too: the node has one handler for the job protocol, and the gateway's network builds are jobs.
        network: { node, transfer: agent.transfer, privateKey: identity.privateKey, ...(agent.jobTransport !== undefined ? { transport: agent.jobTransport } : {}) },
        // One live trust for both: a change of the trust files, or SIGHUP, reaches the gateway too.
        trust: started.trust,
        agent: { description, ...(agent.jobs === undefined ? {} : { jobs: agent.jobs }) },
        ...(builder === undefined ? {} : { builder, builderPlatforms: [...description.platforms.map(p => p.platform), ...description.emulated] }),
        metrics
      })
      ctx.onClose(service.close)

      const multiaddrs = node.getMultiaddrs().map(m => m.toString())
      if (flags.json === true) {
        ctx.out.json({ url: service.url, peerId: self, multiaddrs, dataDir: store.root, ...(metricsUrl !== undefined ? { metricsUrl } : {}) })
      } else {
        const gw = service.url.replace(/^https?:\/\//, '')
        const tlsFlag = service.tls ? '' : '--tls-verify=false '
        const shareable = multiaddrs.find(m => !m.includes('/127.0.0.1/') && !m.includes('/::1/')) ?? multiaddrs[0] ?? ''
        const lines = [
          'kiln is up',
          `  data dir:  ${store.root}`,
          `  peer id:   ${self}`,
          ...multiaddrs.map(m => `  p2p:       ${m}`),
          `  gateway:   ${service.url} (anonymous ${service.anonymous}${buildsSummary(service.builds, builder)})`,
          `  status:    ${service.url}/_kiln/status`,
          ...(nodeSandbox.othersRefused !== undefined ? [`  refused:   jobs of other peers and gateway builds on this node: ${nodeSandbox.othersRefused}`] : []),
          `  agent:     ${description.platforms.map(p => p.platform).join(', ')}${agent.jobs === undefined ? ', no jobs' : ', taking jobs from trusted requesters'}`,
          ...(metricsUrl !== undefined ? [`  metrics:   ${metricsUrl}`] : []),
          '',
          'next:',
          '  kiln build -t demo/hello:1 ./context          # build here; the gateway serves it at once',
          `  skopeo copy --src-tls-verify=false docker://${gw}/demo/hello:1 oci:./hello:1`,
          `  podman pull ${tlsFlag}${gw}/demo/hello:1`,
          `  skopeo list-tags ${tlsFlag}docker://${gw}/demo/hello`,
          `  kiln submit --platform linux/arm64 -t demo/hello:1 --bootstrap ${shareable} ./context`,
          `  kiln up --bootstrap ${shareable}         # on another node, to join this one`,
          '',
          'Ctrl-C stops everything.'
        ]
        for (const line of lines) ctx.out.line(line)
      }
      await running
    })
}

/** What the gateway line says of builds: where they run, from the runner chosen by gateway.builds. */
function buildsSummary (runner: string | undefined, local: { refuses?: string } | undefined): string {
  if (runner === undefined) return local?.refuses !== undefined ? ', builds refused' : ''
  if (runner === 'local') return local?.refuses !== undefined ? ', builds refused' : ', local builds'
  if (runner === 'network') return ', builds on the network'
  return ', local builds, other platforms on the network'
}
