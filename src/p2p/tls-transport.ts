/**
 * TCP with TLS 1.3 from the first byte: a libp2p transport whose
 * connections are encrypted and authenticated by Node's own TLS (OpenSSL,
 * in native code) instead of an encrypter negotiated on top of a plain
 * socket. Addresses are `/ip4/<host>/tcp/<port>/tls` (also ip6, dns).
 *
 * Why: the bytes a node receives pass through @libp2p/noise's JavaScript
 * framing and one Node cipher call per 64 KiB message, and @libp2p/tls
 * runs TLS over a JavaScript duplex; either way one connection carries a
 * few hundred MB/s. Node's TLS on the socket itself decrypts in C++ and
 * hands out plaintext, several times that (docs/network.md).
 *
 * Identity is the libp2p TLS handshake's (libp2p/specs tls/tls.md): each
 * side presents a self-signed certificate carrying its libp2p public key
 * and a signature over the certificate key, both sides verify it, and the
 * peer id comes from it. The stream muxer is chosen by ALPN (the spec's
 * early muxer negotiation), so after the handshake the connection goes
 * straight to yamux. A pnet key cannot be applied to these connections, so
 * a node with a pre-shared key does not use this transport.
 */
import net from 'node:net'
import tls from 'node:tls'
import type { TLSSocket } from 'node:tls'
import {
  InvalidCryptoExchangeError, serviceCapabilities, transportSymbol
} from '@libp2p/interface'
import type {
  AbortOptions, ComponentLogger, Connection, CreateListenerOptions, DialTransportOptions, Listener, ListenerEvents, Logger,
  PeerId, PrivateKey, StreamMuxerFactory, Transport, Upgrader
} from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { generateCertificate, verifyPeerCertificate } from '@libp2p/tls/utils'
import { AbstractMultiaddrConnection, getNetConfig, getThinWaistAddresses } from '@libp2p/utils'
import type { AbstractMultiaddrConnectionInit, SendResult } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { DirectChannels } from './direct.ts'

/** The multiaddr code of `/tls`. */
const CODE_TLS = 448
const CODE_TCP = 6
export const CODE_P2P = 421
const HOST_CODES = new Set([4, 41, 53, 54, 55]) // ip4, ip6, dns, dns4, dns6
/** AES-GCM first: with AES-NI it is the fastest AEAD OpenSSL has here; ChaCha20 stays for machines without. */
const CIPHERSUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256'
/** Same as @libp2p/tcp: a connection with no traffic at all for this long is closed. */
const INACTIVITY_TIMEOUT_MS = 2 * 60_000

export interface TcpTlsComponents {
  privateKey: PrivateKey
  logger: ComponentLogger
}

export interface TcpTlsInit {
  /** Longest a dial's TCP connect plus TLS handshake may take (the dial's own signal also applies). */
  handshakeTimeoutMs?: number
  /**
   * Direct channels (src/p2p/direct.ts): connections whose ALPN names a
   * protocol registered there skip yamux and go to its handler; the
   * registry also dials them with this transport's certificate.
   */
  direct?: DirectChannels
}

/** True for `/<ip4|ip6|dns*>/<host>/tcp/<port>/tls`, optionally followed by `/p2p/<id>`. */
export function isTcpTlsAddress (ma: Multiaddr): boolean {
  const parts = ma.getComponents()
  const n = parts.at(-1)?.code === CODE_P2P ? parts.length - 1 : parts.length
  return n === 3 && HOST_CODES.has(parts[0]!.code) && parts[1]!.code === CODE_TCP && parts[2]!.code === CODE_TLS
}

/** The `/tls` twin of a plain TCP listen address, on a port of its own (0: any free one). */
export function tlsTwin (ma: Multiaddr, port = 0): Multiaddr {
  const [host, , ...rest] = ma.getComponents()
  if (host === undefined || rest.length > 1) throw new Error(`${ma.toString()} is not a plain TCP address`)
  return multiaddr(`/${host.name}/${host.value ?? ''}/tcp/${port}/tls`)
}

/** A libp2p transport: TCP sockets that speak TLS 1.3 from the first byte (see the module comment). */
export function tcpTls (init: TcpTlsInit = {}): (components: TcpTlsComponents) => Transport {
  return (components) => new TcpTlsTransport(components, init)
}

