/**
 * The gateway: authenticates each request, routes it, turns failures into
 * the OCI error body, logs one line per request, and serves it all over
 * node:http or node:https.
 */
import { createServer as createHttpServer } from 'node:http'
import type { Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import type { Action } from './access.ts'
import { createAuthenticator } from './auth.ts'
import { buildRoute, createBuildManager, submitBuild } from './builds.ts'
import { deleteBlob, getBlob } from './blobs.ts'
import { BODY_IDLE_TIMEOUT_MS, BODY_LINGER_MS, UPLOAD_SESSION_TTL_MS, UPLOAD_SWEEP_INTERVAL_MS } from './constants.ts'
import type { GatewayContext } from './context.ts'
import { errorBody, RegistryApiError, toRegistryApiError } from './errors.ts'
import { emptyResponse, isClientGone, jsonResponse, toNodeHandler } from './http.ts'
import type { GatewayRequest, GatewayResponse } from './http.ts'
import type { Gateway, GatewayInit, ListenOptions } from './index.ts'
import { catalog, listReferrers, listTags } from './listings.ts'
import { deleteManifest, getManifest, putManifest } from './manifests.ts'
import { createRepoIndex } from './repo-index.ts'
import { mirrorPrefix } from './mirror.ts'
import { aliasedRefStore } from '../oci/ref-aliases.ts'
import { matchRoute } from './router.ts'
import type { Route } from './router.ts'
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './upload-routes.ts'
import { createUploadManager } from './uploads.ts'
import { createSifArtifacts } from './sif-artifacts.ts'
import { createPullLog, statusRoute } from './status.ts'

const NOOP = (): void => {}
const SILENT = { debug: NOOP, info: NOOP, warn: NOOP, error: NOOP }

/** containerd's `?ns=<registry>` (mirror mode, ./mirror.ts): which upstream a request is for. */
function requestContext (ctx: GatewayContext, query: string | undefined): GatewayContext {
  if (query === undefined) return ctx
  const ns = new URLSearchParams(query).get('ns')
  const prefix = ns === null ? undefined : mirrorPrefix(ns)
  return prefix === undefined ? ctx : { ...ctx, namespace: prefix }
}

function unsupported (method: string, route: Route): RegistryApiError {
  return new RegistryApiError('UNSUPPORTED', `${method} is not supported on ${route.kind}`)
}

/** The action a request needs on its repository. */
function neededAction (method: string, route: Route): Action {
  if (route.kind === 'builds') return method === 'GET' || method === 'HEAD' ? 'pull' : 'build'
  if (route.kind === 'upload') return 'push'
  if (method === 'GET' || method === 'HEAD') return 'pull'
  if (method === 'DELETE') return 'delete'
  return 'push'
}

async function dispatch (ctx: GatewayContext, req: GatewayRequest, route: Route, method: string): Promise<GatewayResponse> {
  // Before the registry's authentication: the page answers a browser with a Basic challenge, not a Bearer one.
  if (route.kind === 'status') return await statusRoute(ctx, req, method, route.format, ctx.builds, ctx.pulls, ctx.status)
  const principal = await ctx.auth.authenticate(req)
  if (route.kind === 'token') {
    if (method !== 'GET') throw unsupported(method, route)
    return await ctx.auth.token(req)
  }
  if (route.kind === 'ping') {
    ctx.auth.checkPing(req, principal)
    return jsonResponse(200, {})
  }
  if (route.kind === 'catalog') {
    if (method !== 'GET') throw unsupported(method, route)
    return catalog(ctx, req, principal)
  }
  const repo = route.repository
  ctx.auth.authorize(req, principal, repo, [neededAction(method, route)])
  const read = method === 'GET' || method === 'HEAD'
  switch (route.kind) {
    case 'manifest':
      if (read) {
        const out = await getManifest(ctx, req, repo, route.param)
        const digest = out.headers['docker-content-digest']
        if (method === 'GET' && out.status === 200 && digest !== undefined) {
          ctx.pulls.add({ at: new Date().toISOString(), repository: repo, reference: route.param, digest, ...(principal.name === undefined ? {} : { user: principal.name }) })
        }
        return out
      }
      if (method === 'PUT') return await putManifest(ctx, req, repo, route.param)
      if (method === 'DELETE') return await deleteManifest(ctx, repo, route.param)
      break
    case 'blob':
      if (read) return await getBlob(ctx, req, repo, route.param)
      if (method === 'DELETE') return await deleteBlob(ctx, repo, route.param)
      break
    case 'upload':
      if (route.id === undefined) {
        if (method === 'POST') return await startUpload(ctx, req, principal, repo)
        break
      }
      if (method === 'GET') return uploadStatus(ctx, repo, route.id)
      if (method === 'PATCH') return await patchUpload(ctx, req, repo, route.id)
      if (method === 'PUT') return await finishUpload(ctx, req, repo, route.id)
      if (method === 'DELETE') return await cancelUpload(ctx, repo, route.id)
      break
    case 'tags':
      if (read) return listTags(ctx, req, repo)
      break
    case 'referrers':
      if (read) return await listReferrers(ctx, req, repo, route.param)
      break
    case 'builds':
      if (method === 'POST' && (route.rest === '' || route.rest === '/')) return await submitBuild(ctx, ctx.builds, req, repo)
      return await buildRoute(ctx.builds, req, method, repo, route.rest)
  }
  throw unsupported(method, route)
}

const KNOWN_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'])

export function createGatewayImpl (init: GatewayInit): Gateway {
  const logger = init.logger ?? SILENT
  const uploads = createUploadManager({ dir: init.uploadDir, store: init.store, ttlMs: init.uploadTtlMs ?? UPLOAD_SESSION_TTL_MS })
  const ctx: GatewayContext = {
    store: init.store,
    refs: aliasedRefStore(init.refs),
    index: createRepoIndex(init.db),
    uploads,
    auth: createAuthenticator(init.auth),
    logger,
    deleteEnabled: init.deleteEnabled ?? false,
    ...(init.pullThrough === undefined ? {} : { pullThrough: init.pullThrough }),
    ...(init.onPush === undefined ? {} : { onPush: init.onPush }),
    builds: createBuildManager(init.builder),
    sifs: createSifArtifacts(join(dirname(init.uploadDir), 'sif')),
    pulls: createPullLog(),
    ...(init.status === undefined ? {} : { status: init.status })
  }

  const handle = async (req: GatewayRequest): Promise<GatewayResponse> => {
    const started = performance.now()
    const method = req.method.toUpperCase()
    const [path, query] = req.url.split('?') as [string, string | undefined]
    let out: GatewayResponse
    try {
      const route = matchRoute(path)
      out = route === undefined ? emptyResponse(404) : await dispatch(requestContext(ctx, query), req, route, method)
    } catch (err) {
      let apiError = toRegistryApiError(err)
      if (apiError === undefined) {
        logger.error({ method, path, err: err instanceof Error ? err.stack : String(err) }, 'request failed')
        apiError = new RegistryApiError('INTERNAL')
      } else if (apiError.code === 'STORAGE_FULL') {
        logger.error({ method, path, err: err instanceof Error ? err.message : String(err) }, 'disk full: request refused')
      }
      out = jsonResponse(apiError.status, errorBody(apiError), { ...apiError.headers })
    }
    out.headers['docker-distribution-api-version'] = 'registry/2.0'
    logger.debug({ method, path, status: out.status, ms: Math.round(performance.now() - started) }, 'request')
    // Methods outside the API's own are one label value, so a client cannot grow the series.
    init.metrics?.inc('kiln_gateway_requests_total', { method: KNOWN_METHODS.has(method) ? method : 'OTHER', status: String(out.status) })
    return out
  }

  const handler = toNodeHandler(handle, err => {
    const message = err instanceof Error ? err.message : String(err)
    if (isClientGone(err)) logger.debug({ err: message }, 'client closed the connection early')
    else logger.error({ err: message }, 'response failed')
  }, { bodyIdleTimeoutMs: init.bodyIdleTimeoutMs ?? BODY_IDLE_TIMEOUT_MS, bodyLingerMs: BODY_LINGER_MS })
  const sweeper = setInterval(() => { uploads.sweep().catch(NOOP) }, UPLOAD_SWEEP_INTERVAL_MS)
  sweeper.unref()
  const servers: Server[] = []

  return {
    handle,
    handler,
    listen: async (host: string, port: number, options: ListenOptions = {}) => {
      // No whole-request timeout (node's default cuts any request off at 300 s): bodies are idle-timed instead, see ./request-body.ts.
      const server: Server = options.tls === undefined
        ? createHttpServer({ requestTimeout: 0 }, handler)
        : createHttpsServer({ cert: options.tls.cert, key: options.tls.key, requestTimeout: 0 }, handler)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => { server.off('error', reject); resolve() })
      })
      servers.push(server)
      const address = server.address() as AddressInfo
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
      const url = `${options.tls === undefined ? 'http' : 'https'}://${shownHost}:${address.port}`
      logger.info({ url }, 'gateway listening')
      return { host: address.address, port: address.port, url }
    },
    close: async () => {
      clearInterval(sweeper)
      ctx.builds.close()
      await Promise.all(servers.map(s => new Promise<void>(resolve => {
        s.close(() => { resolve() })
        s.closeAllConnections()
      })))
      servers.length = 0
      await uploads.close()
    }
  }
}
