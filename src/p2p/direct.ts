/**
 * Direct channels (protocols/transport.md §5): one TCP+TLS connection that
 * carries one kiln protocol's byte stream with nothing in between, for bulk
 * data. The client opens it to a peer's `/tls` address with the protocol's
 * ALPN token as its only offer; both sides present and verify libp2p TLS
 * certificates exactly as on a libp2p TLS connection, so the channel is as
 * authenticated and as encrypted as a yamux stream would be. What it skips
 * is yamux and libp2p's stream machinery: on the receiving side the
 * plaintext is decrypted by Node's TLS straight into the caller's buffer
 * (the socket's `onread`, ByteReader's landing), and on the sending side a
 * range is one socket write.
 *
 * Only kiln nodes with the TCP+TLS transport have them (never with a pnet
 * key). A peer that does not accept the protocol answers the ALPN offer with
 * a fatal alert; the caller then uses a libp2p stream, and does not try that
 * peer directly again for a while.
 */
import type net from 'node:net'
import tls from 'node:tls'
import type { TLSSocket } from 'node:tls'
import type { Logger, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { getNetConfig } from '@libp2p/utils'
import { StreamProtocolError } from './errors.ts'
import { FailedDials } from './failed-dials.ts'
import { ByteReader } from './stream-io.ts'
import type { ByteChannel, WaitOptions } from './stream-io.ts'
import { tlsClientOptions, verifiedHandshake } from './tls-transport.ts'

/** Longest a direct dial's TCP connect plus TLS handshake may take. */
const HANDSHAKE_TIMEOUT_MS = 10_000
/** What one socket read can hold: Node decrypts at most one TLS record (16 KiB) per read. */
const SCRATCH_BYTES = 64 * 1024

export interface DirectHandlerOptions {
  /** Channels of this protocol open at once, from all peers (more are closed at once). */
  maxInbound: number
  /** Channels of this protocol open at once from one peer. */
  maxInboundPerPeer: number
  /** What a channel's reader buffers unread before it fails (the server reads only requests). */
  maxBuffered: number
}

export type DirectHandler = (channel: DirectChannel) => Promise<void>

interface Registration extends DirectHandlerOptions {
  handler: DirectHandler
  open: Map<string, number>
  total: number
}

export interface DirectChannelStats {
  /** Inbound channels handed to a handler. */
  accepted: number
  /** Inbound channels closed at once (no handler, or over a limit). */
  refused: number
  /** Outbound channels opened. */
  dialed: number
  /** Outbound dials that found no direct path to a peer that has addresses (the caller used a stream). */
  fellBack: number
}

/**
 * A node's direct channels: the protocols it serves this way and the dials
 * it makes. One per node, a libp2p service (`node.services.direct`): it
 * closes every channel still open when the node stops.
 */
export class DirectChannels {
  private readonly handlers = new Map<string, Registration>()
  /** Peers a direct dial failed to reach: not dialed directly again for 5 minutes. */
  private readonly failed = new FailedDials()
  private readonly sockets = new Set<TLSSocket>()
  private readonly counts: DirectChannelStats = { accepted: 0, refused: 0, dialed: 0, fellBack: 0 }

  readonly [Symbol.toStringTag] = 'kiln/direct-channels'

  start (): void {}

  stop (): void {
    for (const socket of this.sockets) socket.destroy()
    this.sockets.clear()
  }

  stats (): DirectChannelStats {
    return { ...this.counts }
  }

  private track (socket: TLSSocket): void {
    this.sockets.add(socket)
    socket.once('close', () => { this.sockets.delete(socket) })
  }
  private tls: { credentials: () => Promise<{ cert: string, key: string }>, log: Logger } | undefined

  /** Called by the TCP+TLS transport: from then on this node can dial and accept direct channels. */
  enable (credentials: () => Promise<{ cert: string, key: string }>, log: Logger): void {
    this.tls = { credentials, log: log.newScope('direct') }
  }

  get enabled (): boolean {
    return this.tls !== undefined
  }

  handle (protocol: string, handler: DirectHandler, options: DirectHandlerOptions): void {
    if (this.handlers.has(protocol)) throw new Error(`${protocol} already has a direct handler`)
    this.handlers.set(protocol, { ...options, handler, open: new Map(), total: 0 })
  }

  unhandle (protocol: string): void {
    this.handlers.delete(protocol)
  }

  /** True if inbound channels for this ALPN protocol are served. */
  accepts (protocol: string): boolean {
    return this.handlers.has(protocol)
  }

  /** Takes an inbound TLS socket whose ALPN chose a registered protocol (from the transport's listener). */
  accept (socket: TLSSocket, remotePeer: PeerId): void {
    const reg = this.handlers.get(socket.alpnProtocol as string)
    const peer = remotePeer.toString()
    const fromPeer = reg?.open.get(peer) ?? 0
    if (reg === undefined || reg.total >= reg.maxInbound || fromPeer >= reg.maxInboundPerPeer) {
      this.tls?.log('refusing a direct channel from %s: %s', peer, reg === undefined ? 'no handler' : 'too many open')
      this.counts.refused++
      socket.destroy()
      return
    }
    this.counts.accepted++
    this.track(socket)
    reg.total++
    reg.open.set(peer, fromPeer + 1)
    const reader = new ByteReader(reg.maxBuffered)
    socket.on('data', (bytes: Buffer) => { if (reader.push(bytes) !== undefined) socket.destroy() })
    endReaderWithSocket(socket, reader)
    const channel = new DirectChannel(socket, remotePeer, reader)
    socket.once('close', () => {
      reg.total--
      const left = (reg.open.get(peer) ?? 1) - 1
      if (left > 0) reg.open.set(peer, left); else reg.open.delete(peer)
    })
    reg.handler(channel).catch((err: unknown) => {
      this.tls?.log('direct channel handler failed - %e', err)
      channel.abort(err as Error)
    })
  }

  /**
   * Opens a direct channel for `protocol` to `peer` at one of `addrs` (its
   * `/tls` addresses). Undefined when there is no direct path: this node
   * cannot make one, the peer has none, or it refused one lately; the
   * caller then uses a libp2p stream.
   */
  async dial (peer: PeerId, addrs: Multiaddr[], protocol: string, maxBuffered: number, signal: AbortSignal): Promise<DirectChannel | undefined> {
    const key = peer.toString()
    if (this.tls === undefined || addrs.length === 0 || this.failed.recent(key)) return undefined
    const { log } = this.tls
    const credentials = await this.tls.credentials()
    for (const addr of addrs) {
      const { host, port } = getNetConfig(addr)
      const reader = new ByteReader(maxBuffered, { landing: true })
      // tls.connect hands noDelay, keepAlive and onread on to the socket (its types list none of them);
      // no `socket` option, or Node ignores `onread`: each decrypted record is written
      // into the pending readInto's target when there is one (no copy after decryption), else into
      // a scratch buffer whose bytes are pushed.
      const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES)
      let landing = false
      const connectOptions: tls.ConnectionOptions & { noDelay: boolean, keepAlive: boolean, onread: net.OnReadOpts } = {
        host,
        port: Number(port),
        noDelay: true,
        keepAlive: true,
        ...tlsClientOptions(credentials, [protocol]),
        onread: {
          buffer: () => {
            const space = reader.landingSpace()
            landing = space !== undefined
            return space ?? scratch
          },
          callback: (n: number) => {
            if (landing) reader.landed(n)
            else if (reader.push(scratch.subarray(0, n), true) !== undefined) socket.destroy()
            return true
          }
        }
      }
      const socket = tls.connect(connectOptions)
      endReaderWithSocket(socket, reader)
      try {
        const remotePeer = await verifiedHandshake(socket, 'secureConnect', peerIdFromString(key), AbortSignal.any([signal, AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS)]), log)
        if (socket.alpnProtocol !== protocol) throw new StreamProtocolError(`${key} did not accept ${protocol}`)
        this.counts.dialed++
        this.track(socket)
        return new DirectChannel(socket, remotePeer, reader)
      } catch (err) {
        socket.destroy()
        signal.throwIfAborted()
        log('direct %s channel to %s at %s failed - %e', protocol, key, addr.toString(), err)
      }
    }
    this.failed.note(key)
    this.counts.fellBack++
    return undefined
  }
}

