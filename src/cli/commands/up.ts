/**
 * `kiln up`: everything one node needs, in one process on the data dir: the
 * agent (joins the network with mdns on, advertises, serves and announces
 * the store, takes build jobs from trusted requesters), the gateway on
 * loopback (pull-through from peers, tag records, mirrors), and the
 * gateway's build extension backed by the local rootless builder. Prints
 * what to run next; stops cleanly on SIGINT/SIGTERM.
 */
import type { Command } from 'commander'
import type { LocalStore } from '../../content/index.ts'
import type { BuildRunner } from '../../gateway/index.ts'
import type { CliContext } from '../context.ts'
import type { NodeSandbox } from '../agent-setup.ts'
import { startNode } from '../start-node.ts'
import { mkdirPrivate } from '../../util/fs.ts'
import { durationFlag } from '../flags.ts'
import { logLevelFlag } from './agent.ts'
import { collect, pick, splitHostPort, startGatewayService, startMetricsFor } from './gateway.ts'
import { scratchPrefix } from '../../util/owner.ts'

interface UpFlags {
  gatewayListen?: string
  listen?: string
  bootstrap?: string
  mdns?: boolean
  upstream?: string[]
  jobs?: boolean
  localBuilds?: boolean
  anonymousRead?: boolean
  anonymousPush?: boolean
  users?: string
  tlsCert?: string
  tlsKey?: string
  insecureListen?: boolean
  json?: boolean
  metricsListen?: string
  drainTimeout?: string
}

/**
 * The gateway's builds on this node: the context tar is unpacked safely into
 * a temp dir under the data dir, the recipe parsed, and the rootless builder
 * run for the job's platform (others than this host's fail unless emulated).
 */
export async function createLocalBuildRunner (store: LocalStore, workDir: string, nodeSandbox: NodeSandbox): Promise<BuildRunner> {
  const [{ mkdtemp, rm }, { join }, { createBuilder, instructionSummary }, { parseRecipe }, { extractLayer }] = await Promise.all([
    import('node:fs/promises'), import('node:path'), import('../../builder/index.ts'), import('../../recipe/index.ts'), import('../../oci/index.ts')
  ])
  const builder = createBuilder({ store: store.content, db: store.db, refs: store.refs, workDir, probeCacheDir: workDir, ...(nodeSandbox.sandbox === undefined ? {} : { sandbox: nodeSandbox.sandbox }) })
  return {
    name: 'local',
    ...(nodeSandbox.othersRefused !== undefined ? { refuses: nodeSandbox.othersRefused } : {}),
    run: async (job, io) => {
      await mkdirPrivate(workDir)
      const contextDir = await mkdtemp(join(workDir, scratchPrefix('gateway-context-')))
      try {
        if (job.context !== undefined) await extractLayer(store.content.read(job.context), contextDir, { signal: io.signal })
        const plan = parseRecipe(job.recipe.text, {
          filename: job.recipe.kind === 'apptainer' ? 'Singularity.def' : 'Dockerfile',
          buildArgs: job.buildArgs,
          platform: job.platform,
          ...(job.target === undefined ? {} : { target: job.target })
        })
        let partial = ''
        const result = await builder.build(plan, {
          contextDir,
          platform: job.platform,
          signal: io.signal,
          onEvent: (e) => {
            if (e.type === 'step') { io.step(e.index, e.total); io.log(`[${e.index}/${e.total}] ${instructionSummary(e.text)}`) }
            if (e.type === 'warning') io.log(`warning: ${e.message}`)
            if (e.type === 'step-done' && e.cached) io.log('cached')
            if (e.type === 'output') {
              const lines = (partial + Buffer.from(e.chunk).toString('utf8')).split('\n')
              partial = lines.pop() ?? ''
              for (const line of lines) io.log(line)
            }
          }
        })
        if (partial !== '') io.log(partial)
        return result.descriptor
      } finally {
        await rm(contextDir, { recursive: true, force: true })
      }
    }
  }
}

