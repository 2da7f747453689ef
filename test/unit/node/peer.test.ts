/**
 * src/node/peer.ts: a node that cannot start says why it may be. With a
 * relayVia relay that nobody answers for (a closed loopback port), libp2p
 * cannot make the reservation it makes while starting, and the hint names
 * the relay as well as the port.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { ListenError } from '../../../src/node/errors.ts'
import { startPeer } from '../../../src/node/peer.ts'
import { freePort } from '../../helpers/http-service.ts'

const config = { listen: [], bootstrap: [], mdns: false, relay: false, relayClient: false, relayVia: [], tls: false }

describe('startPeer', () => {
  it('names a relayVia relay that is down in its hint', { timeout: 60_000 }, async () => {
    const relayId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const relay = `/ip4/127.0.0.1/tcp/${await freePort()}/p2p/${relayId}`
    const err = await startPeer({ ...config, relayVia: [relay] }, {}, await generateKeyPair('Ed25519'), false).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(ListenError)
    expect((err as ListenError).message).toContain(`${relay}/p2p-circuit`)
    expect((err as ListenError).hint).toMatch(/relay of --relay-via \(node\.relayVia\) down/)
    expect((err as ListenError).hint).toMatch(/another kiln using the port/)
  })
})
