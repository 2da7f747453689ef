/**
 * The body of a request received over node:http, as handlers read it.
 *
 * - Idle-timed, not time-limited: each chunk must arrive within `idleMs` of
 *   the handler asking for it, else the read throws BodyIdleTimeoutError. A
 *   slow but steady upload takes as long as it needs (node's whole-request
 *   timeout is off, see ./gateway.ts); a client that stops sending is cut off.
 * - A handler that stops reading early (it answers an error before the whole
 *   body came) does not destroy the request, so its response still reaches
 *   the client. Closing a socket with unread bytes makes the kernel send a
 *   reset, which makes the client lose the response it has not read yet
 *   (skopeo: "write: broken pipe" instead of the 507). So the rest of the
 *   body is read and dropped for a bounded time (`discardRest`) before the
 *   response is sent: a client that asked for `Connection: close` (skopeo's
 *   chunked PATCH does) has its socket closed by node:http as soon as the
 *   response is written, and nothing could read the rest after that. What
 *   is still unread then closes the connection after the response (`finish`).
 *
 * In-process callers (GatewayRequest bodies of their own) have no socket and
 * no idle timer.
 */
import type { IncomingMessage } from 'node:http'

/** A request body that sent nothing for the idle timeout. */
export class BodyIdleTimeoutError extends Error {
  static override readonly name = 'BodyIdleTimeoutError'
  override readonly name = BodyIdleTimeoutError.name
  constructor (idleMs: number) { super(`no request body bytes arrived for ${idleMs / 1000} s`) }
}

export class NodeRequestBody implements AsyncIterable<Uint8Array> {
  private readonly req: IncomingMessage
  private readonly idleMs: number
  private iterator: AsyncIterator<Buffer> | undefined
  /** A read still under way when a wait for it timed out; the next wait takes it over. */
  private pending: Promise<IteratorResult<Buffer>> | undefined

  constructor (req: IncomingMessage, idleMs: number) {
    this.req = req
    this.idleMs = idleMs
  }

  /** Whether the client has not sent the whole body yet (read by a handler or not). */
  get unfinished (): boolean {
    return !this.req.complete
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Uint8Array> {
    for (;;) {
      const r = await this.next(this.idleMs)
      if (r.done === true) return
      yield r.value
    }
  }

  /**
   * Reads and drops what is left of a body a handler did not read to its
   * end, for at most `lingerMs` (and no longer than the idle timeout between
   * chunks). Resolves with whether the client sent the whole body. Never throws.
   */
  async discardRest (lingerMs: number): Promise<boolean> {
    if (!this.unfinished) return true
    const deadline = Date.now() + lingerMs
    try {
      for (let left = lingerMs; left > 0 && !this.req.complete; left = deadline - Date.now()) {
        if ((await this.next(Math.min(left, this.idleMs))).done === true) break
      }
    } catch { /* timed out or the client went away */ }
    return this.req.complete
  }

  /** After the response: what discardRest leaves unread closes the connection. Never throws. */
  async finish (lingerMs: number): Promise<void> {
    if (!await this.discardRest(lingerMs)) this.req.socket.destroy()
  }

  private async next (timeoutMs: number): Promise<IteratorResult<Buffer>> {
    // Not destroyed when a handler stops early: the response must still go out (see above).
    this.iterator ??= this.req.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>
    if (this.pending === undefined) {
      this.pending = this.iterator.next()
      this.pending.catch(() => { /* seen by whoever awaits it; none may, after a timeout */ })
    }
    let timer: NodeJS.Timeout | undefined
    const idle = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new BodyIdleTimeoutError(this.idleMs)) }, timeoutMs) })
    try {
      const r = await Promise.race([this.pending, idle])
      this.pending = undefined
      return r
    } catch (err) {
      if (!(err instanceof BodyIdleTimeoutError)) this.pending = undefined
      throw err
    } finally {
      clearTimeout(timer)
    }
  }
}
