/**
 * The shape of kiln.yaml. Every section is optional; what is missing takes
 * the default shown here. Unknown keys are refused, so a typo is reported
 * rather than silently ignored.
 */
import { z } from 'zod'

const platform = z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, 'a platform like "linux/amd64" or "linux/arm64/v8"')
const multiaddr = z.string().regex(/^\//, 'a multiaddr like "/ip4/127.0.0.1/tcp/4001"')
const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'HOST:PORT, like "127.0.0.1:5000"')
const byteSize = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+(\.\d+)?\s*([KMGT]i?B?)?$/i, 'a size like 500GiB or 20G')], { error: 'a size like 500GiB or 20G, or a number of bytes' })

export const NodeSection = z.strictObject({
  /**
   * Multiaddrs to listen on: plain TCP (Noise) and TCP+TLS (`/tls`, kiln's
   * fast transport). A list with no `/tls` address gets one on a free port.
   */
  listen: z.array(multiaddr).default(['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/tls']),
  /** Peers to join the network through. */
  bootstrap: z.array(multiaddr).default([]),
  /** Find peers on the local network by mDNS. */
  mdns: z.boolean().default(true),
  /** Act as a circuit relay for peers with no inbound connectivity. */
  relay: z.boolean().default(false),
  /**
   * Reserve a slot on connected relays and be reachable through them: for
   * nodes nobody can dial (compute nodes behind the cluster's firewall).
   */
  relayClient: z.boolean().default(false),
  /**
   * Relays to be reached through (multiaddrs with `/p2p/<id>` of nodes with
   * `relay: true`): the node reserves a slot on each and listens on
   * `<relay>/p2p-circuit`. For compute nodes whose inbound connections are
   * dropped; set `listen: []` there so no unreachable address is announced.
   */
  relayVia: z.array(multiaddr.regex(/\/p2p\/[A-Za-z0-9]+$/, 'a relay multiaddr ending in /p2p/<peer id>')).default([]),
  /** Path to a libp2p private-network pre-shared key file (closed clusters). */
  pnet: z.string().optional(),
  /**
   * Listen and dial on TCP with TLS 1.3 from the first byte (several times
   * Noise's throughput for blobs); off: Noise only. Always off with pnet.
   */
  tls: z.boolean().default(true),
  /**
   * Most connections the node keeps open; beyond it libp2p closes the least
   * valued ones that have no stream open. An agent serves many pullers;
   * idle CPU and memory grow with connections (docs/network.md#idle-cost).
   */
  maxConnections: z.number().int().min(8).max(10_000).default(300),
  /**
   * Seconds between pings of each open connection (a failed ping closes it).
   * libp2p's 10 s made the pings most of an idle node's CPU; lower it where
   * dead connections must be noticed sooner than TCP reports them.
   */
  pingInterval: z.number().int().min(1).max(3600).default(60),
  /**
   * An HTTP server whose Date header `kiln doctor` compares this node's clock
   * with (a gateway's http://HOST:PORT); signed records fail with minutes of skew.
   */
  timeReference: z.string().url().regex(/^https?:\/\//, 'an http:// or https:// URL').optional()
})

export const AgentSection = z.strictObject({
  /** Platforms this agent builds for; default: the host's. */
  platforms: z.array(platform).default([]),
  /**
   * Capabilities to advertise beside the detected ones: `NAME` or
   * `NAME=VALUE` (e.g. "gpu", "mpi=openmpi-4"), matched by `--require`
   * (protocols/job.md §2); the record carries the name.
   */
  capabilities: z.array(z.string().regex(/^[a-z][a-z0-9_.-]{0,31}(=[A-Za-z0-9_.+-]{1,64})?$/, 'NAME or NAME=VALUE, like "gpu" or "mpi=openmpi-4"')).max(64).default([]),
  institution: z.string().default(''),
  maxConcurrentBuilds: z.number().int().min(1).default(1),
  /** Whether RUN steps may have network access when a job asks for it. */
  allowNetwork: z.boolean().default(false),
  /** Whether a base a job pins may be pulled by digest from its registry when no peer provides it (protocols/job.md §3.1). */
  baseRegistries: z.boolean().default(false)
})

export const BuildSection = z.strictObject({
  sandbox: z.enum(['auto', 'unshare', 'bwrap', 'proot']).default('auto'),
  /** Seconds since the epoch used for file times and the image's created date. */
  sourceDateEpoch: z.number().int().nonnegative().optional(),
  /** Longest a single RUN step may take, in seconds. */
  stepTimeout: z.number().int().positive().default(3600),
  /**
   * A Sylabs-library-API service (a self-hosted library such as Hinkskalle)
   * that Apptainer `Bootstrap: library` bases are fetched from; unset, they
   * are refused (docs/sif.md).
   */
  libraryUrl: z.string().url().regex(/^https?:\/\//, 'an http:// or https:// URL').optional()
})

export const GatewaySection = z.strictObject({
  listen: hostPort.default('127.0.0.1:5000'),
  anonymousRead: z.boolean().default(true),
  deleteEnabled: z.boolean().default(false),
  tls: z.strictObject({ cert: z.string(), key: z.string() }).optional(),
  /** Allow plain HTTP on a non-loopback address. */
  insecureListen: z.boolean().default(false),
  /**
   * Where the build extension (/v2/<name>/_kiln/builds) builds: `local` with
   * `kiln up`'s builder only, `network` every platform as a job on the peer
   * network, `auto` locally what this node builds and on the network the rest.
   */
  builds: z.enum(['local', 'network', 'auto']).default('auto')
})

export const TrustSection = z.strictObject({
  /** Institution root public keys (or files holding them) trusted for the given roles. */
  roots: z.array(z.strictObject({ key: z.string(), roles: z.array(z.enum(['builder', 'requester', 'gateway'])).default(['builder']) })).default([]),
  /** Single peers trusted for the given roles. */
  peers: z.array(z.strictObject({ peer: z.string(), roles: z.array(z.enum(['builder', 'requester', 'gateway'])).default(['builder']) })).default([])
})

export const StoreSection = z.strictObject({
  /** Largest the store may grow before least recently used, unpinned content is evicted. */
  quota: byteSize.optional()
})

export const MetricsSection = z.strictObject({
  /** Serve Prometheus metrics at http://HOST:PORT/metrics; absent: no endpoint, metrics are not collected. */
  listen: hostPort.optional()
})

export const KilnConfigSchema = z.strictObject({
  dataDir: z.string().optional(),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
  node: NodeSection.default(NodeSection.parse({})),
  agent: AgentSection.default(AgentSection.parse({})),
  build: BuildSection.default(BuildSection.parse({})),
  gateway: GatewaySection.default(GatewaySection.parse({})),
  trust: TrustSection.default(TrustSection.parse({})),
  store: StoreSection.default(StoreSection.parse({})),
  metrics: MetricsSection.default(MetricsSection.parse({}))
})

export type KilnConfigInput = z.input<typeof KilnConfigSchema>
export type KilnConfig = z.output<typeof KilnConfigSchema> & {
  dataDir: string
  configFile?: string
  /** Keys set by an environment variable, to that variable's name (`build.sandbox` -> `KILN_SANDBOX`). */
  fromEnv?: Record<string, string>
}
