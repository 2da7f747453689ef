/**
 * The build extension (protocols/build-api.md): `POST /v2/<name>/_kiln/builds`
 * takes a recipe and a context, a BuildRunner builds each platform, the
 * result (a manifest, or an index of several) is stored, recorded in
 * `<name>` and tagged; `GET .../builds/<id>` is its status, `GET
 * .../builds/<id>/logs` its log, live (chunked text or server-sent events).
 *
 * Terms: a *build* is one request (id, repository, platforms); a *runner*
 * turns one platform of it into an image in the store. The gateway does not
 * build: `kiln up` gives it a runner over the local rootless builder, a
 * runner submitting jobs to the network through src/requester, or one that
 * picks between them by platform (src/node/network-build.ts).
 * Builds live in memory: a restarted gateway forgets them (the images stay).
 */
import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import type { Digest } from '../content/digest.ts'
import { isDigest, sha256Digest } from '../content/digest.ts'
import { OCI_INDEX } from '../oci/index.ts'
import { decompress, detectCompression, parseManifestBytes, readTar } from '../oci/index.ts'
import { MAX_BUILD_LOG_BYTES, MAX_BUILD_RECIPE_BYTES, MAX_BUILDS_KEPT, MAX_SMALL_BODY, TAG_RE } from './constants.ts'
import { hasBlob, recordManifest } from './context.ts'
import type { GatewayContext } from './context.ts'
import { RegistryApiError } from './errors.ts'
import { jsonResponse, readBody } from './http.ts'
import type { GatewayRequest, GatewayResponse } from './http.ts'

/** Artifact type of a pushed build request (protocols/build-api.md §"Build on push"). */
export const RECIPE_ARTIFACT_TYPE = 'application/vnd.kiln.recipe.v1'
/** Layer media types inside such an artifact. */
export const RECIPE_LAYER_TYPE = 'application/vnd.kiln.recipe.v1.text'
export const CONTEXT_LAYER_TYPES = ['application/vnd.kiln.context.v1.tar', 'application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar+gzip']
/** Annotations of a build request artifact. */
export const ANNOTATION_PLATFORMS = 'org.kiln.build.platforms'
export const ANNOTATION_TAG = 'org.kiln.build.tag'
export const ANNOTATION_RECIPE_KIND = 'org.kiln.build.recipe-kind'

const PLATFORM_RE = /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/

export const BuildRequestSchema = z.strictObject({
  recipe: z.strictObject({ kind: z.enum(['dockerfile', 'apptainer']), text: z.string().min(1).max(MAX_BUILD_RECIPE_BYTES) }),
  /** A tar (optionally gzip) blob already pushed to the repository. */
  context: z.string().refine(isDigest, 'expected sha256:<64 hex>').optional(),
  platforms: z.array(z.string().regex(PLATFORM_RE)).min(1).max(16),
  tag: z.string().regex(TAG_RE).optional(),
  buildArgs: z.record(z.string().max(256), z.string().max(4096)).optional(),
  target: z.string().max(128).optional()
})
export type BuildRequest = z.infer<typeof BuildRequestSchema>

/** What a runner is asked to build: one platform of a request. */
export interface BuildJob {
  id: string
  repository: string
  recipe: BuildRequest['recipe']
  /** The context tar blob in the store, if any. */
  context?: Digest
  platform: string
  buildArgs: Record<string, string>
  target?: string
}

export interface BuildRunnerIo {
  signal: AbortSignal
  /** One line of build output (no trailing newline). */
  log: (line: string) => void
  /** Progress: the step started, out of how many. */
  step: (index: number, total: number) => void
}

/**
 * Builds one platform of a request into the store. Throws on failure; an
 * error whose name is `RecipeError` (or that has a `line`) is reported to
 * the client with that detail.
 */
export interface BuildRunner {
  readonly name: string
  /** The runner that builds a platform, when it depends on the platform (local or network); default `name`. */
  nameFor?: (platform: string) => string
  /**
   * Why this runner takes no build, when it takes none: its sandbox cannot
   * isolate build steps from kiln, and a gateway build runs a recipe of
   * whoever may push (docs/security.md). The gateway then builds as if it
   * had no runner: a POSTed build is refused (UNSUPPORTED) with this reason,
   * a pushed build request is stored as the artifact it is and not built.
   */
  readonly refuses?: string
  run: (job: BuildJob, io: BuildRunnerIo) => Promise<{ digest: Digest, mediaType: string, size: number }>
}

type Status = 'queued' | 'building' | 'succeeded' | 'failed' | 'cancelled'

