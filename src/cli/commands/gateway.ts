/**
 * `kiln gateway`: serve the local store over the OCI distribution API, and
 * `kiln gateway hash-password` to make entries for the users file.
 *
 * Attached to the peer network (a multiaddr in --listen, --bootstrap or
 * --mdns), what the store lacks is pulled through from peers, unknown tags
 * resolve through signed tag records, and pushes publish tag records and
 * announce their blobs. `--upstream` adds registries to mirror after the
 * network. `startGatewayService` is shared with `kiln up`.
 */
import type { Command } from 'commander'
import type { PrivateKey } from '@libp2p/interface'
import type { CliContext } from '../context.ts'
import type { Digest, LocalStore } from '../../content/index.ts'
import type { BuildRunner, Gateway, NamedPullThrough, PushEvent } from '../../gateway/index.ts'
import type { KilnNode } from '../../p2p/index.ts'
import type { Metrics } from '../../metrics/index.ts'
import type { Transfer } from '../../transfer/index.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'
import { startNode } from '../start-node.ts'
import { MetricsAddressError } from '../../metrics/errors.ts'
import { isErrorOf } from '../../util/error-class.ts'

interface GatewayOptions {
  metricsListen?: string
  listen?: string[]
  bootstrap?: string
  mdns?: boolean
  upstream?: string[]
  anonymousRead?: boolean
  anonymousPush?: boolean
  tlsCert?: string
  tlsKey?: string
  insecureListen?: boolean
  users?: string
  deleteEnabled?: boolean
  json?: boolean
}

export function splitHostPort (text: string, flag = '--listen'): { host: string, port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text)
  if (m === null || Number(m[2]) > 65535) throw new CliError(`${flag} ${JSON.stringify(text)} is not HOST:PORT`, { exitCode: EXIT.usage, hint: `for example ${flag} 127.0.0.1:5000` })
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) }
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

export function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map(s => s.trim()).filter(s => s !== '')]
}

async function readSecret (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

/** The network side a gateway can use: the node, its transfer, and the key that signs tag records. */
export interface GatewayNetwork {
  node: KilnNode
  transfer: Transfer
  privateKey: PrivateKey
}

export interface GatewayServiceOptions {
  host: string
  port: number
  anonymousRead?: boolean
  anonymousPush?: boolean
  tlsCert?: string
  tlsKey?: string
  insecureListen?: boolean
  users?: string
  deleteEnabled?: boolean
  /** `NS[=URL]` entries. */
  upstreams?: string[]
  network?: GatewayNetwork
  /** Runs builds for the build extension (kiln up passes the local builder). */
  builder?: BuildRunner
  /** Counts requests (kiln_gateway_requests_total). */
  metrics?: Metrics
}

export interface GatewayService {
  gateway: Gateway
  url: string
  tls: boolean
  users: number
  anonymous: 'push' | 'read' | 'none'
  /** Stops serving, then waits (bounded) for tag publications and provides in flight. */
  close: () => Promise<void>
}

/** Publishes tag records and announces blobs for pushes, in the background, one push at a time. */
function createPushAnnouncer (network: GatewayNetwork, certificates: unknown[], log: { warn: (o: object, m: string) => void, info: (o: object, m: string) => void }): { onPush: (e: PushEvent) => void, drain: () => Promise<void> } {
  let chain: Promise<void> = Promise.resolve()
  const abort = new AbortController()
  return {
    onPush: (event) => {
      chain = chain.then(async () => {
        if (abort.signal.aborted) return
        const { publishTagRecord } = await import('../../p2p/tag-records.ts')
        const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(60_000)])
        for (const digest of event.digests) {
          await network.transfer.provide(digest, { signal }).catch((err: Error) => { log.warn({ digest, err: err.message }, 'provide failed') })
        }
        if (event.tag === undefined) return
        const published = await publishTagRecord(network.node, network.privateKey, {
          repository: event.repository, tag: event.tag, digest: event.digest, mediaType: event.mediaType, size: event.size
        }, { certificates, signal })
        log.info({ repository: event.repository, tag: event.tag, digest: event.digest, storedOn: published.storedOn }, 'tag record published')
      }).catch((err: Error) => { log.warn({ repository: event.repository, tag: event.tag, err: err.message }, 'tag record publication failed') })
    },
    drain: async () => {
      const timer = setTimeout(() => { abort.abort() }, 5_000)
      await chain
      clearTimeout(timer)
    }
  }
}

