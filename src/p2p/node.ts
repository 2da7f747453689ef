import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { Identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import type { KadDHT } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { noise } from '@libp2p/noise'
import type { ICryptoInterface } from '@libp2p/noise'
import { defaultCrypto } from '@libp2p/noise/crypto'
import { ping } from '@libp2p/ping'
import type { Ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { KEEP_ALIVE } from '@libp2p/interface'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { createLibp2p } from 'libp2p'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { circuitRelayAddressesLast, loopbackAddressLast, publicAddressesFirst, reliableTransportsFirst } from '@libp2p/utils'
import { createCipheriv, createDecipheriv, createSecretKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { Libp2pOptions, ServiceFactoryMap } from 'libp2p'
import { CAPABILITY_NAMESPACE, KAD_PROTOCOL } from '../../protocols/constants.ts'
import { TAG_NAMESPACE } from '../../protocols/tag.ts'
import { selectCapabilityRecord, validateCapabilityRecord } from './capability-record.ts'
import { selectTagRecord, validateTagRecord } from './tag-records.ts'
import { selectCacheRecord, validateCacheRecord } from './cache-records.ts'
import { CACHE_NAMESPACE } from '../../protocols/cache.ts'
import {
  CONNECTION_PING_INTERVAL_MS, DEFAULT_INBOUND_CONNECTION_THRESHOLD, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS, DHT_QUERY_SELF_INTERVAL_MS, MDNS_SERVICE_TAG, RELAY_MAX_RESERVATIONS,
  YAMUX_INITIAL_STREAM_WINDOW, YAMUX_MAX_STREAM_WINDOW
} from './constants.ts'
import { isTcpTlsAddress, tcpTls, tlsTwin } from './tls-transport.ts'
import { DirectChannels } from './direct.ts'
import { relayVia as relayViaService } from './relay-via.ts'
import type { RelayVia } from './relay-via.ts'

export interface KilnServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
  /** Present only on nodes started with `relay: true`. */
  relay?: CircuitRelayService
  /** Direct channels for bulk data (src/p2p/direct.ts); enabled with the TCP+TLS transport. */
  direct: DirectChannels
  /** Present only on nodes started with `relayVia`: re-reserves on those relays when a reservation is dropped (./relay-via.ts). */
  relayVia?: RelayVia
}

/** A started (or startable) kiln libp2p node. */
export type KilnNode = Libp2p<KilnServices>

export interface DhtTuning {
  /** Self-query period once warm; default 5 min. */
  querySelfInterval?: number
  /** Self-query period while the routing table is young; default 1 s. */
  initialQuerySelfInterval?: number
  /** Only query, never answer (a node nobody can dial); default false. */
  clientMode?: boolean
  /** Peers per k-bucket and per query result; default 20. */
  kBucketSize?: number
  /**
   * Peers asked in parallel by one query (and its disjoint paths); default
   * kad-dht's 10. Many nodes in one process (tests) want fewer, or every
   * query turns into a burst of dials and Noise handshakes.
   */
  alpha?: number
}

/** Bounds on dialing and upgrading connections; defaults are libp2p's. */
export interface ConnectionTuning {
  /** Dials in flight at once (default 100). */
  maxParallelDials?: number
  /** One dial including its Noise and yamux upgrade (default 10 s). */
  dialTimeout?: number
  /** One address of a peer, before the dialer tries the next (default 6 s). */
  addressDialTimeout?: number
  /** Upgrading one inbound connection (default 10 s). */
  inboundUpgradeTimeout?: number
  /** Inbound connections upgrading at once (default 10). */
  maxIncomingPendingConnections?: number
}

export interface KilnNodeInit {
  /** The node key (see loadOrCreateIdentity); a fresh Ed25519 key when absent. */
  privateKey?: PrivateKey
  /** Multiaddrs to listen on; default all IPv4 interfaces, a free port. */
  listen?: string[]
  /** Addresses to announce instead of the listen addresses (NAT, cluster front ends). */
  announce?: string[]
  /** Multiaddrs (with /p2p/<id>) to join through. */
  bootstrap?: string[]
  /** Find peers on the local network by multicast DNS; default false. */
  mdns?: boolean
  /** Act as a circuit-relay-v2 server for nodes without inbound connectivity; default false. */
  relay?: boolean
  /**
   * Ask connected relays for a reservation and listen on `/p2p-circuit`, so
   * a node nobody can dial stays reachable; default false. (The relay client
   * transport is always present, so relayed addresses can always be dialed.)
   */
  relayClient?: boolean
  /**
   * Relays (multiaddrs with `/p2p/<id>`, e.g. a login node's agent started
   * with `relay: true`) to reserve a slot on and be reachable through: each
   * is dialed at start, kept connected, and the node listens on
   * `<relay>/p2p-circuit`; a reservation dropped with the relay's connection
   * is made again (`services.relayVia`). For a node whose inbound connections are dropped.
   */
  relayVia?: string[]
  /** A libp2p pnet pre-shared key (the 95-byte swarm.key file): only nodes holding it connect. */
  psk?: Uint8Array
  dht?: DhtTuning
  connections?: ConnectionTuning
  /** Most connections kept open; beyond it libp2p closes the least valued ones with no stream open; default 300. */
  maxConnections?: number
  /**
   * How often libp2p's connection monitor pings each open connection, in ms
   * (a connection whose ping fails is closed); default 60 s. Each ping is a
   * new stream, and at libp2p's 10 s these pings were most of what an idle
   * node spends its CPU on (docs/network.md#idle-cost).
   */
  pingInterval?: number
  /** Inbound connections accepted per second from one IP; default 50 (libp2p's 5 trips over a job burst from one login node). */
  inboundConnectionThreshold?: number
  /**
   * Also listen and dial on TCP with TLS from the first byte
   * (src/p2p/tls-transport.ts), the fast path for bulk data; default true,
   * always off with a pnet key. Each plain TCP listen address gets a `/tls`
   * twin on a free port unless `listen` names a `/tls` address itself.
   */
  tls?: boolean
  /** Start listening before returning; default true. */
  start?: boolean
}

/**
 * Creates a kiln libp2p node: TCP+TLS (kiln's transport, the default for
 * kiln peers) and TCP + Noise (pnet nodes, stock libp2p peers), yamux, identify, ping, kad-dht
 * under `/kiln/kad/1.0.0` with the capability-record validator and selector,
 * gossipsub, optional bootstrap/mdns/relay/pnet.
 */
export async function createKilnNode (init: KilnNodeInit = {}): Promise<KilnNode> {
  const privateKey = init.privateKey ?? await generateKeyPair('Ed25519')
  const useTls = init.tls !== false && init.psk === undefined
  const listen = withTlsTwins(init.listen ?? DEFAULT_LISTEN, useTls)
  if (init.relayClient === true) listen.push('/p2p-circuit')
  const relayVia = init.relayVia ?? []
  for (const r of relayVia) listen.push(`${r}/p2p-circuit`)

  const peerDiscovery: NonNullable<Libp2pOptions<KilnServices>['peerDiscovery']> = []
  // A bootstrap peer may be a node's one link into the network: its tag starts with KEEP_ALIVE, so libp2p
  // redials it when the connection drops (an agent whose only link dropped under load stayed an island).
  // A relay the node is reached through is such a link too.
  const joinThrough = [...new Set([...(init.bootstrap ?? []), ...relayVia])]
  if (joinThrough.length > 0) peerDiscovery.push(bootstrap({ list: joinThrough, timeout: 0, tagName: `${KEEP_ALIVE}-bootstrap` }))
  if (init.mdns === true) peerDiscovery.push(mdns({ serviceTag: MDNS_SERVICE_TAG, interval: 10_000 }))

  const direct = new DirectChannels()
  const services: Record<string, unknown> = {
    direct: () => direct,
    identify: identify(),
    ping: ping(),
    dht: kadDHT({
      protocol: KAD_PROTOCOL,
      // Cluster nodes talk over private addresses; the default mapper drops them.
      peerInfoMapper: passthroughMapper,
      clientMode: init.dht?.clientMode ?? false,
      kBucketSize: init.dht?.kBucketSize,
      alpha: init.dht?.alpha,
      querySelfInterval: init.dht?.querySelfInterval ?? DHT_QUERY_SELF_INTERVAL_MS,
      initialQuerySelfInterval: init.dht?.initialQuerySelfInterval,
      validators: { [CAPABILITY_NAMESPACE]: validateCapabilityRecord, [TAG_NAMESPACE]: validateTagRecord, [CACHE_NAMESPACE]: validateCacheRecord },
      selectors: { [CAPABILITY_NAMESPACE]: selectCapabilityRecord, [TAG_NAMESPACE]: selectTagRecord, [CACHE_NAMESPACE]: selectCacheRecord }
    }),
    // Many agents share one address on a cluster (a site NAT, several agents per host): gossipsub's
    // IP-colocation penalty would stop sending them jobs, so it is off. Trust decides who builds, not IPs.
    pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, scoreParams: { IPColocationFactorWeight: 0 } })
  }
  // A kiln relay carries job results and blobs for its site's compute nodes: libp2p's default limits on a
  // relayed connection (2 min, 128 KiB) would cut every transfer, and a limited connection runs none of
  // kiln's protocols. The relay serves whoever reserves; trust still decides who builds and what is accepted.
  if (init.relay === true) services.relay = circuitRelayServer({ reservations: { applyDefaultLimit: false, maxReservations: RELAY_MAX_RESERVATIONS } })
  // libp2p reserves on a configured relay once; this service reserves again after the relay's connection dropped.
  if (relayVia.length > 0) services.relayVia = relayViaService({ relays: relayVia })

  return await createLibp2p<KilnServices>({
    privateKey,
    start: init.start ?? true,
    addresses: { listen, announce: init.announce },
    transports: useTls ? [tcpTls({ direct }), tcp(), circuitRelayTransport()] : [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise({ crypto: bulkNoiseCrypto() })],
    streamMuxers: [yamux({
      streamOptions: {
        initialStreamWindowSize: YAMUX_INITIAL_STREAM_WINDOW,
        maxStreamWindowSize: YAMUX_MAX_STREAM_WINDOW
      }
    })],
    connectionProtector: init.psk !== undefined ? preSharedKey({ psk: init.psk }) : undefined,
    connectionMonitor: { pingInterval: init.pingInterval ?? CONNECTION_PING_INTERVAL_MS },
    connectionManager: {
      ...definedOnly(init.connections ?? {}),
      maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      addressSorter: tlsAddressesFirst,
      inboundConnectionThreshold: init.inboundConnectionThreshold ?? DEFAULT_INBOUND_CONNECTION_THRESHOLD
    },
    peerDiscovery,
    services: services as ServiceFactoryMap<KilnServices>
  })
}

