/**
 * Authentication and authorization of gateway requests.
 *
 * Without an `auth` config the gateway is open: anyone may pull and push
 * (fine on loopback, refused elsewhere by the CLI). With one:
 * - anonymous requests may pull when `anonymousRead` is on (default);
 * - users log in with basic auth, either on each request or once at
 *   `/token`, the registry token flow docker, podman and skopeo follow:
 *   a 401 carries `WWW-Authenticate: Bearer realm=".../token",service=...,
 *   scope="repository:NAME:pull,push"`, the client fetches a short-lived
 *   token there and retries with `Authorization: Bearer`;
 * - each user's rules say which repositories they may read, write or build.
 *
 *
 * Password checks are bounded (./login-guard.ts): a few at once with a
 * bounded queue, failed logins limited per client address and per user
 * name (429 with Retry-After), and unknown names checked against a hash
 * that matches nothing, so that they take as long as known ones. Tokens are
 * checked without any of this: a bearer request never waits for a password
 * check.
 *
 * Credentials are never logged; a failed login logs the user name only.
 */
import { createHash, randomBytes } from 'node:crypto'
import { allowedActions, entriesAllow, formatScope, parseScope } from './access.ts'
import type { AccessEntry, AccessRule, Action } from './access.ts'
import { DEFAULT_SERVICE, LOGIN_LIMITS, TOKEN_TTL_SECONDS } from './constants.ts'
import { RegistryApiError } from './errors.ts'
import { jsonResponse } from './http.ts'
import type { GatewayRequest, GatewayResponse } from './http.ts'
import { CheckQueue, clientAddress, FailureCounter } from './login-guard.ts'
import type { LoginLimits } from './login-guard.ts'
import { unmatchableHash, verifyPassword } from './passwords.ts'
import { signToken, verifyToken } from './tokens.ts'

export interface GatewayUser {
  name: string
  /** From hashPassword (`$scrypt$...`). */
  passwordHash: string
  access: AccessRule[]
}

export interface GatewayAuthInit {
  /** Anonymous pull of every repository; default true. */
  anonymousRead?: boolean
  users?: GatewayUser[]
  /** HMAC key for tokens; default a random key per process (tokens die with it). */
  tokenKey?: Uint8Array
  tokenTtlSeconds?: number
  /** `service` in challenges and tokens; default `kiln-gateway`. */
  service?: string
  /** Absolute URL of the token endpoint; default `<scheme>://<Host>/token` from the request. */
  realm?: string
  /** Bounds on password checks; each field defaults to LOGIN_LIMITS. */
  loginLimits?: Partial<LoginLimits>
}

/** Who is making a request, and what they may do. */
export interface Principal {
  /** User name; undefined for anonymous. */
  readonly name: string | undefined
  readonly via: 'open' | 'anonymous' | 'basic' | 'bearer'
  allows: (repository: string, actions: readonly Action[]) => boolean
}

export interface Authenticator {
  /** No auth configured: anyone may do anything. */
  readonly open: boolean
  /** Anonymous requests may pull (true on an open gateway). */
  readonly anonymousRead: boolean
  /** Who sent the request; throws UNAUTHORIZED for wrong credentials or a bad token. */
  authenticate: (req: GatewayRequest) => Promise<Principal>
  /** Throws UNAUTHORIZED (with a challenge) or DENIED unless principal may do actions on repository. */
  authorize: (req: GatewayRequest, principal: Principal, repository: string, actions: readonly Action[]) => void
  /** For `GET /v2/`: throws UNAUTHORIZED with a challenge when a login is expected and none was given. */
  checkPing: (req: GatewayRequest, principal: Principal) => void
  /** `GET /token`. */
  token: (req: GatewayRequest) => Promise<GatewayResponse>
}

const BASIC_CACHE_MS = 5 * 60 * 1000

const OPEN: Principal = { name: undefined, via: 'open', allows: () => true }

function parseBasic (header: string): { user: string, password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header)
  if (m === null) return undefined
  const text = Buffer.from(m[1] as string, 'base64').toString('utf8')
  const colon = text.indexOf(':')
  if (colon < 0) return undefined
  return { user: text.slice(0, colon), password: text.slice(colon + 1) }
}

