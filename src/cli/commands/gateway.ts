/**
 * `kiln gateway`: serve the local store over the OCI distribution API, and
 * `kiln gateway hash-password` to make entries for the users file.
 *
 * Attached to the peer network (a multiaddr in --listen, --bootstrap or
 * --mdns), what the store lacks is pulled through from peers, unknown tags
 * resolve through signed tag records, and pushes publish tag records and
 * announce their blobs. `--upstream` adds registries to mirror after the
 * network. The gateway itself is started by src/node (startGatewayNode).
 */
import type { Command } from 'commander'
import type { GatewayPeer } from '../../node/index.ts'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { checkMultiaddrFlags } from '../multiaddr-flags.ts'
import { EXIT } from '../exit-codes.ts'
import { collectList as collect, gatewayFlags, splitHostPort } from '../flags.ts'
import type { GatewayFlagValues } from '../flags.ts'
import { startMetricsFor } from '../services.ts'

interface GatewayOptions extends GatewayFlagValues {
  metricsListen?: string
  listen?: string[]
  bootstrap?: string
  mdns?: boolean
  upstream?: string[]
  json?: boolean
}

async function readSecret (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

/** Resolves on SIGINT or SIGTERM. */
async function untilSignal (): Promise<string> {
  return await new Promise<string>(resolve => {
    const on = (signal: string) => () => { process.off('SIGINT', onInt); process.off('SIGTERM', onTerm); resolve(signal) }
    const onInt = on('SIGINT')
    const onTerm = on('SIGTERM')
    process.once('SIGINT', onInt)
    process.once('SIGTERM', onTerm)
  })
}

export function register (program: Command, ctx: CliContext): void {
  const gateway = program.command('gateway')
    .description('serve the local store to podman, skopeo, Apptainer and containerd over the OCI distribution API')
    .option('--listen <address>', 'HOST:PORT to serve HTTP on (default from config, 127.0.0.1:5000); a multiaddr (/ip4/...) also attaches the gateway to the peer network; repeatable or comma-separated', collect)
    .option('--bootstrap <multiaddrs>', 'attach to the peer network through these comma-separated multiaddrs (with /p2p/<id>)')
    .option('--mdns', 'attach to the peer network and find peers on the local network')
    .option('--upstream <ns[=url]>', 'mirror this registry after the peer network (repeatable): docker.io, quay.io=https://quay.io, localhost:5001=http://127.0.0.1:5001', collect)
    .option('--anonymous-read', 'let anyone pull (default from config: on)')
    .option('--no-anonymous-read', 'require a login to pull')
    .option('--anonymous-push', 'let anyone push and delete too (loopback only; for local use and CI)')
    .option('--tls-cert <file>', 'PEM certificate chain: serve HTTPS')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--insecure-listen', 'allow plain HTTP on a non-loopback address')
    .option('--users <file>', 'users file (YAML): names, password hashes, repository rules (default <data-dir>/gateway/users.yaml if present)')
    .option('--delete-enabled', 'allow DELETE of manifests, tags and blobs')
    .option('--json', 'print { url, peerId?, multiaddrs?, metricsUrl? } as JSON once listening')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (default from config: metrics.listen, off)')
    .addHelpText('after', `
Examples:
  kiln gateway --listen 127.0.0.1:5000
  kiln gateway --listen 127.0.0.1:5000 --metrics-listen 127.0.0.1:9464
  skopeo copy --src-tls-verify=false docker://127.0.0.1:5000/hpc/app:v1 oci:./app:v1
  kiln gateway --listen 127.0.0.1:5000 --listen /ip4/0.0.0.0/tcp/4003 --bootstrap /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...
  kiln gateway --listen 127.0.0.1:5000 --upstream docker.io
  kiln gateway --listen 0.0.0.0:5443 --tls-cert cert.pem --tls-key key.pem --users users.yaml --no-anonymous-read
On the peer network (--listen /ip4/..., --bootstrap), builds POSTed to
/v2/NAME/_kiln/builds run as signed jobs on the network's agents
(kiln.yaml gateway.builds; protocols/build-api.md).
See docs/gateway.md for auth, TLS, pull-through and mirror configuration.`)
    .action(async (opts: GatewayOptions) => {
      const config = await ctx.config()
      const listen = opts.listen ?? []
      const httpAddrs = listen.filter(a => !a.startsWith('/'))
      const multiaddrs = listen.filter(a => a.startsWith('/'))
      await checkMultiaddrFlags({ listen: multiaddrs, ...(opts.bootstrap === undefined ? {} : { bootstrap: opts.bootstrap }) })
      if (httpAddrs.length > 1) throw new CliError('give one HOST:PORT in --listen', { exitCode: EXIT.usage })
      const { host, port } = splitHostPort(httpAddrs[0] ?? config.gateway.listen)
      const store = await ctx.store()
      const log = await ctx.logger()
      const { sweepAtStart } = await import('../sweep-at-start.ts')
      await sweepAtStart(store.root, log)
      const { url: metricsUrl, metrics } = await startMetricsFor(ctx, opts.metricsListen)
      const { attachGatewayPeer, startGatewayNode } = await import('../../node/index.ts')
      const attached = multiaddrs.length > 0 || opts.bootstrap !== undefined || opts.mdns === true
      let network: GatewayPeer | undefined
      if (attached) {
        network = await attachGatewayPeer({
          config,
          store,
          identity: await ctx.identity(),
          log,
          metrics,
          network: {
            ...(multiaddrs.length > 0 ? { listen: multiaddrs.join(',') } : {}),
            ...(opts.bootstrap === undefined ? {} : { bootstrap: opts.bootstrap }),
            mdns: opts.mdns === true
          },
          ephemeral: multiaddrs.length === 0
        })
        ctx.onClose(network.close)
      }
      const service = await startGatewayNode({
        config,
        store,
        log,
        host,
        port,
        ...gatewayFlags(opts),
        ...(opts.upstream === undefined ? {} : { upstreams: opts.upstream }),
        ...(network === undefined ? {} : { network }),
        metrics
      })
      ctx.onClose(async () => { await service.close() })
      // A reload signal from a service manager must not kill the gateway (Node's default for SIGHUP).
      // Trust is read again at the next tag resolution anyway; SIGHUP forces it and says so.
      const onHup = (): void => {
        const trust = service.trust
        if (trust === undefined) { ctx.out.warn('SIGHUP: kiln gateway reads its users file and settings at start; restart it to apply changes'); return }
        trust.reload().then(
          () => { ctx.out.warn('SIGHUP: trust policy and certificates read again; the users file and other settings are read at start (restart to apply them)') },
          (err: Error) => { ctx.out.warn(`SIGHUP: the trust policy does not load, the one in force is kept: ${err.message}`) }
        )
      }
      process.on('SIGHUP', onHup)
      ctx.onClose(() => { process.off('SIGHUP', onHup) })
      // Both are handled before the address is printed: whoever signals once they read it must get a clean stop.
      const signalled = untilSignal()
      const peer = network === undefined ? {} : { peerId: network.node.peerId.toString(), multiaddrs: network.node.getMultiaddrs().map(m => m.toString()) }
      if (opts.json === true) ctx.out.json({ url: service.url, ...peer, ...(metricsUrl !== undefined ? { metricsUrl } : {}) })
      else {
        ctx.out.line(`gateway listening on ${service.url} (${service.users} user${service.users === 1 ? '' : 's'}, anonymous ${service.anonymous})`)
        if (metricsUrl !== undefined) ctx.out.line(`metrics: ${metricsUrl}`)
        if (network !== undefined) {
          ctx.out.line(`peer id: ${network.node.peerId.toString()}`)
          for (const ma of network.node.getMultiaddrs()) ctx.out.line(`p2p: ${ma.toString()}`)
        }
        ctx.out.line(`status page: ${service.url}/_kiln/status`)
        const hostPort = service.url.replace(/^https?:\/\//, '')
        ctx.out.line(`try: skopeo list-tags ${service.tls ? '' : '--tls-verify=false '}docker://${hostPort}/REPO`)
      }
      await signalled
    })

  gateway.command('hash-password')
    .description('read a password on stdin and print its hash for the gateway users file')
    .addHelpText('after', '\nExample:\n  printf %s "$PASS" | kiln gateway hash-password')
    .action(async () => {
      const { hashPassword } = await import('../../gateway/index.ts')
      const password = await readSecret()
      if (password === '') throw new CliError('empty password on stdin', { exitCode: EXIT.usage })
      ctx.out.line(await hashPassword(password))
    })
}