interface PlatformState {
  status: Status
  step?: number
  steps?: number
  digest?: Digest
  builder: string
}

interface Build {
  id: string
  repository: string
  tag?: string
  status: Status
  createdAt: number
  platforms: Record<string, PlatformState>
  result?: { digest: Digest, mediaType: string, size: number, tag?: string }
  error?: { message: string, platform?: string, detail?: unknown }
  log: string[]
  logBytes: number
  listeners: Set<(event: { kind: 'log', line: string } | { kind: 'end' }) => void>
  abort: AbortController
}

export interface BuildManager {
  /** Whether a runner is configured and takes builds. */
  readonly enabled: boolean
  /** Why builds are refused although a runner is configured (BuildRunner.refuses). */
  readonly refusal?: string
  submit: (ctx: GatewayContext, repository: string, request: BuildRequest) => Build
  get: (repository: string, id: string) => Build | undefined
  list: (repository: string) => Build[]
  /** Every build, newest first, with the newest `tailLines` lines of its log (the status page). */
  overview: (tailLines: number) => Array<BuildSummary & { log: string[] }>
  close: () => void
}

const ended = (s: Status): boolean => s === 'succeeded' || s === 'failed' || s === 'cancelled'

export function createBuildManager (runner: BuildRunner | undefined): BuildManager {
  const builds = new Map<string, Build>()

  const emit = (b: Build, line: string): void => {
    if (b.logBytes < MAX_BUILD_LOG_BYTES) {
      b.log.push(line)
      b.logBytes += line.length + 1
    }
    for (const l of b.listeners) l({ kind: 'log', line })
  }
  const finish = (b: Build, status: Status): void => {
    b.status = status
    for (const l of b.listeners) l({ kind: 'end' })
    b.listeners.clear()
  }

  const run = async (ctx: GatewayContext, b: Build, request: BuildRequest, r: BuildRunner): Promise<void> => {
    b.status = 'building'
    const results: Array<{ platform: string, digest: Digest, mediaType: string, size: number }> = []
    for (const platform of request.platforms) {
      const state = b.platforms[platform] as PlatformState
      state.status = 'building'
      emit(b, `${platform} | building with ${r.nameFor?.(platform) ?? r.name}`)
      try {
        const out = await r.run({
          id: b.id,
          repository: b.repository,
          recipe: request.recipe,
          ...(request.context === undefined ? {} : { context: request.context as Digest }),
          platform,
          buildArgs: request.buildArgs ?? {},
          ...(request.target === undefined ? {} : { target: request.target })
        }, {
          signal: b.abort.signal,
          log: (line) => { emit(b, `${platform} ${state.step ?? 0}| ${line}`) },
          step: (index, total) => { state.step = index; state.steps = total }
        })
        state.status = 'succeeded'
        state.digest = out.digest
        results.push({ platform, ...out })
      } catch (err) {
        state.status = b.abort.signal.aborted ? 'cancelled' : 'failed'
        const e = err as Error & { line?: number }
        b.error = { message: e.message, platform, ...(e.line === undefined ? {} : { detail: { line: e.line } }) }
        emit(b, `${platform} | ${b.abort.signal.aborted ? 'cancelled' : `failed: ${e.message}`}`)
        finish(b, state.status)
        return
      }
    }
    const root = results.length === 1 ? results[0] as typeof results[number] : await storeIndex(ctx, results)
    const bytes = await ctx.store.readBytes(root.digest, 4 * 1024 * 1024)
    recordManifest(ctx, b.repository, root.digest, root.size, parseManifestBytes(bytes, root.mediaType))
    for (const child of results) {
      if (child !== root) recordManifest(ctx, b.repository, child.digest, child.size, parseManifestBytes(await ctx.store.readBytes(child.digest, 4 * 1024 * 1024), child.mediaType))
    }
    if (b.tag !== undefined) ctx.refs.set(b.repository, b.tag, { digest: root.digest, mediaType: root.mediaType, size: root.size })
    b.result = { digest: root.digest, mediaType: root.mediaType, size: root.size, ...(b.tag === undefined ? {} : { tag: b.tag }) }
    ctx.onPush?.({ repository: b.repository, ...(b.tag === undefined ? {} : { tag: b.tag }), digest: root.digest, mediaType: root.mediaType, size: root.size, digests: [root.digest, ...results.filter(x => x !== root).map(x => x.digest)] })
    emit(b, `done | ${root.digest}${b.tag === undefined ? '' : ` tagged ${b.repository}:${b.tag}`}`)
    finish(b, 'succeeded')
  }

  return {
    enabled: runner !== undefined && runner.refuses === undefined,
    ...(runner?.refuses !== undefined ? { refusal: runner.refuses } : {}),
    submit: (ctx, repository, request) => {
      if (runner === undefined || runner.refuses !== undefined) throw unsupported(runner)
      const b: Build = {
        id: randomUUID(),
        repository,
        ...(request.tag === undefined ? {} : { tag: request.tag }),
        status: 'queued',
        createdAt: Date.now(),
        platforms: Object.fromEntries(request.platforms.map(p => [p, { status: 'queued' as Status, builder: runner.nameFor?.(p) ?? runner.name }])),
        log: [],
        logBytes: 0,
        listeners: new Set(),
        abort: new AbortController()
      }
      builds.set(b.id, b)
      if (builds.size > MAX_BUILDS_KEPT) {
        for (const old of builds.values()) { if (ended(old.status)) { builds.delete(old.id); break } }
      }
      run(ctx, b, request, runner).catch(err => {
        b.error = { message: (err as Error).message }
        emit(b, `error | ${(err as Error).message}`)
        finish(b, 'failed')
      })
      return b
    },
    get: (repository, id) => {
      const b = builds.get(id)
      return b?.repository === repository ? b : undefined
    },
    list: (repository) => [...builds.values()].filter(b => b.repository === repository).reverse(),
    overview: (tailLines) => [...builds.values()].reverse().map(b => ({
      id: b.id,
      repository: b.repository,
      ...(b.tag === undefined ? {} : { tag: b.tag }),
      status: b.status,
      createdAt: new Date(b.createdAt).toISOString(),
      platforms: b.platforms,
      ...(b.result === undefined ? {} : { result: b.result }),
      ...(b.error === undefined ? {} : { error: b.error }),
      log: b.log.slice(-tailLines)
    })),
    close: () => {
      for (const b of builds.values()) if (!ended(b.status)) b.abort.abort()
    }
  }
}

