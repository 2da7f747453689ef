/**
 * A node reached through a relay (`relayVia`) stays reachable when the relay
 * restarts (src/p2p/relay-via.ts): libp2p drops the reservation with the
 * closed connection and never makes it again for a configured relay; kiln's
 * relayVia service dials the relay and reserves again, with backoff, and the
 * relayed address is announced again. Three nodes on loopback in this
 * process: a relay, a node that listens on nothing but the relay, and a
 * dialer that reaches that node only through the relay's circuit address.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, describe, expect, it } from 'vitest'
import { createKilnNode } from '../../../src/p2p/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'

/**
 * Resolves once `test(node's addresses)` holds, checked at every
 * self:peer:update and every 200 ms (libp2p withdraws a relayed address
 * without that event); rejects after `ms`.
 */
async function addressesSettle (node: KilnNode, test: (addrs: string[]) => boolean, what: string, ms: number): Promise<string[]> {
  const addrs = (): string[] => node.getMultiaddrs().map(a => a.toString())
  return await new Promise((resolve, reject) => {
    const check = (): void => { if (test(addrs())) { done(); resolve(addrs()) } }
    const timer = setTimeout(() => { done(); reject(new Error(`${what} not seen within ${ms} ms; addresses: ${addrs().join(', ')}`)) }, ms)
    const poll = setInterval(check, 200)
    const done = (): void => { clearTimeout(timer); clearInterval(poll); node.removeEventListener('self:peer:update', check) }
    node.addEventListener('self:peer:update', check)
    check()
  })
}

describe('relayVia', () => {
  const nodes: KilnNode[] = []
  afterAll(async () => { await Promise.allSettled(nodes.map(async n => { await n.stop() })) }, 30_000)
  const start = async (...args: Parameters<typeof createKilnNode>): Promise<KilnNode> => {
    const n = await createKilnNode(...args)
    nodes.push(n)
    return n
  }

  it('reserves a slot again after its relay restarts on the same address, and is dialable through it', { timeout: 120_000 }, async () => {
    const key: PrivateKey = await generateKeyPair('Ed25519')
    const relay = await start({ privateKey: key, relay: true, listen: ['/ip4/127.0.0.1/tcp/0'], tls: false })
    const relayAddr = relay.getMultiaddrs()[0]!.toString()
    const relayId = relay.peerId.toString()
    const node = await start({ listen: [], relayVia: [relayAddr], tls: false })
    const circuit = `${relayAddr}/p2p-circuit/p2p/${node.peerId.toString()}`
    const through = (addrs: string[]): boolean => addrs.includes(circuit)
    await addressesSettle(node, through, 'the address through the relay', 30_000)
    const events: string[] = []
    const service = node.services.relayVia
    expect(service, 'a node with relayVia has the relayVia service').toBeDefined()
    const renewed = new Promise<{ attempts: number }>(resolve => {
      service!.addEventListener('relay:lost', () => { events.push('lost') })
      service!.addEventListener('relay:retry', () => { events.push('retry') })
      service!.addEventListener('relay:renewed', (evt) => { events.push('renewed'); resolve(evt.detail) })
    })

    await relay.stop()
    await addressesSettle(node, addrs => !through(addrs), 'the address through the stopped relay going', 30_000)
    expect(events[0]).toBe('lost')
    // While the relay is down, the node keeps trying (and fails: nothing listens on the port).
    await new Promise<void>(resolve => { service!.addEventListener('relay:retry', () => { resolve() }, { once: true }) })

    // The same key on the same port: the relay the node was told to use, back.
    const again = await start({ privateKey: key, relay: true, listen: [relayAddr.split('/p2p/')[0]!], tls: false })
    expect(again.peerId.toString()).toBe(relayId)
    const { attempts } = await renewed
    expect(attempts).toBeGreaterThan(1)
    await addressesSettle(node, through, 'the address through the restarted relay', 30_000)
    expect(again.services.relay?.reservations.has(node.peerId)).toBe(true)
    expect(events.at(-1)).toBe('renewed')

    // A third node that knows only the circuit address reaches the node through the restarted relay.
    const dialer = await start({ listen: ['/ip4/127.0.0.1/tcp/0'], tls: false })
    const rtt = await dialer.services.ping.ping(multiaddr(circuit), { signal: AbortSignal.timeout(30_000) })
    expect(rtt).toBeGreaterThanOrEqual(0)
    const conn = dialer.getConnections(node.peerId)[0]
    expect(conn?.remoteAddr.toString()).toContain('/p2p-circuit')
  })
})
