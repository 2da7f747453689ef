import { afterEach, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { KilnConfigSchema } from '../../../src/config/index.ts'
import { createKilnNode, nodeInitFromOptions } from '../../../src/p2p/index.ts'
import type { KilnNode } from '../../../src/p2p/index.ts'

// The idle-cost settings (docs/network.md#idle-cost): node.pingInterval and
// node.maxConnections reach libp2p, and the ping interval is what the
// connection monitor uses.

const nodes: KilnNode[] = []
/** libp2p keeps the monitor among the node's components; its interval is not exposed otherwise. */
const monitorInterval = (node: KilnNode): unknown => (node as unknown as { components: { connectionMonitor?: { pingIntervalMs?: number } } }).components.connectionMonitor?.pingIntervalMs
afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.stop() })) })

describe('node idle-cost settings', () => {
  it('defaults to a ping a minute and 300 connections, and passes kiln.yaml values on in libp2p units', async () => {
    const key = await generateKeyPair('Ed25519')
    const defaults = KilnConfigSchema.parse({}).node
    expect(defaults.pingInterval).toBe(60)
    expect(defaults.maxConnections).toBe(300)
    const init = await nodeInitFromOptions({ ...defaults, pingInterval: 15, maxConnections: 40 }, {}, key, true)
    expect(init.pingInterval).toBe(15_000)
    expect(init.maxConnections).toBe(40)
    expect(() => KilnConfigSchema.parse({ node: { pingInterval: 0 } })).toThrow()
  })

  it('gives libp2p\'s connection monitor the interval, and it pings at it', { timeout: 90_000 }, async () => {
    const fast = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, pingInterval: 200 })
    nodes.push(fast)
    const slow = await createKilnNode({ listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
    nodes.push(slow)
    expect(monitorInterval(fast)).toBe(200)
    expect(monitorInterval(slow)).toBe(60_000)
    await fast.dial(slow.getMultiaddrs()[0]!)
    // The monitor records the round trip of each ping it completes (a failed one closes the connection, and it is dialled again).
    const pinged = (): boolean => fast.getConnections(slow.peerId).some(c => c.rtt !== undefined)
    const deadline = Date.now() + 60_000
    while (!pinged() && Date.now() < deadline) {
      if (fast.getConnections(slow.peerId).length === 0) await fast.dial(slow.getMultiaddrs()[0]!).catch(() => {})
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    expect(pinged()).toBe(true)
  })
})
