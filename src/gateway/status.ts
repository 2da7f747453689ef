/**
 * The status page (protocols/status.md): `GET /_kiln/status` is a read-only
 * HTML page, `GET /_kiln/status.json` what it shows. The page has no
 * external assets; its script and style carry a per-response nonce that the
 * Content-Security-Policy names, and it writes every value with
 * `textContent`, never as markup: peer ids, capability names, repository
 * names and log lines come from the network or from whoever may push.
 *
 * Terms:
 * - node status: what the process around the gateway knows (this node, its
 *   peers, the agent's jobs, store usage), given by a StatusSource so that
 *   the gateway does not import agent code (docs/architecture.md);
 * - recent pulls: the last MAX_RECENT_PULLS manifest GETs the gateway
 *   answered, kept in memory.
 *
 * Who may look (docs/gateway.md §Status page): anyone on an open gateway;
 * anonymous requests when the gateway allows anonymous pulls; otherwise a
 * user of the users file (basic auth or a token). A user sees the builds
 * and pulls of the repositories they may pull, and all of the node status;
 * an anonymous viewer does not see who pulled.
 */
import { randomBytes } from 'node:crypto'
import type { Principal } from './auth.ts'
import type { BuildManager, BuildSummary } from './builds.ts'
import { MAX_RECENT_PULLS, STATUS_LOG_TAIL_LINES, STATUS_MAX_ROWS } from './constants.ts'
import type { GatewayContext } from './context.ts'
import { RegistryApiError } from './errors.ts'
import { jsonResponse } from './http.ts'
import type { GatewayRequest, GatewayResponse } from './http.ts'
import { STATUS_PAGE_HTML } from './status-page.ts'

/** This node, as its capability record describes it. */
export interface StatusNode {
  peerId: string
  addresses: string[]
  platforms: string[]
  capabilities: string[]
  institution?: string
  /** Whether the agent takes build jobs from the network. */
  takesJobs: boolean
}

/** A peer this node is connected to, with its capability record when it could be read. */
export interface StatusPeer {
  peerId: string
  addresses: string[]
  /** Absent: no record read (yet): the peer is no agent, or did not answer. */
  platforms?: string[]
  capabilities?: string[]
  institution?: string
}

/** One platform of a job the agent accepted. */
export interface StatusJob {
  jobId: string
  platform: string
  requester: string
  state: string
  digest?: string
  error?: string
  /** The newest lines of its build log (at most STATUS_LOG_TAIL_LINES). */
  log: string[]
}

/** What `kiln store df --json` reports. */
export interface StatusStoreUsage {
  blobs: number
  bytes: number
  buildCache: { bytes: number }
  quota: number | null
  pinnedBytes: number
  leasedBytes: number
  pins: number
  filesystem: { sizeBytes: number, freeBytes: number, freeInodes: number }
  /** When it was measured (ISO 8601): usage is measured at most every so often. */
  measuredAt: string
}

export interface NodeStatus {
  node?: StatusNode
  peers: StatusPeer[]
  jobs: StatusJob[]
  store?: StatusStoreUsage
}

/**
 * The node status the gateway shows, from the process around it (src/node
 * composes one for `kiln up` and `kiln gateway`). Called once per request
 * of the status JSON: cache what is costly.
 */
export interface StatusSource {
  snapshot: () => Promise<NodeStatus>
}

export interface RecentPull {
  at: string
  repository: string
  reference: string
  digest: string
  /** The user who pulled; absent for anonymous and open pulls. */
  user?: string
}

/** A bounded ring of the last manifest pulls. */
export interface PullLog {
  add: (pull: RecentPull) => void
  /** Newest first. */
  list: () => RecentPull[]
}

export function createPullLog (max = MAX_RECENT_PULLS): PullLog {
  const ring: RecentPull[] = []
  return {
    add: (pull) => {
      ring.push(pull)
      if (ring.length > max) ring.splice(0, ring.length - max)
    },
    list: () => [...ring].reverse()
  }
}

/** The status document version; protocols/status.md. */
export const STATUS_VERSION = 1

export interface StatusDocument extends NodeStatus {
  v: typeof STATUS_VERSION
  generatedAt: string
  gateway: { access: 'open' | 'anonymous-read' | 'login', builds: boolean }
  builds: Array<BuildSummary & { log: string[] }>
  pulls: RecentPull[]
}

/** A 401 a browser answers with a login prompt (the registry's Bearer challenge it cannot follow). */
function loginRequired (message: string): RegistryApiError {
  return new RegistryApiError('UNAUTHORIZED', message, { headers: { 'www-authenticate': 'Basic realm="kiln status", charset="UTF-8"' } })
}

/** Who may see the status; throws UNAUTHORIZED (a Basic challenge) otherwise. */
export async function statusPrincipal (ctx: GatewayContext, req: GatewayRequest): Promise<Principal> {
  let principal: Principal
  try {
    principal = await ctx.auth.authenticate(req)
  } catch (err) {
    if (err instanceof RegistryApiError && err.code === 'UNAUTHORIZED') throw loginRequired(err.message)
    throw err
  }
  if (principal.via === 'anonymous' && !ctx.auth.anonymousRead) throw loginRequired('authentication required to see the status of this gateway')
  return principal
}

function withoutUser (pull: RecentPull): RecentPull {
  const { user: _user, ...rest } = pull
  return rest
}

export async function statusDocument (ctx: GatewayContext, principal: Principal, builds: BuildManager, pulls: PullLog, source: StatusSource | undefined): Promise<StatusDocument> {
  const mayPull = (repository: string): boolean => principal.allows(repository, ['pull'])
  const node: NodeStatus = source === undefined ? { peers: [], jobs: [] } : await source.snapshot()
  return {
    v: STATUS_VERSION,
    generatedAt: new Date().toISOString(),
    gateway: { access: ctx.auth.open ? 'open' : ctx.auth.anonymousRead ? 'anonymous-read' : 'login', builds: builds.enabled },
    ...(node.node === undefined ? {} : { node: node.node }),
    peers: node.peers,
    jobs: node.jobs.slice(0, STATUS_MAX_ROWS),
    ...(node.store === undefined ? {} : { store: node.store }),
    builds: builds.overview(STATUS_LOG_TAIL_LINES).filter(b => mayPull(b.repository)).slice(0, STATUS_MAX_ROWS),
    // Who pulled is for users of the users file to see, not for anyone who may look anonymously.
    pulls: pulls.list().filter(p => mayPull(p.repository)).map(p => principal.via === 'anonymous' ? withoutUser(p) : p)
  }
}

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY'
}

/** `GET /_kiln/status` and `GET /_kiln/status.json`. */
export async function statusRoute (ctx: GatewayContext, req: GatewayRequest, method: string, format: 'html' | 'json', builds: BuildManager, pulls: PullLog, source: StatusSource | undefined): Promise<GatewayResponse> {
  if (method !== 'GET' && method !== 'HEAD') throw new RegistryApiError('UNSUPPORTED', `${method} on the status page: it is read-only`)
  const principal = await statusPrincipal(ctx, req)
  if (format === 'json') {
    return jsonResponse(200, await statusDocument(ctx, principal, builds, pulls, source), SECURITY_HEADERS)
  }
  const nonce = randomBytes(16).toString('base64')
  const body = Buffer.from(STATUS_PAGE_HTML.replaceAll('{{nonce}}', nonce))
  return {
    status: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(body.byteLength),
      'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      ...SECURITY_HEADERS
    },
    body
  }
}