class TcpTlsTransport implements Transport {
  readonly [transportSymbol] = true as const
  readonly [Symbol.toStringTag] = 'kiln/tcp-tls'
  readonly [serviceCapabilities] = ['@libp2p/transport']
  private readonly components: TcpTlsComponents
  private readonly init: TcpTlsInit
  private readonly log: Logger
  /** One certificate per node: the libp2p spec lets it live for the node's life, and a P-256 key per connection costs a handshake's worth of CPU. */
  private certificate: Promise<{ cert: string, key: string }> | undefined

  constructor (components: TcpTlsComponents, init: TcpTlsInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('kiln:tcp-tls')
    init.direct?.enable(async () => await this.credentials(), this.log)
  }

  listenFilter = (addrs: Multiaddr[]): Multiaddr[] => addrs.filter(isTcpTlsAddress)
  dialFilter = (addrs: Multiaddr[]): Multiaddr[] => addrs.filter(isTcpTlsAddress)

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    const expected = ma.getComponents().findLast(c => c.code === CODE_P2P)?.value
    const signal = AbortSignal.any([options.signal, AbortSignal.timeout(this.init.handshakeTimeoutMs ?? 20_000)])
    const muxers = options.upgrader.getStreamMuxers()
    const { host, port } = getNetConfig(ma)
    const credentials = await this.credentials()
    const raw = net.connect({ host, port: Number(port), noDelay: true, keepAlive: true })
    const socket = tls.connect({ socket: raw, ...tlsClientOptions(credentials, [...muxers.keys()]) })
    // Errors between the handshake and the connection taking over (the certificate check is async) must not go unheard.
    socket.on('error', (err) => { this.log('outbound TLS socket error - %e', err) })
    try {
      const remotePeer = await verifiedHandshake(socket, 'secureConnect', expected !== undefined ? peerIdFromString(expected) : undefined, signal, this.log)
      const maConn = new TlsSocketConnection({ socket, remoteAddr: ma, direction: 'outbound', log: this.log.newScope('connection') })
      return await options.upgrader.upgradeOutbound(maConn, {
        signal: options.signal,
        onProgress: options.onProgress,
        skipEncryption: true,
        skipProtection: true,
        remotePeer,
        muxerFactory: chosenMuxer(socket, muxers)
      })
    } catch (err) {
      socket.destroy()
      throw err
    }
  }

  createListener (options: CreateListenerOptions): Listener {
    return new TcpTlsListener(options.upgrader, this.log, async () => await this.credentials(), this.init.direct)
  }

  private async credentials (): Promise<{ cert: string, key: string }> {
    this.certificate ??= generateCertificate(this.components.privateKey)
    return await this.certificate
  }
}

/** A kiln TLS dial's options: this node's certificate, TLS 1.3 in kiln's cipher order, and the ALPN offers. */
export function tlsClientOptions (credentials: { cert: string, key: string }, alpn: string[]): tls.ConnectionOptions {
  return {
    ...credentials,
    minVersion: 'TLSv1.3',
    ciphers: CIPHERSUITES,
    rejectUnauthorized: false, // the certificate is self-signed; verifiedHandshake() checks it the libp2p way
    ALPNProtocols: alpn
  }
}

/**
 * Waits for a TLS handshake and returns the remote peer id, verified the
 * libp2p TLS way (the certificate carries the peer's key and its signature).
 */
export async function verifiedHandshake (socket: TLSSocket, event: 'secure' | 'secureConnect', expected: PeerId | undefined, signal: AbortSignal, log: Logger): Promise<PeerId> {
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      socket.off(event, onSecure)
      socket.off('error', done)
      socket.off('close', onClose)
      signal.removeEventListener('abort', onAbort)
      if (err !== undefined) reject(err); else resolve()
    }
    const onSecure = (): void => { done() }
    const onClose = (): void => { done(new InvalidCryptoExchangeError('connection closed during the TLS handshake')) }
    const onAbort = (): void => { done(signal.reason as Error) }
    if (signal.aborted) { onAbort(); return }
    socket.once(event, onSecure)
    socket.once('error', done)
    socket.once('close', onClose)
    signal.addEventListener('abort', onAbort, { once: true })
  })
  const certificate = socket.getPeerCertificate()
  // An empty object when the peer sent none (a client without a certificate).
  if (certificate?.raw === undefined) throw new InvalidCryptoExchangeError('the peer presented no certificate')
  const key = certificate.raw.toString('base64')
  const known = verifiedCertificates.get(key)
  const now = Date.now()
  if (known !== undefined && known.notBefore <= now && now <= known.notAfter && (expected === undefined || expected.equals(known.peer))) return known.peer
  const peer = await verifyPeerCertificate(certificate.raw, expected, log)
  if (verifiedCertificates.size >= VERIFIED_CERTIFICATES_MAX) verifiedCertificates.delete(verifiedCertificates.keys().next().value as string)
  verifiedCertificates.set(key, { peer, notBefore: Date.parse(certificate.valid_from), notAfter: Date.parse(certificate.valid_to) })
  return peer
}

