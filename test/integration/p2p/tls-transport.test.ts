/**
 * kiln's TCP+TLS transport (src/p2p/tls-transport.ts): nodes reach each
 * other over it by default, identities are checked the libp2p TLS way,
 * strangers without a libp2p certificate get nowhere, bytes arrive intact
 * under back-pressure, and Noise remains for pnet nodes and stock peers.
 */
import { createHash, randomBytes } from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { generateCertificate } from '@libp2p/tls/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { bulkConnection, createKilnNode, isTcpTlsAddress, sendAll, withTlsTwins } from '../../../src/p2p/index.ts'
import type { KilnNode, KilnNodeInit } from '../../../src/p2p/index.ts'

const LOOPBACK = ['/ip4/127.0.0.1/tcp/0']
const ECHO = '/kiln/test/echo/1.0.0'
const nodes: KilnNode[] = []

async function start (init: KilnNodeInit = {}): Promise<KilnNode> {
  const node = await createKilnNode({ listen: LOOPBACK, ...init })
  nodes.push(node)
  return node
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
})

const tlsAddr = (n: KilnNode): ReturnType<KilnNode['getMultiaddrs']>[number] => {
  const a = n.getMultiaddrs().find(isTcpTlsAddress)
  if (a === undefined) throw new Error('no /tls address')
  return a
}

/** Sends `bytes` on a fresh stream and returns the sha256 of what the echo handler sent back. */
async function echo (conn: Connection, bytes: Uint8Array): Promise<string> {
  const stream = await conn.newStream(ECHO)
  const hash = createHash('sha256')
  let got = 0
  const done = new Promise<void>((resolve, reject) => {
    stream.addEventListener('message', (evt) => {
      for (const b of evt.data instanceof Uint8Array ? [evt.data] : evt.data) { hash.update(b); got += b.byteLength }
    })
    stream.addEventListener('remoteCloseWrite', () => { resolve() })
    stream.addEventListener('close', (evt) => { if (evt.error != null) reject(evt.error); else resolve() })
  })
  for (let at = 0; at < bytes.byteLength; at += 1 << 20) await sendAll(stream, bytes.subarray(at, at + (1 << 20)))
  await stream.close()
  await done
  expect(got).toBe(bytes.byteLength)
  return hash.digest('hex')
}

async function serveEcho (node: KilnNode): Promise<void> {
  await node.handle(ECHO, async (stream) => {
    stream.addEventListener('message', (evt) => {
      for (const b of evt.data instanceof Uint8Array ? [evt.data] : evt.data) {
        if (!stream.send(b)) stream.pause()
      }
    })
    stream.addEventListener('drain', () => { stream.resume() })
    stream.addEventListener('remoteCloseWrite', () => { void stream.close() })
  })
}