/** Starts a gateway on the context's store, with pull-through from the network and upstreams when given. */
export async function startGatewayService (ctx: CliContext, store: LocalStore, opts: GatewayServiceOptions): Promise<GatewayService> {
  const config = await ctx.config()
  const gwConfig = config.gateway
  const certFile = opts.tlsCert ?? gwConfig.tls?.cert
  const keyFile = opts.tlsKey ?? gwConfig.tls?.key
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new CliError('--tls-cert and --tls-key go together', { exitCode: EXIT.usage })
  }
  const insecure = opts.insecureListen === true || gwConfig.insecureListen
  if (certFile === undefined && !isLoopback(opts.host) && !insecure) {
    throw new CliError(`refusing plain HTTP on ${opts.host}: passwords and tokens would cross the network in clear`, {
      exitCode: EXIT.usage,
      hint: 'give --tls-cert and --tls-key (docs/gateway.md shows how to make them), listen on 127.0.0.1, or pass --insecure-listen'
    })
  }
  if (opts.anonymousPush === true && !isLoopback(opts.host)) {
    throw new CliError('--anonymous-push is only allowed on a loopback address', { exitCode: EXIT.usage })
  }
  const { join } = await import('node:path')
  const { existsSync } = await import('node:fs')
  const { readFile } = await import('node:fs/promises')
  const gw = await import('../../gateway/index.ts')
  const logger = (await ctx.logger()).child({ module: 'gateway' })
  const defaultUsers = join(store.root, (await import('../../doctor/data-dir.ts')).GATEWAY_USERS_FILE)
  const usersFile = opts.users ?? (existsSync(defaultUsers) ? defaultUsers : undefined)
  const users = usersFile === undefined ? [] : await gw.readUsersFile(usersFile)
  const anonymousRead = opts.anonymousRead ?? gwConfig.anonymousRead

  const sources: NamedPullThrough[] = []
  let announcer: ReturnType<typeof createPushAnnouncer> | undefined
  if (opts.network !== undefined) {
    const network = opts.network
    const { loadTrustAndCertificates } = await import('../agent-setup.ts')
    const { resolveTagRecord } = await import('../../p2p/tag-records.ts')
    const self = network.node.peerId.toString()
    const { policy, certs: certificates } = await loadTrustAndCertificates(config, store.root, self, logger)
    sources.push(gw.createNetworkPullThrough({
      fetch: async (digest, options) => await network.transfer.fetch(digest, options),
      resolveTag: async (repository, tag) => {
        const record = await resolveTagRecord(network.node, repository, tag, {
          trust: policy,
          timeoutMs: gw.TAG_RESOLVE_TIMEOUT_MS,
          onSkip: (signer, reason) => { logger.info({ repository, tag, signer, reason }, 'tag record skipped') }
        })
        if (record === undefined) return undefined
        const { digest, mediaType, size } = record.payload
        return { digest: digest as Digest, mediaType, size }
      }
    }))
    announcer = createPushAnnouncer(network, certificates, logger)
  }
  const upstreams = opts.upstreams ?? []
  if (upstreams.length > 0) {
    let parsed
    try {
      parsed = upstreams.map(u => gw.parseUpstream(u))
    } catch (err) {
      throw new CliError(`--upstream: ${(err as Error).message}`, { exitCode: EXIT.usage, hint: 'for example --upstream docker.io or --upstream localhost:5001=http://127.0.0.1:5001' })
    }
    sources.push(gw.createUpstreamPullThrough({ upstreams: parsed, store: store.content }))
  }

  // Upload files of a gateway that was killed: removed unless another live gateway shares the dir.
  const uploadDir = join(store.root, 'gateway', 'uploads')
  await (await import('../../util/scratch-claims.ts')).claimScratchDir(uploadDir)
  const gateway = gw.createGateway({
    store: store.content,
    refs: store.refs,
    db: store.db,
    uploadDir,
    logger,
    deleteEnabled: opts.deleteEnabled === true || gwConfig.deleteEnabled,
    ...(opts.anonymousPush === true ? {} : { auth: { anonymousRead, users } }),
    ...(sources.length === 0 ? {} : { pullThrough: gw.chainPullThrough(sources, logger) }),
    ...(announcer === undefined ? {} : { onPush: announcer.onPush }),
    ...(opts.builder === undefined ? {} : { builder: opts.builder }),
    ...(opts.metrics === undefined ? {} : { metrics: opts.metrics })
  })
  const tls = certFile === undefined || keyFile === undefined ? undefined : { cert: await readFile(certFile), key: await readFile(keyFile) }
  let url: string
  try {
    url = (await gateway.listen(opts.host, opts.port, tls === undefined ? {} : { tls })).url
  } catch (err) {
    await gateway.close()
    throw new CliError(`cannot listen on ${opts.host}:${opts.port}: ${(err as Error).message}`, { exitCode: EXIT.network, hint: 'pick another address with --listen HOST:PORT' })
  }
  return {
    gateway,
    url,
    tls: tls !== undefined,
    users: users.length,
    anonymous: opts.anonymousPush === true ? 'push' : anonymousRead ? 'read' : 'none',
    close: async () => {
      await gateway.close()
      await announcer?.drain()
    }
  }
}