/** The reader sees the socket's end, clean or not; bytes already pushed stay readable after a clean one. */
function endReaderWithSocket (socket: TLSSocket, reader: ByteReader): void {
  socket.on('error', (err) => { reader.end(err) })
  socket.once('end', () => { reader.end() })
  socket.once('close', () => { reader.end() })
}

/** One direct channel: a verified TLS socket and a reader of what it receives. */
export class DirectChannel implements ByteChannel {
  readonly remotePeer: PeerId
  readonly reader: ByteReader
  private readonly socket: TLSSocket

  constructor (socket: TLSSocket, remotePeer: PeerId, reader: ByteReader) {
    this.socket = socket
    this.remotePeer = remotePeer
    this.reader = reader
  }

  get open (): boolean {
    return !this.socket.destroyed && this.socket.writable
  }

  /** Writes bytes, waiting for the socket to drain when its buffer is full. */
  async send (bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (this.socket.destroyed) throw new StreamProtocolError('direct channel closed')
    if (this.socket.write(bytes)) return
    await this.until((done) => { this.socket.once('drain', done); return () => { this.socket.off('drain', done) } }, signal)
  }

  /**
   * Writes bytes and resolves when TLS has taken them (encrypted and handed
   * to the kernel): from then on their memory may be filled again.
   */
  async sendConsumed (bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (this.socket.destroyed) throw new StreamProtocolError('direct channel closed')
    // The write callback comes later (never during write()); one that comes after a close or an abort changes nothing.
    await this.until((done) => { this.socket.write(bytes, (err) => { done(err ?? undefined) }); return () => {} }, signal)
  }