export function createAuthenticator (init: GatewayAuthInit | undefined): Authenticator {
  if (init === undefined) {
    return {
      open: true,
      anonymousRead: true,
      authenticate: async () => OPEN,
      authorize: () => {},
      checkPing: () => {},
      token: async (req) => {
        // Open gateway: hand out a token anyway, for clients that insist on the flow.
        const scopes = new URL(req.url, 'http://x').searchParams.getAll('scope')
        return jsonResponse(200, { token: 'open', access_token: 'open', expires_in: TOKEN_TTL_SECONDS, issued_at: new Date().toISOString(), scopes })
      }
    }
  }
  const anonymousRules: AccessRule[] = init.anonymousRead === false ? [] : [{ repository: '**', allow: ['read'] }]
  const users = new Map((init.users ?? []).map(u => [u.name, u]))
  const key = init.tokenKey ?? randomBytes(32)
  const ttl = init.tokenTtlSeconds ?? TOKEN_TTL_SECONDS
  const service = init.service ?? DEFAULT_SERVICE
  const verified = new Map<string, number>()
  const limits: LoginLimits = { ...LOGIN_LIMITS, ...init.loginLimits }
  const checks = new CheckQueue(limits)
  const failures = new FailureCounter(limits)
  const noSuchUser = unmatchableHash()

  const rulesPrincipal = (name: string | undefined, via: Principal['via'], rules: readonly AccessRule[]): Principal => ({
    name,
    via,
    allows: (repository, actions) => {
      const allowed = allowedActions(rules, repository)
      return actions.every(a => allowed.has(a))
    }
  })
  const anonymous = rulesPrincipal(undefined, 'anonymous', anonymousRules)

  const realm = (req: GatewayRequest): string => init.realm ?? `${req.secure === true ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}/token`
  const challenge = (req: GatewayRequest, scope?: string, error?: string): string =>
    `Bearer realm="${realm(req)}",service="${service}"${scope === undefined ? '' : `,scope="${scope}"`}${error === undefined ? '' : `,error="${error}"`}`

  const unauthorized = (req: GatewayRequest, message: string, scope?: string, error?: string): RegistryApiError =>
    new RegistryApiError('UNAUTHORIZED', message, { headers: { 'www-authenticate': challenge(req, scope, error) } })

  const login = async (header: string, req: GatewayRequest): Promise<{ user: GatewayUser }> => {
    const creds = parseBasic(header)
    if (creds === undefined) throw unauthorized(req, 'invalid username or password')
    const user = users.get(creds.user)
    // A password verified lately passes without a check, even while its name is being guessed at;
    // each use keeps it a while longer, so a user who keeps working is not locked out by someone guessing.
    const cacheKey = user === undefined ? undefined : createHash('sha256').update(`${creds.user}\0${creds.password}\0${user.passwordHash}`).digest('hex')
    const until = cacheKey === undefined ? undefined : verified.get(cacheKey)
    if (user !== undefined && cacheKey !== undefined && until !== undefined && until > Date.now()) {
      verified.set(cacheKey, Date.now() + BASIC_CACHE_MS)
      return { user }
    }
    // Names are hashed: any length costs the same memory.
    const client = `addr ${clientAddress(req)}`
    const name = `user ${createHash('sha256').update(creds.user).digest('base64')}`
    const limit = (): void => {
      failures.check(client, 'from this address')
      failures.check(name, 'for this user name')
    }
    limit()
    const ok = await checks.run(async () => {
      // Again once its turn comes: the checks queued before it may have used up the limit.
      limit()
      return await verifyPassword(creds.password, user?.passwordHash ?? noSuchUser)
    })
    if (!ok || user === undefined || cacheKey === undefined) {
      failures.fail(client)
      failures.fail(name)
      throw unauthorized(req, 'invalid username or password')
    }
    verified.set(cacheKey, Date.now() + BASIC_CACHE_MS)
    return { user }
  }

  const authenticate = async (req: GatewayRequest): Promise<Principal> => {
    const header = req.headers.authorization
    if (header === undefined || header === '') return anonymous
    if (/^Basic\s/i.test(header)) {
      const { user } = await login(header, req)
      return rulesPrincipal(user.name, 'basic', user.access)
    }
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (bearer !== null) {
      const payload = verifyToken(key, bearer[1] as string, service)
      if (payload === undefined) throw unauthorized(req, 'invalid or expired token', undefined, 'invalid_token')
      return { name: payload.sub, via: 'bearer', allows: (repository, actions) => entriesAllow(payload.access, repository, actions) }
    }
    throw unauthorized(req, 'unsupported authorization scheme')
  }

  return {
    open: false,
    anonymousRead: init.anonymousRead !== false,
    authenticate,
    authorize: (req, principal, repository, actions) => {
      if (principal.allows(repository, actions)) return
      const scope = formatScope(repository, actions.includes('pull') || actions.length === 0 ? actions : ['pull', ...actions])
      if (principal.via === 'anonymous') throw unauthorized(req, `authentication required to ${actions.join(',')} ${repository}`, scope)
      if (principal.via === 'bearer') throw unauthorized(req, `token does not grant ${actions.join(',')} on ${repository}`, scope, 'insufficient_scope')
      throw new RegistryApiError('DENIED', `${principal.name ?? 'anonymous'} may not ${actions.join(',')} ${repository}`)
    },
    checkPing: (req, principal) => {
      if (principal.via === 'anonymous' && users.size > 0) throw unauthorized(req, 'authentication required')
    },
    token: async (req) => {
      const header = req.headers.authorization
      const user = header !== undefined && /^Basic\s/i.test(header) ? (await login(header, req)).user : undefined
      const rules = user?.access ?? anonymousRules
      const params = new URL(req.url, 'http://x').searchParams
      const access: AccessEntry[] = []
      for (const text of params.getAll('scope').flatMap(s => s.split(' '))) {
        const scope = parseScope(text)
        if (scope === undefined || scope.type !== 'repository') continue
        const allowed = allowedActions(rules, scope.name)
        const actions = scope.actions.filter(a => a === '*' ? false : allowed.has(a as Action))
        if (scope.actions.includes('*')) actions.push(...allowed)
        if (actions.length > 0) access.push({ type: 'repository', name: scope.name, actions: [...new Set(actions)] })
      }
      const iat = Math.floor(Date.now() / 1000)
      const token = signToken(key, { ...(user === undefined ? {} : { sub: user.name }), aud: service, iat, exp: iat + ttl, access })
      return jsonResponse(200, { token, access_token: token, expires_in: ttl, issued_at: new Date(iat * 1000).toISOString() }, { 'cache-control': 'no-store' })
    }
  }
}
