/**
 * Maps a request path to a route of the distribution API. Repository names
 * contain slashes, so each route is matched from its fixed suffix; the name
 * is then checked against the spec's grammar.
 */
import { MAX_NAME_LENGTH, NAME_RE } from './constants.ts'
import { RegistryApiError } from './errors.ts'

export type Route =
  | { kind: 'ping' }
  | { kind: 'token' }
  | { kind: 'catalog' }
  | { kind: 'manifest', repository: string, param: string }
  | { kind: 'blob', repository: string, param: string }
  | { kind: 'upload', repository: string, id?: string }
  | { kind: 'tags', repository: string }
  | { kind: 'referrers', repository: string, param: string }
  | { kind: 'builds', repository: string, rest: string }
  | { kind: 'status', format: 'html' | 'json' }

const NAMED: Array<[RegExp, (name: string, m: RegExpExecArray) => Route]> = [
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (repository) => ({ kind: 'upload', repository })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (repository, m) => ({ kind: 'upload', repository, id: m[2] as string })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (repository, m) => ({ kind: 'blob', repository, param: m[2] as string })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (repository, m) => ({ kind: 'manifest', repository, param: m[2] as string })],
  [/^\/v2\/(.+)\/tags\/list\/?$/, (repository) => ({ kind: 'tags', repository })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (repository, m) => ({ kind: 'referrers', repository, param: m[2] as string })],
  [/^\/v2\/(.+)\/_kiln\/builds(\/.*)?$/, (repository, m) => ({ kind: 'builds', repository, rest: m[2] ?? '' })]
]

/** The route for a path (no query), or undefined when it is not part of the API. Throws NAME_INVALID for a bad name. */
export function matchRoute (path: string): Route | undefined {
  if (path === '/v2' || path === '/v2/') return { kind: 'ping' }
  if (path === '/token') return { kind: 'token' }
  if (path === '/v2/_catalog') return { kind: 'catalog' }
  if (path === '/_kiln/status' || path === '/_kiln/status/') return { kind: 'status', format: 'html' }
  if (path === '/_kiln/status.json') return { kind: 'status', format: 'json' }
  for (const [re, make] of NAMED) {
    const m = re.exec(path)
    if (m === null) continue
    const name = m[1] as string
    if (name.length > MAX_NAME_LENGTH || !NAME_RE.test(name)) {
      throw new RegistryApiError('NAME_INVALID', `invalid repository name ${JSON.stringify(name)}`, { detail: { name } })
    }
    return make(name, m)
  }
  return undefined
}