/** Stores an index of the per-platform images; returns its descriptor. */
async function storeIndex (ctx: GatewayContext, results: ReadonlyArray<{ platform: string, digest: Digest, mediaType: string, size: number }>): Promise<{ platform: string, digest: Digest, mediaType: string, size: number }> {
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: results.map(r => {
      const [os, architecture, variant] = r.platform.split('/') as [string, string, string | undefined]
      return { mediaType: r.mediaType, digest: r.digest, size: r.size, platform: { os, architecture, ...(variant === undefined ? {} : { variant }) } }
    })
  }
  const bytes = Buffer.from(JSON.stringify(index))
  const digest = sha256Digest(bytes)
  await ctx.store.ingest(bytes, { digest, size: bytes.byteLength })
  return { platform: 'index', digest, mediaType: OCI_INDEX, size: bytes.byteLength }
}

/** A build as its status route and the status page show it. */
export interface BuildSummary {
  id: string
  repository: string
  tag?: string
  status: Status
  createdAt: string
  platforms: Record<string, PlatformState>
  result?: Build['result']
  error?: Build['error']
}

function statusBody (b: Build): Record<string, unknown> {
  return {
    id: b.id,
    status: b.status,
    createdAt: new Date(b.createdAt).toISOString(),
    platforms: b.platforms,
    ...(b.result === undefined ? {} : { result: b.result }),
    ...(b.error === undefined ? {} : { error: b.error })
  }
}

function unknownBuild (repository: string, id: string): RegistryApiError {
  return new RegistryApiError('NAME_UNKNOWN', `no build ${id} in ${repository}`, { detail: { id } })
}

/** Reads a request from query parameters (for a tar body): platform (repeatable or comma list), tag, file, build-arg K=V. */
function queryOptions (params: URLSearchParams): Omit<BuildRequest, 'recipe' | 'context'> {
  const platforms = params.getAll('platform').flatMap(p => p.split(',')).filter(p => p !== '')
  const buildArgs: Record<string, string> = {}
  for (const kv of params.getAll('build-arg')) {
    const i = kv.indexOf('=')
    if (i > 0) buildArgs[kv.slice(0, i)] = kv.slice(i + 1)
  }
  return {
    platforms,
    ...(params.get('tag') === null ? {} : { tag: params.get('tag') as string }),
    ...(Object.keys(buildArgs).length === 0 ? {} : { buildArgs }),
    ...(params.get('target') === null ? {} : { target: params.get('target') as string })
  }
}

