/**
 * What keeps password logins from being turned against the gateway.
 *
 * Terms:
 * - a password check is one scrypt hash (tens of milliseconds of a libuv
 *   pool thread, which file reads share: a flood of checks used to delay
 *   every other request's disk access by seconds);
 * - a failure is a login with a wrong password or an unknown user name;
 * - a client is a remote IP address (clientAddress): the socket's peer, or,
 *   when that peer is a reverse proxy on the same host (loopback), the
 *   address the proxy appended last to X-Forwarded-For, since otherwise
 *   every user of the proxy would share one limit.
 *
 * CheckQueue runs at most `concurrentChecks` checks at once, in order of
 * arrival, with at most `queuedChecks` waiting; beyond that a login is
 * refused with TOOMANYREQUESTS. FailureCounter counts failures per key (a
 * client, a user name) in a fixed window; a key with `maxFailures` in its
 * window is refused with TOOMANYREQUESTS and Retry-After until the window
 * ends, before any check is spent on it.
 */
import { isIP } from 'node:net'
import { LOGIN_LIMITS } from './constants.ts'
import { RegistryApiError } from './errors.ts'
import type { GatewayRequest } from './http.ts'

export interface LoginLimits {
  /** Password checks computed at once. */
  concurrentChecks: number
  /** Password checks waiting for a turn; more are refused. */
  queuedChecks: number
  /** Failed logins per client, and per user name, within `windowMs` before more attempts are refused. */
  maxFailures: number
  windowMs: number
  /** Clients and names remembered at once; beyond it the oldest are forgotten first. */
  maxTracked: number
}

const LOOPBACK = /^(127\.|::1$)/

/** The client a request counts against (see Terms); '' in-process, where there is no socket. */
export function clientAddress (req: Pick<GatewayRequest, 'remoteAddress' | 'headers'>): string {
  const peer = (req.remoteAddress ?? '').replace(/^::ffff:/, '')
  if (!LOOPBACK.test(peer)) return peer
  const forwarded = req.headers['x-forwarded-for']?.split(',').pop()?.trim().replace(/^::ffff:/, '')
  return forwarded !== undefined && isIP(forwarded) !== 0 ? forwarded : peer
}

function tooMany (message: string, retryAfterSeconds: number): RegistryApiError {
  return new RegistryApiError('TOOMANYREQUESTS', message, { headers: { 'retry-after': String(retryAfterSeconds) } })
}

export class CheckQueue {
  private readonly limits: Pick<LoginLimits, 'concurrentChecks' | 'queuedChecks'>
  private running = 0
  private readonly waiting: Array<() => void> = []

  constructor (limits: Pick<LoginLimits, 'concurrentChecks' | 'queuedChecks'> = LOGIN_LIMITS) {
    this.limits = limits
  }

  /** Runs `check` when a slot is free; throws TOOMANYREQUESTS at once when the queue is full. */
  async run<T> (check: () => Promise<T>): Promise<T> {
    if (this.running >= this.limits.concurrentChecks) {
      if (this.waiting.length >= this.limits.queuedChecks) throw tooMany('too many logins at once; try again shortly', 1)
      await new Promise<void>(resolve => { this.waiting.push(resolve) })
    } else {
      this.running++
    }
    try {
      return await check()
    } finally {
      // The slot passes straight to the next waiter, so `running` stays counted for it.
      const next = this.waiting.shift()
      if (next === undefined) this.running--
      else next()
    }
  }
}

export class FailureCounter {
  private readonly limits: Pick<LoginLimits, 'maxFailures' | 'windowMs' | 'maxTracked'>
  private readonly now: () => number
  /** Insertion order is age order: a key is re-inserted when its window restarts. */
  private readonly windows = new Map<string, { failures: number, endsAt: number }>()

  constructor (limits: Pick<LoginLimits, 'maxFailures' | 'windowMs' | 'maxTracked'> = LOGIN_LIMITS, now: () => number = Date.now) {
    this.limits = limits
    this.now = now
  }

  /** Throws TOOMANYREQUESTS, with Retry-After, while `key` has used up its failures. */
  check (key: string, what: string): void {
    const w = this.windows.get(key)
    const now = this.now()
    if (w === undefined || w.endsAt <= now || w.failures < this.limits.maxFailures) return
    throw tooMany(`too many failed logins ${what}; try again later`, Math.max(1, Math.ceil((w.endsAt - now) / 1000)))
  }

  fail (key: string): void {
    const now = this.now()
    const w = this.windows.get(key)
    if (w !== undefined && w.endsAt > now) {
      w.failures++
      return
    }
    this.windows.delete(key)
    if (this.windows.size >= this.limits.maxTracked) this.forget(now)
    this.windows.set(key, { failures: 1, endsAt: now + this.limits.windowMs })
  }

  /** Drops ended windows; if none had ended, the oldest one. */
  private forget (now: number): void {
    for (const [key, w] of this.windows) if (w.endsAt <= now) this.windows.delete(key)
    if (this.windows.size >= this.limits.maxTracked) {
      const oldest = this.windows.keys().next()
      if (oldest.done !== true) this.windows.delete(oldest.value)
    }
  }
}
