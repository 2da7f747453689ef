/**
 * The direct record read (protocols/capability.md §5): an agent answers
 * `/kiln/capability/1.0.0` with its current signed record, so a searcher
 * gets the owner's copy with one stream instead of a Kademlia walk per
 * candidate (a DHT get queries the k closest peers and sends correction
 * records before it yields anything).
 */
import type { PeerId, Stream } from '@libp2p/interface'
import {
  CAPABILITY_MAX_INBOUND_STREAMS, CAPABILITY_PROTOCOL, CAPABILITY_READ_TIMEOUT_MS
} from '../../protocols/capability.ts'
import type { CapabilityRecord } from '../../protocols/capability.ts'
import { CAPABILITY_MAX_BYTES } from '../../protocols/constants.ts'
import { verifyCapabilityRecord } from './capability-record.ts'
import type { KilnNode } from './node.ts'
import { StreamReader, encodeFrame, sendAll } from './stream-io.ts'

export interface RecordServer {
  /** Registers the handler; safe to call twice. */
  start: () => Promise<void>
  /** Removes the handler; safe to call twice. */
  stop: () => Promise<void>
}

/** Serves whatever `current()` returns at the time of each read (signed wire bytes, or nothing yet). */
export function createRecordServer (node: KilnNode, current: () => Uint8Array | undefined): RecordServer {
  let started = false
  const handle = async (stream: Stream): Promise<void> => {
    try {
      const signal = AbortSignal.timeout(CAPABILITY_READ_TIMEOUT_MS)
      await sendAll(stream, encodeFrame(current() ?? new Uint8Array(0)), signal)
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }
  return {
    async start () {
      if (started) return
      started = true
      await node.handle(CAPABILITY_PROTOCOL, handle, { maxInboundStreams: CAPABILITY_MAX_INBOUND_STREAMS })
    },
    async stop () {
      if (!started) return
      started = false
      await node.unhandle(CAPABILITY_PROTOCOL)
    }
  }
}

/**
 * Asks a peer for its own record and verifies it against that peer's id.
 * Returns undefined when the peer has none yet; throws when it cannot be
 * reached, answers out of protocol, or sends a record that fails §3.
 */
export async function readRecordFromPeer (node: KilnNode, peer: PeerId, signal?: AbortSignal): Promise<CapabilityRecord | undefined> {
  // Reaching the peer is bounded by the node's dial timeout (and the caller's signal); once the
  // stream is open the record must arrive within CAPABILITY_READ_TIMEOUT_MS.
  const stream = await node.dialProtocol(peer, CAPABILITY_PROTOCOL, { signal })
  try {
    const reader = new StreamReader(stream, 2 + CAPABILITY_MAX_BYTES)
    const frame = await reader.readFrame(CAPABILITY_MAX_BYTES, { signal, idleTimeoutMs: CAPABILITY_READ_TIMEOUT_MS })
    await stream.close({ signal: AbortSignal.timeout(CAPABILITY_READ_TIMEOUT_MS) }).catch(() => { stream.abort(new Error('close failed')) })
    if (frame === undefined || frame.byteLength === 0) return undefined
    return await verifyCapabilityRecord(frame, { peerId: peer.toString() })
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}