/**
 * Certificates already verified, by their exact DER bytes. A node presents
 * the same certificate on every connection (one per node, see
 * TcpTlsTransport.credentials), and the libp2p check of one (X.509 and
 * ASN.1 parsing and two signature checks, in JavaScript) cost ~10-20 ms of
 * CPU: a pull that opens a dozen direct channels paid it a dozen times on
 * each end. The result depends only on those bytes and the time (their
 * validity period is checked again on each use); that the peer holds the
 * certificate's key is proven by the TLS handshake itself, every time.
 */
const verifiedCertificates = new Map<string, { peer: PeerId, notBefore: number, notAfter: number }>()
const VERIFIED_CERTIFICATES_MAX = 4096

/** The muxer the server picked by ALPN; undefined (multistream negotiation) when it picked none. */
function chosenMuxer (socket: TLSSocket, muxers: Map<string, StreamMuxerFactory>): StreamMuxerFactory | undefined {
  return typeof socket.alpnProtocol === 'string' ? muxers.get(socket.alpnProtocol) : undefined
}

class TcpTlsListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  private readonly upgrader: Upgrader
  private readonly log: Logger
  private readonly server: net.Server
  private readonly sockets = new Set<net.Socket>()
  private readonly shutdown = new AbortController()
  private listeningAddr: Multiaddr | undefined
  private readonly credentials: () => Promise<{ cert: string, key: string }>
  private readonly direct: DirectChannels | undefined

  constructor (upgrader: Upgrader, log: Logger, credentials: () => Promise<{ cert: string, key: string }>, direct: DirectChannels | undefined) {
    super()
    this.upgrader = upgrader
    this.log = log.newScope('listener')
    this.credentials = credentials
    this.direct = direct
    this.server = net.createServer({ noDelay: true, keepAlive: true }, (socket) => { void this.onSocket(socket) })
    this.server.on('error', (err) => { this.safeDispatchEvent('error', { detail: err }) })
    this.server.on('close', () => { this.safeDispatchEvent('close') })
  }

  private async onSocket (raw: net.Socket): Promise<void> {
    this.sockets.add(raw)
    raw.once('close', () => { this.sockets.delete(raw) })
    // A reset while the certificate is made or checked (both async) must not go unheard.
    raw.on('error', (err) => { this.log('inbound socket error - %e', err) })
    // The handshake counts against the node's inbound upgrade timeout, as a Noise handshake would.
    const signal = this.upgrader.createInboundAbortSignal(this.shutdown.signal)
    const muxers = this.upgrader.getStreamMuxers()
    let socket: TLSSocket | undefined
    try {
      socket = new tls.TLSSocket(raw, {
        isServer: true,
        ...await this.credentials(),
        minVersion: 'TLSv1.3',
        ciphers: CIPHERSUITES,
        requestCert: true,
        rejectUnauthorized: false,
        // A muxer the client offers, else a direct channel's protocol, else `libp2p` (muxer
        // negotiation follows), else a fatal alert.
        ALPNCallback: ({ protocols }) => protocols.find(p => muxers.has(p)) ?? protocols.find(p => this.direct?.accepts(p) === true) ?? protocols.find(p => p === 'libp2p')
      })
      socket.on('error', (err) => { this.log('inbound TLS socket error - %e', err) })
      const remotePeer = await verifiedHandshake(socket, 'secure', undefined, signal, this.log)
      if (typeof socket.alpnProtocol === 'string' && this.direct?.accepts(socket.alpnProtocol) === true) {
        this.direct.accept(socket, remotePeer)
        return
      }
      const localAddr = this.listeningAddr
      const maConn = new TlsSocketConnection({ socket, direction: 'inbound', localAddr, log: this.log.newScope('connection') })
      await this.upgrader.upgradeInbound(maConn, {
        signal: this.shutdown.signal,
        skipEncryption: true,
        skipProtection: true,
        remotePeer,
        muxerFactory: chosenMuxer(socket, muxers)
      })
    } catch (err) {
      this.log.error('inbound TLS connection failed - %e', err)
      socket?.destroy()
      raw.destroy()
    } finally {
      signal.clear()
    }
  }

  async listen (ma: Multiaddr): Promise<void> {
    if (this.listeningAddr !== undefined) throw new Error('already listening')
    const { host, port } = getNetConfig(ma)
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen({ host, port: Number(port) }, () => { this.server.off('error', reject); resolve() })
    })
    this.listeningAddr = ma
    this.safeDispatchEvent('listening')
  }

  getAddrs (): Multiaddr[] {
    const address = this.server.address()
    if (this.listeningAddr === undefined || address === null || typeof address === 'string') return []
    return getThinWaistAddresses(this.listeningAddr, address.port).map(a => a.encapsulate('/tls'))
  }

  updateAnnounceAddrs (): void {}

  async close (options?: AbortOptions): Promise<void> {
    this.shutdown.abort(new Error('listener closed'))
    if (!this.server.listening) { for (const socket of this.sockets) socket.destroy(); return }
    const closed = new Promise<void>(resolve => { this.server.close(() => { resolve() }) })
    for (const socket of this.sockets) socket.destroy()
    await closed
    options?.signal?.throwIfAborted()
  }
}