/** One regular file's text from a context tar (optionally gzip) in the store, or undefined when absent or over the recipe limit. */
async function fileFromTar (ctx: GatewayContext, digest: Digest, file: string): Promise<string | undefined> {
  const wanted = file.replace(/^(\.\/)+/, '')
  const chunks: Uint8Array[] = []
  for await (const c of ctx.store.read(digest, { offset: 0, length: Math.min(6, (await ctx.store.info(digest)).size) })) chunks.push(c)
  const head = Buffer.concat(chunks)
  const tar = decompress(ctx.store.read(digest), detectCompression(head))
  for await (const { header, body } of readTar(tar)) {
    const name = header.name.replace(/^(\.\/)+/, '')
    if (name !== wanted || header.type !== 'file' || header.size > MAX_BUILD_RECIPE_BYTES) {
      for await (const _ of body) { /* skip */ }
      continue
    }
    return Buffer.from(await readBody(body, MAX_BUILD_RECIPE_BYTES, () => new RegistryApiError('SIZE_INVALID', 'recipe too large'))).toString('utf8')
  }
  return undefined
}

function parseRequest (value: unknown): BuildRequest {
  const parsed = BuildRequestSchema.safeParse(value)
  if (!parsed.success) {
    throw new RegistryApiError('MANIFEST_INVALID', `invalid build request: ${parsed.error.issues.map(i => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`)
  }
  return parsed.data
}

/** Why this gateway takes no build: no runner, or a runner that refuses. */
function unsupported (runner: { refuses?: string } | undefined): RegistryApiError {
  return new RegistryApiError('UNSUPPORTED', runner?.refuses !== undefined
    ? `this gateway builds nothing: ${runner.refuses}`
    : 'this gateway has no builder (start it with kiln up, or put it on the peer network with kiln gateway --listen /ip4/... or --bootstrap, or submit with kiln submit)')
}

export async function submitBuild (ctx: GatewayContext, manager: BuildManager, req: GatewayRequest, repository: string): Promise<GatewayResponse> {
  if (!manager.enabled) throw unsupported(manager.refusal !== undefined ? { refuses: manager.refusal } : undefined)
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? ''
  let request: BuildRequest
  if (contentType === 'application/json') {
    const body = await readBody(req.body, MAX_SMALL_BODY, () => new RegistryApiError('SIZE_INVALID', `build request larger than ${MAX_SMALL_BODY} bytes`))
    let value: unknown
    try { value = JSON.parse(body.toString('utf8')) } catch { throw new RegistryApiError('MANIFEST_INVALID', 'build request is not JSON') }
    request = parseRequest(value)
  } else if (contentType === 'application/x-tar' || contentType === 'application/gzip' || contentType === 'application/x-gzip') {
    // The context as the body, the recipe inside it (`?file=`, default Dockerfile), options in the query.
    const params = new URL(req.url, 'http://x').searchParams
    const info = await ctx.store.ingest(req.body)
    ctx.index.addBlobs(repository, [info.digest])
    const file = params.get('file') ?? 'Dockerfile'
    const kind = /\.def$/.test(file) ? 'apptainer' : 'dockerfile'
    const text = await fileFromTar(ctx, info.digest, file)
    if (text === undefined) throw new RegistryApiError('MANIFEST_INVALID', `no recipe ${JSON.stringify(file)} in the context`, { detail: { file } })
    request = parseRequest({ ...queryOptions(params), recipe: { kind, text }, context: info.digest })
  } else {
    throw new RegistryApiError('UNSUPPORTED', `POST a build as application/json or a context tar (application/x-tar, application/gzip), not ${JSON.stringify(contentType)}`)
  }
  if (request.context !== undefined && !await hasBlob(ctx, repository, request.context as Digest)) {
    throw new RegistryApiError('BLOB_UNKNOWN', `context ${request.context} is not in ${repository}`, { detail: { digest: request.context } })
  }
  const build = manager.submit(ctx, repository, request)
  return jsonResponse(202, { id: build.id, status: build.status }, { location: `/v2/${repository}/_kiln/builds/${build.id}` })
}

