/**
 * Peers that a certain kind of dial (TCP+TLS, a direct channel) failed to
 * reach lately: not tried that way again until `retryAfterMs` has passed,
 * so each use of the peer does not pay for the same failure. Bounded: at
 * `max` entries the expired ones are dropped.
 */
export class FailedDials {
  private readonly failedAt = new Map<string, number>()
  private readonly retryAfterMs: number
  private readonly max: number

  constructor (retryAfterMs = 5 * 60_000, max = 4096) {
    this.retryAfterMs = retryAfterMs
    this.max = max
  }

  /** True while the peer's last failure is younger than retryAfterMs. */
  recent (peer: string): boolean {
    return (this.failedAt.get(peer) ?? 0) > Date.now() - this.retryAfterMs
  }

  note (peer: string): void {
    if (this.failedAt.size >= this.max) {
      for (const [p, at] of this.failedAt) if (at <= Date.now() - this.retryAfterMs) this.failedAt.delete(p)
    }
    this.failedAt.set(peer, Date.now())
  }
}