interface TlsSocketConnectionInit extends Omit<AbstractMultiaddrConnectionInit, 'remoteAddr'> {
  socket: TLSSocket
  remoteAddr?: Multiaddr
}

/** A MultiaddrConnection over a TLS socket (after @libp2p/tcp's one over a plain socket). */
class TlsSocketConnection extends AbstractMultiaddrConnection {
  private readonly socket: TLSSocket

  constructor (init: TlsSocketConnectionInit) {
    const { socket } = init
    if (init.remoteAddr === undefined && (socket.remoteAddress === undefined || socket.remotePort === undefined)) {
      throw new InvalidCryptoExchangeError('the TLS socket closed before its address was known')
    }
    const remoteAddr = init.remoteAddr ?? multiaddr(`/${net.isIPv6(socket.remoteAddress!) ? 'ip6' : 'ip4'}/${socket.remoteAddress!}/tcp/${socket.remotePort!}/tls`)
    super({ ...init, remoteAddr, inactivityTimeout: init.inactivityTimeout ?? INACTIVITY_TIMEOUT_MS })
    this.socket = socket
    socket.on('data', (buf: Buffer) => { this.onData(buf) })
    socket.on('error', (err) => { this.abort(err) })
    socket.setTimeout(this.inactivityTimeout)
    socket.once('timeout', () => { this.abort(new Error('TLS connection inactive')) })
    socket.once('end', () => { this.onTransportClosed() })
    socket.once('close', (hadError) => {
      if (hadError) this.abort(new Error('TLS transmission error'))
      else this.onTransportClosed()
    })
    socket.on('drain', () => { this.safeDispatchEvent('drain') })
  }

  sendData (data: Uint8ArrayList): SendResult {
    let sentBytes = 0
    let canSendMore = true
    for (const buf of data) {
      sentBytes += buf.byteLength
      canSendMore = this.socket.write(buf)
      if (!canSendMore) break
    }
    return { sentBytes, canSendMore }
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    if (this.socket.destroyed) return
    const closed = new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(options?.signal?.reason as Error) }
      options?.signal?.addEventListener('abort', onAbort, { once: true })
      this.socket.once('close', () => { options?.signal?.removeEventListener('abort', onAbort); resolve() })
    })
    this.socket.destroySoon()
    await closed
  }

  sendReset (): void {
    this.socket.destroy()
  }

  sendPause (): void {
    this.socket.pause()
  }

  sendResume (): void {
    this.socket.resume()
  }
}