describe('TCP+TLS transport', () => {
  it('listens on a /tls twin of each plain TCP address and connects over it by default', async () => {
    const a = await start()
    const b = await start()
    const addrs = a.getMultiaddrs()
    expect(addrs.filter(isTcpTlsAddress)).toHaveLength(1)
    expect(addrs.filter(x => !isTcpTlsAddress(x))).toHaveLength(1)
    // Given every address, the dialer picks the TLS one first.
    await b.peerStore.merge(a.peerId, { multiaddrs: addrs })
    const conn = await b.dial(a.peerId)
    expect(isTcpTlsAddress(conn.remoteAddr)).toBe(true)
    expect(conn.encryption).toBe('native')
    expect(conn.multiplexer).toBe('/yamux/1.0.0')
    expect(conn.remotePeer.equals(a.peerId)).toBe(true)
    // The listening side knows who called, from the certificate.
    const deadline = Date.now() + 5_000
    while (a.getConnections(b.peerId).length === 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    const inbound = a.getConnections(b.peerId)
    expect(inbound).toHaveLength(1)
    expect(inbound[0]!.remotePeer.equals(b.peerId)).toBe(true)
  })

  it('carries 48 MiB both ways intact through back-pressure, on several streams at once', async () => {
    const a = await start()
    const b = await start()
    await serveEcho(a)
    const conn = await b.dial(tlsAddr(a))
    const blobs = [randomBytes(32 << 20), randomBytes(8 << 20), randomBytes(8 << 20)]
    const hashes = await Promise.all(blobs.map(async bytes => await echo(conn, bytes)))
    expect(hashes).toEqual(blobs.map(bytes => createHash('sha256').update(bytes).digest('hex')))
  })

  it('refuses a peer whose certificate carries another identity than the address names', async () => {
    const a = await start()
    const b = await start()
    const other = (await createKilnNode({ start: false })).peerId
    const wrong = multiaddr(tlsAddr(a).toString().replace(a.peerId.toString(), other.toString()))
    const err = await b.dial(wrong, { signal: AbortSignal.timeout(10_000) }).then(() => undefined, (e: unknown) => e as Error)
    expect(String(err?.name) + String(err?.message) + String((err as AggregateError | undefined)?.errors?.map(String))).toMatch(/UnexpectedPeer|[Pp]eer id/)
    expect(b.getConnections()).toHaveLength(0)
  })

  it('refuses a TLS client without a libp2p certificate', async () => {
    const a = await start()
    const { host, port } = { host: '127.0.0.1', port: Number(tlsAddr(a).toString().split('/')[4]) }
    const outcome = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['/yamux/1.0.0'] })
      socket.on('error', (err) => { resolve(`error: ${err.message}`) })
      socket.on('close', () => { resolve('closed') })
      socket.on('secureConnect', () => { socket.write('hello') })
      setTimeout(() => { socket.destroy(); resolve('still open') }, 5_000).unref()
    })
    expect(outcome).not.toBe('still open')
    expect(a.getConnections()).toHaveLength(0)
  })

  it('survives peers that hang up mid-handshake, and takes a libp2p certificate with muxer negotiation after it', async () => {
    const a = await start()
    const port = Number(tlsAddr(a).toString().split('/')[4])
    // Garbage, a half ClientHello, a reset: none may take the node down.
    for (const bytes of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])]) {
      await new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => { s.write(bytes); setTimeout(() => { s.resetAndDestroy(); resolve() }, 50) })
        s.on('error', () => { resolve() })
      })
    }
    // A client offering only `libp2p` by ALPN, with a proper libp2p certificate, gets through the handshake.
    const { cert, key } = await generateCertificate(await generateKeyPair('Ed25519'))
    const alpn = await new Promise<string | false | null>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, cert, key, rejectUnauthorized: false, ALPNProtocols: ['libp2p'] }, () => { resolve(s.alpnProtocol); s.destroy() })
      s.on('error', reject)
    })
    expect(alpn).toBe('libp2p')
    // Still serving.
    const b = await start()
    const conn = await b.dial(tlsAddr(a))
    expect(conn.encryption).toBe('native')
  })

  it('is off with a pnet key: such nodes listen and dial with Noise behind the key only', async () => {
    const psk = new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}`)
    const a = await start({ psk })
    const b = await start({ psk })
    expect(a.getMultiaddrs().some(isTcpTlsAddress)).toBe(false)
    const conn = await b.dial(a.getMultiaddrs()[0]!)
    expect(conn.encryption).toBe('/noise')
  })

  it('still speaks Noise on the plain address to a node with TLS turned off', async () => {
    const a = await start()
    const b = await start({ tls: false })
    expect(b.getMultiaddrs().some(isTcpTlsAddress)).toBe(false)
    // b has no TLS transport, so of a's addresses it can only use the plain one.
    await b.peerStore.merge(a.peerId, { multiaddrs: a.getMultiaddrs() })
    const conn = await b.dial(a.peerId)
    expect(isTcpTlsAddress(conn.remoteAddr)).toBe(false)
    expect(conn.encryption).toBe('/noise')
  })

  it('moves bulk data to a TLS connection when the peer was first reached over Noise', async () => {
    const a = await start()
    const b = await start()
    const plain = a.getMultiaddrs().find(x => !isTcpTlsAddress(x))!
    const first = await b.dial(plain)
    expect(first.encryption).toBe('/noise')
    // identify tells b about a's /tls address.
    const deadline = Date.now() + 5_000
    while (!(await b.peerStore.get(a.peerId)).addresses.some(x => isTcpTlsAddress(x.multiaddr)) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    // Four ranges asking at once (the fetcher's workers) share one new TLS connection.
    const asked = await Promise.all([0, 1, 2, 3].map(async () => await bulkConnection(b, a.peerId, AbortSignal.timeout(10_000))))
    expect(new Set(asked.map(c => c.id)).size).toBe(1)
    const bulk = asked[0]!
    expect(bulk.id).not.toBe(first.id)
    expect(b.getConnections(a.peerId)).toHaveLength(2)
    expect(isTcpTlsAddress(bulk.remoteAddr)).toBe(true)
    // Asked again, the same TLS connection.
    expect((await bulkConnection(b, a.peerId, AbortSignal.timeout(10_000))).id).toBe(bulk.id)
    // A node without the transport keeps using what it has.
    const c = await start({ tls: false })
    const cFirst = await c.dial(plain)
    expect((await bulkConnection(c, a.peerId, AbortSignal.timeout(10_000))).id).toBe(cFirst.id)
  })

  it('adds a /tls twin only where none is configured', () => {
    expect(withTlsTwins(['/ip4/0.0.0.0/tcp/4001'], true)).toEqual(['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/0/tls'])
    expect(withTlsTwins(['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/tls'], true)).toEqual(['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/tls'])
    expect(withTlsTwins(['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/tls'], false)).toEqual(['/ip4/0.0.0.0/tcp/4001'])
    expect(withTlsTwins(['/ip6/::/tcp/4001', '/p2p-circuit'], true)).toEqual(['/ip6/::/tcp/4001', '/p2p-circuit', '/ip6/::/tcp/0/tls'])
  })
})