  /** Waits for `arm`'s event, the socket's close or the signal, whichever comes first. */
  private async until (arm: (done: (err?: Error) => void) => () => void, signal?: AbortSignal): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      let disarm = (): void => {}
      const done = (err?: Error): void => {
        disarm()
        this.socket.off('close', onClose)
        signal?.removeEventListener('abort', onAbort)
        if (err !== undefined) reject(err); else resolve()
      }
      const onClose = (): void => { done(new StreamProtocolError('direct channel closed')) }
      const onAbort = (): void => { done(signal?.reason as Error) }
      if (signal?.aborted === true) { onAbort(); return }
      disarm = arm(done)
      this.socket.once('close', onClose)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  async readFrame (maxBytes: number, options: WaitOptions): Promise<Uint8Array | undefined> {
    return await this.reader.readFrame(maxBytes, options)
  }

  /**
   * Fills target (see ByteReader.readInto). A read that fails leaves the
   * channel closed: the socket could otherwise still write into target.
   */
  async readInto (target: Uint8Array, options: WaitOptions, onBytes?: (n: number) => void): Promise<void> {
    try {
      await this.reader.readInto(target, options, onBytes)
    } catch (err) {
      this.abort(err as Error)
      throw err
    }
  }

  /** Ends this side and waits (at most until signal) for the peer to close. */
  async close (signal?: AbortSignal): Promise<void> {
    if (this.socket.destroyed) return
    const closed = new Promise<void>(resolve => { this.socket.once('close', () => { resolve() }) })
    this.socket.end()
    const onAbort = (): void => { this.socket.destroy() }
    signal?.addEventListener('abort', onAbort, { once: true })
    try { await closed } finally { signal?.removeEventListener('abort', onAbort) }
  }

  abort (_err: Error): void {
    this.socket.destroy()
  }
}