export function register (program: Command, ctx: CliContext): void {
  program.command('up')
    .description('start an agent, a gateway and a local builder in one process on the data dir, and print what to run next')
    .option('--gateway-listen <host:port>', 'gateway address (default from config, 127.0.0.1:5000)')
    .option('--listen <multiaddrs>', 'comma-separated multiaddrs for the peer network (default from config: /ip4/0.0.0.0/tcp/4001 and /ip4/0.0.0.0/tcp/4002/tls; a list without a /tls address gets one on a free port)')
    .option('--bootstrap <multiaddrs>', 'comma-separated multiaddrs (with /p2p/<id>) to join through')
    .option('--no-mdns', 'do not look for peers on the local network (on by default)')
    .option('--upstream <ns[=url]>', 'registry the gateway mirrors after the peer network (repeatable), e.g. docker.io', collect)
    .option('--no-jobs', 'do not take build jobs from the network')
    .option('--no-local-builds', 'do not build for the gateway\'s build extension (/v2/<name>/_kiln/builds)')
    .option('--anonymous-push', 'let anyone on this machine push to the gateway (loopback only)')
    .option('--no-anonymous-read', 'require a login to pull from the gateway')
    .option('--users <file>', 'gateway users file (default <data-dir>/gateway/users.yaml if present)')
    .option('--tls-cert <file>', 'PEM certificate chain: serve the gateway over HTTPS')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--insecure-listen', 'allow plain HTTP on a non-loopback gateway address')
    .option('--json', 'print { url, peerId, multiaddrs, dataDir, metricsUrl? } as JSON once up')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (default from config: metrics.listen, off)')
    .option('--drain-timeout <duration>', 'on SIGTERM, how long running builds may finish before they are handed back (e.g. 90s, 9m)', '90s')
    .addHelpText('after', `
SIGTERM drains as for kiln agent; SIGHUP reloads the trust policy, logLevel, agent.allowNetwork and
agent.maxConcurrentBuilds.

Examples:
  kiln up
  kiln up --metrics-listen 127.0.0.1:9464
  kiln up --gateway-listen 127.0.0.1:5000 --listen /ip4/0.0.0.0/tcp/4001 --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...
  kiln up --anonymous-push --upstream docker.io`)
    .action(async (flags: UpFlags, command: Command) => {
      const [{ startAgent }, { detectCapabilities }, { join }] = await Promise.all([
        import('../../../agent/runtime.ts'), import('../../../agent/capabilities.ts'), import('node:path')
      ])
      const { followLogLevel, handleSignals, loadRunSettings } = await import('../../../agent/lifecycle.ts')
      const config = await ctx.config()
      const { host, port } = splitHostPort(flags.gatewayListen ?? config.gateway.listen, '--gateway-listen')
      const drainMs = durationFlag('--drain-timeout', flags.drainTimeout ?? '90s')
      const root = await ctx.logger()
      const setLogLevel = followLogLevel(root)
      const log = root.child({ component: 'up' })
      const identity = await ctx.identity()
      const store = await ctx.store()
      const self = identity.peerId.toString()
      const { sweepAtStart } = await import('../sweep-at-start.ts')
      await sweepAtStart(store.root, log)
      const { loadAgentTrust, agentOptions, sandboxForOthers } = await import('../agent-setup.ts')
      const trust = await loadAgentTrust(config, store, self, log)
      const nodeSandbox = await sandboxForOthers(config, store.root, [...(flags.jobs === false ? [] : ['--no-jobs']), ...(flags.localBuilds === false ? [] : ['--no-local-builds'])])
      const { policy } = trust
      const { metrics, url: metricsUrl } = await startMetricsFor(ctx, flags.metricsListen)
      const platforms = config.agent.platforms.length > 0 ? config.agent.platforms : undefined
      const institution = config.agent.institution !== '' ? config.agent.institution : undefined
      const describe = async (): Promise<Awaited<ReturnType<typeof detectCapabilities>>> => await detectCapabilities({ platforms, institution, dataDir: store.root })
      const description = await describe()
      const node = await startNode(config.node, { ...flags, mdns: flags.mdns ?? true }, identity.privateKey, false)
      const peerLog = log.child({ peerId: node.peerId.toString() })
      const agent = await startAgent(await agentOptions({
        node,
        privateKey: identity.privateKey,
        store,
        config,
        trust,
        metrics,
        log: peerLog,
        describe,
        description,
        ...(institution !== undefined ? { institution } : {}),
        ...(flags.jobs === false ? {} : { jobs: { concurrency: config.agent.maxConcurrentBuilds, allowNetwork: config.agent.allowNetwork, ...nodeSandbox } })
      }))
      if (nodeSandbox.othersRefused !== undefined) peerLog.warn({ reason: nodeSandbox.othersRefused }, 'jobs of other peers and gateway builds are refused')
      // Also on an error below; after a drain it is already stopped (stop is idempotent).
      ctx.onClose(async () => { await agent.stop() })
      const builder = flags.localBuilds === false ? undefined : await createLocalBuildRunner(store, join(store.root, 'build'), nodeSandbox)
      const service = await startGatewayService(ctx, store, {
        host,
        port,
        ...pick(flags),
        ...(flags.upstream === undefined ? {} : { upstreams: flags.upstream }),
        network: { node, transfer: agent.transfer, privateKey: identity.privateKey },
        ...(builder === undefined ? {} : { builder }),
        metrics
      })
      ctx.onClose(async () => { await service.close() })

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
          `  gateway:   ${service.url} (anonymous ${service.anonymous}${builder === undefined ? '' : builder.refuses === undefined ? ', local builds' : ', builds refused'})`,
          ...(nodeSandbox.othersRefused !== undefined ? [`  refused:   jobs of other peers and gateway builds: ${nodeSandbox.othersRefused}`] : []),
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
      const life = handleSignals({
        agent,
        drainMs,
        log: peerLog,
        current: { logLevel: config.logLevel, allowNetwork: config.agent.allowNetwork, maxConcurrentBuilds: config.agent.maxConcurrentBuilds, policy },
        reload: async () => await loadRunSettings({ ...(config.configFile !== undefined ? { configFile: config.configFile } : {}), dataDir: store.root, self, flags: logLevelFlag(command) }),
        setLogLevel
      })
      await life.stopped
    })
}