/** `GET|DELETE /v2/<name>/_kiln/builds[/<id>[/logs]]`. */
export async function buildRoute (manager: BuildManager, req: GatewayRequest, method: string, repository: string, rest: string): Promise<GatewayResponse> {
  const m = /^(?:\/([0-9a-f-]{36})(\/logs)?)?\/?$/.exec(rest)
  if (m === null) throw new RegistryApiError('UNSUPPORTED', `no build route ${rest}`)
  const id = m[1]
  if (id === undefined) {
    if (method !== 'GET') throw new RegistryApiError('UNSUPPORTED', `${method} on the build list`)
    return jsonResponse(200, { builds: manager.list(repository).map(b => ({ id: b.id, status: b.status, createdAt: new Date(b.createdAt).toISOString(), ...(b.tag === undefined ? {} : { tag: b.tag }) })) })
  }
  const build = manager.get(repository, id)
  if (build === undefined) throw unknownBuild(repository, id)
  if (m[2] === undefined) {
    if (method === 'DELETE') {
      if (!ended(build.status)) build.abort.abort()
      return jsonResponse(202, { id, status: build.status })
    }
    if (method === 'GET' || method === 'HEAD') return jsonResponse(200, statusBody(build))
    throw new RegistryApiError('UNSUPPORTED', `${method} on a build`)
  }
  if (method !== 'GET') throw new RegistryApiError('UNSUPPORTED', `${method} on build logs`)
  const follow = new URL(req.url, 'http://x').searchParams.get('follow') !== 'false'
  const sse = (req.headers.accept ?? '').includes('text/event-stream')
  return { status: 200, headers: { 'content-type': sse ? 'text/event-stream' : 'text/plain; charset=utf-8', 'cache-control': 'no-cache' }, body: logStream(build, follow, sse) }
}

/** The log so far, then (when following) each new line until the build ends. */
async function * logStream (b: Build, follow: boolean, sse: boolean): AsyncGenerator<Uint8Array> {
  const format = (line: string): Buffer => Buffer.from(sse ? `event: log\ndata: ${line}\n\n` : `${line}\n`)
  const queue: Array<{ kind: 'log', line: string } | { kind: 'end' }> = []
  let wake: (() => void) | undefined
  const listener = (e: { kind: 'log', line: string } | { kind: 'end' }): void => { queue.push(e); wake?.() }
  const live = follow && !ended(b.status)
  if (live) b.listeners.add(listener)
  try {
    for (const line of [...b.log]) yield format(line)
    while (live) {
      const e = queue.shift()
      if (e === undefined) { await new Promise<void>(resolve => { wake = resolve }); wake = undefined; continue }
      if (e.kind === 'end') break
      yield format(e.line)
    }
    if (sse) yield Buffer.from(`event: end\ndata: ${JSON.stringify({ status: b.status, ...(b.result === undefined ? {} : { digest: b.result.digest }) })}\n\n`)
  } finally {
    b.listeners.delete(listener)
  }
}

/**
 * A pushed manifest whose artifactType is RECIPE_ARTIFACT_TYPE is a build
 * request: layer 1 the recipe text, layer 2 (optional) the context tar,
 * annotations the platforms and tag. Returns the request, or undefined for
 * any other manifest.
 */
export async function recipeArtifactRequest (ctx: GatewayContext, bytes: Uint8Array): Promise<BuildRequest | undefined> {
  let value: { artifactType?: string, config?: { mediaType?: string }, layers?: Array<{ mediaType: string, digest: string, size: number }>, annotations?: Record<string, string> }
  try { value = JSON.parse(Buffer.from(bytes).toString('utf8')) as typeof value } catch { return undefined }
  if (value.artifactType !== RECIPE_ARTIFACT_TYPE && value.config?.mediaType !== RECIPE_ARTIFACT_TYPE) return undefined
  const layers = value.layers ?? []
  const recipeLayer = layers.find(l => l.mediaType === RECIPE_LAYER_TYPE)
  if (recipeLayer === undefined || !isDigest(recipeLayer.digest) || recipeLayer.size > MAX_BUILD_RECIPE_BYTES) {
    throw new RegistryApiError('MANIFEST_INVALID', `a ${RECIPE_ARTIFACT_TYPE} artifact needs a ${RECIPE_LAYER_TYPE} layer of at most ${MAX_BUILD_RECIPE_BYTES} bytes`)
  }
  const contextLayer = layers.find(l => CONTEXT_LAYER_TYPES.includes(l.mediaType))
  const text = Buffer.from(await ctx.store.readBytes(recipeLayer.digest as Digest, MAX_BUILD_RECIPE_BYTES)).toString('utf8')
  const annotations = value.annotations ?? {}
  return parseRequest({
    recipe: { kind: annotations[ANNOTATION_RECIPE_KIND] === 'apptainer' ? 'apptainer' : 'dockerfile', text },
    ...(contextLayer === undefined ? {} : { context: contextLayer.digest }),
    platforms: (annotations[ANNOTATION_PLATFORMS] ?? '').split(',').map(p => p.trim()).filter(p => p !== ''),
    ...(annotations[ANNOTATION_TAG] === undefined ? {} : { tag: annotations[ANNOTATION_TAG] })
  })
}