/** Below this, @libp2p/noise's own choice (a WebAssembly cipher) is faster than a Node cipher object. */
const NOISE_SMALL_MESSAGE = 1200
const CHACHA_TAG = 16

/**
 * Noise's Node cipher (wire-identical ChaCha20-Poly1305) for bulk messages
 * (64 KiB each): one key object per session key instead of one built from
 * the raw key per message (a profile of a transfer put ~13% in cipher
 * and key creation; the cipher object per message remains, as Node has no
 * reusable AEAD context), and the output written into a single buffer.
 * A few per cent in docs/network.md's benchmark. Handshake functions and
 * small messages are the default's.
 */
export function bulkNoiseCrypto (): ICryptoInterface {
  // Noise keeps one key array per CipherState and never changes it in place (no rekey in libp2p).
  const keys = new WeakMap<Uint8Array, KeyObject>()
  const keyObject = (k: Uint8Array): KeyObject => {
    let key = keys.get(k)
    if (key === undefined) { key = createSecretKey(k); keys.set(k, key) }
    return key
  }
  return {
    ...defaultCrypto,
    chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
      if (plaintext.byteLength < NOISE_SMALL_MESSAGE || !(plaintext instanceof Uint8Array)) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
      const cipher = createCipheriv('chacha20-poly1305', keyObject(k), nonce, { authTagLength: CHACHA_TAG })
      cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
      const out = Buffer.allocUnsafe(plaintext.byteLength + CHACHA_TAG)
      // A stream cipher: update() returns every byte, final() none.
      cipher.update(plaintext).copy(out, 0)
      cipher.final()
      cipher.getAuthTag().copy(out, plaintext.byteLength)
      return out
    },
    chaCha20Poly1305Decrypt (ciphertext, nonce, ad, k, dst) {
      if (ciphertext.byteLength < NOISE_SMALL_MESSAGE || !(ciphertext instanceof Uint8Array)) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
      const decipher = createDecipheriv('chacha20-poly1305', keyObject(k), nonce, { authTagLength: CHACHA_TAG })
      const length = ciphertext.byteLength - CHACHA_TAG
      decipher.setAAD(ad, { plaintextLength: length })
      decipher.setAuthTag(ciphertext.subarray(length))
      const out = decipher.update(ciphertext.subarray(0, length))
      decipher.final() // throws when the tag does not match
      return out
    }
  }
}

