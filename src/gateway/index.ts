/**
 * The OCI gateway: the OCI distribution API (spec v1.1) over kiln's local
 * content store, so that podman, skopeo, Apptainer, containerd and CI pull
 * and push without knowing about the peer network.
 *
 * Terms:
 * - repository: a name such as `hpc/gromacs` (spec grammar). A repository
 *   "has" a blob when it was pushed or mounted there or is referenced by one
 *   of its manifests; blobs are shared in the store, membership is per name.
 * - reference: a tag or a digest naming a manifest in a repository.
 * - tag: a ref in the shared RefStore, so `kiln image ls` sees pushed images
 *   and the gateway serves images kiln built or imported.
 * - pull-through: what the store lacks is fetched from the peer network by
 *   digest, and tags resolved from signed tag records (see PullThrough).
 *
 * Every failure is an OCI error code from one table (./errors.ts).
 *
 * @example
 * ```ts
 * const gateway = createGateway({ store, refs, db, uploadDir: join(dataDir, 'gateway', 'uploads'),
 *   auth: { anonymousRead: true, users: [{ name: 'ci', passwordHash, access: [{ repository: 'ci/**', allow: ['read', 'write'] }] }] } })
 * const { url } = await gateway.listen('127.0.0.1', 5000)
 * // podman pull --tls-verify=false 127.0.0.1:5000/ci/app:latest
 * await gateway.close()
 * ```
 */
import type { ContentStore } from '../content/index.ts'
import type { Metrics } from '../metrics/index.ts'
import type { KilnDb } from '../db/index.ts'
import type { RefStore } from '../content/refs.ts'
import type { GatewayAuthInit } from './auth.ts'
import type { GatewayLogger, PullThrough, PushEvent } from './context.ts'
import type { Digest } from '../content/digest.ts'
import type { BuildRunner } from './builds.ts'
import type { StatusSource } from './status.ts'
import { createGatewayImpl } from './gateway.ts'
import { createRepoIndex } from './repo-index.ts'
export { repoIndexReferences } from './repo-index.ts'
import type { GatewayRequest, GatewayResponse, NodeHandler } from './http.ts'

export type { AccessRule, Action, Permission } from './access.ts'
export { AccessRuleSchema } from './access.ts'
export type { GatewayAuthInit, GatewayUser } from './auth.ts'
export type { GatewayLogger, PullHint, PullThrough, PushEvent } from './context.ts'
export { chainPullThrough } from './pull-through.ts'
export { ArrivalFailedError } from './arriving.ts'
export type { ArrivingBlob } from './arriving.ts'
export type { NamedPullThrough } from './pull-through.ts'
export { createNetworkPullThrough } from './network-source.ts'
export type { NetworkPullThroughInit } from './network-source.ts'
export { createUpstreamPullThrough, parseUpstream } from './upstream-source.ts'
export type { Upstream, UpstreamPullThroughInit } from './upstream-source.ts'
export { mirrorPrefix } from './mirror.ts'
export { TAG_RESOLVE_TIMEOUT_MS } from './constants.ts'
export {
  ANNOTATION_PLATFORMS, ANNOTATION_RECIPE_KIND, ANNOTATION_TAG, BuildRequestSchema, CONTEXT_LAYER_TYPES, RECIPE_ARTIFACT_TYPE, RECIPE_LAYER_TYPE
} from './builds.ts'
export type { BuildJob, BuildRequest, BuildRunner, BuildRunnerIo } from './builds.ts'
export { OCI_ERRORS, RegistryApiError, TagRecordsRefusedError } from './errors.ts'
export type { OciErrorCode } from './errors.ts'
export type { GatewayRequest, GatewayResponse } from './http.ts'
export { hashPassword, verifyPassword } from './passwords.ts'
export { STATUS_VERSION } from './status.ts'
export type { NodeStatus, RecentPull, StatusDocument, StatusJob, StatusNode, StatusPeer, StatusSource, StatusStoreUsage } from './status.ts'

export interface GatewayInit {
  store: ContentStore
  refs: RefStore
  /** The store's database; the gateway keeps repository membership and the referrers index there. */
  db: KilnDb
  /** Directory for upload session files (under the data dir; same filesystem as the store is best). */
  uploadDir: string
  /** Structured logger (pino fits); default silent. Never given credentials. */
  logger?: GatewayLogger
  /** Absent: an open gateway, anyone may pull and push (loopback use). */
  auth?: GatewayAuthInit
  /** Allow DELETE of manifests, tags and blobs; default false (405 UNSUPPORTED). */
  deleteEnabled?: boolean
  /** Where to fetch what the store lacks: see chainPullThrough, createNetworkPullThrough, createUpstreamPullThrough. */
  pullThrough?: PullThrough
  /** Called after each manifest push is stored (publish a tag record, announce the blobs); must not throw. */
  onPush?: (event: PushEvent) => void
  /** Builds for the build extension (`/v2/<name>/_kiln/builds`); absent: those requests are UNSUPPORTED. */
  builder?: BuildRunner
  /** Default UPLOAD_SESSION_TTL_MS. */
  uploadTtlMs?: number
  /** Longest wait for the next bytes of a request body over a socket, default BODY_IDLE_TIMEOUT_MS (60 s); no overall limit. */
  bodyIdleTimeoutMs?: number
  /** Counts requests by method and status (kiln_gateway_requests_total); default none. */
  metrics?: Metrics
  /** This node, its peers, jobs and store for the status page (`/_kiln/status`); absent: the page shows the gateway's builds and pulls only. */
  status?: StatusSource
}

export interface ListenOptions {
  /** PEM certificate chain and key: serve HTTPS. */
  tls?: { cert: string | Buffer, key: string | Buffer }
}

export interface Gateway {
  /** Serves one request in-process (tests, embedding). Never throws for API errors. */
  handle: (req: GatewayRequest) => Promise<GatewayResponse>
  /** The same, as a node:http request listener. */
  handler: NodeHandler
  /** Starts a server; port 0 picks a free one. May be called more than once (several addresses). */
  listen: (host: string, port: number, options?: ListenOptions) => Promise<{ host: string, port: number, url: string }>
  /** Stops every server, drops open connections and upload sessions. */
  close: () => Promise<void>
}

/**
 * Digests the gateway holds in some repository, for `kiln gc` to keep as
 * roots beside refs: manifests pushed by digest only (index children,
 * signatures and other referrers) and blobs of pushes still in progress.
 */
export function gatewayGcRoots (db: KilnDb): Digest[] {
  return createRepoIndex(db).digests()
}

export function createGateway (init: GatewayInit): Gateway {
  return createGatewayImpl(init)
}

export { readUsersFile, UsersFileInvalidError } from './users-file.ts'