/**
 * The metrics endpoint of `--metrics-listen` or `metrics.listen`, closed
 * with the command; the no-op handle (and no url) when neither is set.
 */
export async function startMetricsFor (ctx: CliContext, flag: string | undefined): Promise<{ metrics: Metrics, url?: string }> {
  const listen = flag ?? (await ctx.config()).metrics.listen
  const { startMetrics } = await import('../../metrics/index.ts')
  let running
  try {
    running = await startMetrics({ listen })
  } catch (err) {
    throw new CliError((err as Error).message, { exitCode: isErrorOf(err, MetricsAddressError) ? EXIT.usage : EXIT.network, hint: 'give --metrics-listen HOST:PORT with a free port, e.g. 127.0.0.1:9464' })
  }
  ctx.onClose(running.close)
  return { metrics: running.metrics, ...(running.server !== undefined ? { url: running.server.url } : {}) }
}

/** Resolves on SIGINT or SIGTERM. */
export async function untilSignal (): Promise<string> {
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
See docs/gateway.md for auth, TLS, pull-through and mirror configuration.`)
    .action(async (opts: GatewayOptions) => {
      const config = await ctx.config()
      const listen = opts.listen ?? []
      const httpAddrs = listen.filter(a => !a.startsWith('/'))
      const multiaddrs = listen.filter(a => a.startsWith('/'))
      if (httpAddrs.length > 1) throw new CliError('give one HOST:PORT in --listen', { exitCode: EXIT.usage })
      const { host, port } = splitHostPort(httpAddrs[0] ?? config.gateway.listen)
      const store = await ctx.store()
      const { sweepAtStart } = await import('../sweep-at-start.ts')
      await sweepAtStart(store.root, await ctx.logger())
      const { metrics, url: metricsUrl } = await startMetricsFor(ctx, opts.metricsListen)
      const attached = multiaddrs.length > 0 || opts.bootstrap !== undefined || opts.mdns === true
      let network: GatewayNetwork | undefined
      if (attached) {
        const { createTransfer } = await import('../../transfer/index.ts')
        const identity = await ctx.identity()
        const node = await startNode(config.node, {
          ...(multiaddrs.length > 0 ? { listen: multiaddrs.join(',') } : {}),
          ...(opts.bootstrap === undefined ? {} : { bootstrap: opts.bootstrap }),
          mdns: opts.mdns === true
        }, identity.privateKey, multiaddrs.length === 0)
        const log = (await ctx.logger()).child({ module: 'transfer' })
        const transfer = createTransfer({ node, store: store.content, log, metrics })
        await transfer.start()
        network = { node, transfer, privateKey: identity.privateKey }
        ctx.onClose(async () => { await transfer.stop(); await node.stop() })
      }
      const service = await startGatewayService(ctx, store, {
        host,
        port,
        ...pick(opts),
        ...(opts.upstream === undefined ? {} : { upstreams: opts.upstream }),
        ...(network === undefined ? {} : { network }),
        metrics
      })
      ctx.onClose(async () => { await service.close() })
      const peer = network === undefined ? {} : { peerId: network.node.peerId.toString(), multiaddrs: network.node.getMultiaddrs().map(m => m.toString()) }
      if (opts.json === true) ctx.out.json({ url: service.url, ...peer, ...(metricsUrl !== undefined ? { metricsUrl } : {}) })
      else {
        ctx.out.line(`gateway listening on ${service.url} (${service.users} user${service.users === 1 ? '' : 's'}, anonymous ${service.anonymous})`)
        if (metricsUrl !== undefined) ctx.out.line(`metrics: ${metricsUrl}`)
        if (network !== undefined) {
          ctx.out.line(`peer id: ${network.node.peerId.toString()}`)
          for (const ma of network.node.getMultiaddrs()) ctx.out.line(`p2p: ${ma.toString()}`)
        }
        const hostPort = service.url.replace(/^https?:\/\//, '')
        ctx.out.line(`try: skopeo list-tags ${service.tls ? '' : '--tls-verify=false '}docker://${hostPort}/REPO`)
      }
      // A reload signal from a service manager must not kill the gateway (Node's default for SIGHUP).
      const onHup = (): void => { ctx.out.warn('SIGHUP: kiln gateway reads its users file and settings at start; restart it to apply changes') }
      process.on('SIGHUP', onHup)
      ctx.onClose(() => { process.off('SIGHUP', onHup) })
      await untilSignal()
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

/** The gateway flags shared with `kiln up`, without undefined values. */
export function pick (opts: Partial<GatewayServiceOptions>): Partial<GatewayServiceOptions> {
  const keys = ['anonymousRead', 'anonymousPush', 'tlsCert', 'tlsKey', 'insecureListen', 'users', 'deleteEnabled'] as const
  const out: Partial<GatewayServiceOptions> = {}
  for (const k of keys) if (opts[k] !== undefined) (out as Record<string, unknown>)[k] = opts[k]
  return out
}