/**
 * The listen list with a `/tls` twin (any free port) for each plain TCP
 * address, unless TLS is off or the list already has a `/tls` address.
 */
export function withTlsTwins (listen: string[], useTls: boolean): string[] {
  const out = useTls ? [...listen] : listen.filter(a => !isTcpTlsAddress(multiaddr(a)))
  if (!useTls || out.some(a => isTcpTlsAddress(multiaddr(a)))) return out
  for (const a of listen) {
    const ma = multiaddr(a)
    const parts = ma.getComponents()
    if (parts.length === 2 && parts[1]!.name === 'tcp') out.push(tlsTwin(ma).toString())
  }
  return out
}

/**
 * libp2p's default address order, except that of two otherwise equal
 * addresses the `/tls` one is dialed first (the fast transport); libp2p's
 * certified-first rule is left out (kiln does not use signed peer records).
 */
function tlsAddressesFirst (a: { multiaddr: Multiaddr }, b: { multiaddr: Multiaddr }): -1 | 0 | 1 {
  return loopbackAddressLast(a.multiaddr, b.multiaddr) ||
    publicAddressesFirst(a.multiaddr, b.multiaddr) ||
    circuitRelayAddressesLast(a.multiaddr, b.multiaddr) ||
    (Math.sign(Number(isTcpTlsAddress(b.multiaddr)) - Number(isTcpTlsAddress(a.multiaddr))) as -1 | 0 | 1) ||
    reliableTransportsFirst(a.multiaddr, b.multiaddr)
}

/** libp2p reads an explicit undefined as a value; drop those keys so its defaults apply. */
function definedOnly<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
