/**
 * The narrow seam between job logic and the network: publish a frame on a
 * gossipsub topic, send frames to one peer over `/kiln/job/1.0.0`, receive
 * frames. The libp2p implementation is ./libp2p-transport.ts; tests use
 * ./memory-transport.ts. Frames are opaque bytes here (protocols/job.md §4).
 */

export type FrameSource = 'gossip' | 'stream'

export type FrameHandler = (frame: Uint8Array, from: string, via: FrameSource) => void

export interface JobTransport {
  /** This node's peer id. */
  readonly peerId: string
  /** Publishes one frame to everyone subscribed to the topic. Resolves when handed to the network. */
  publish: (topic: string, frame: Uint8Array) => Promise<void>
  /**
   * How many peers are known to be subscribed to the topic: the agents a
   * publication reaches, so the requester can stop waiting for offers once
   * each has answered. Optional; absent means unknown.
   */
  audience?: (topic: string) => number
  subscribe: (topic: string) => void
  unsubscribe: (topic: string) => void
  /** Delivers frames, in order, to one peer. Rejects if the peer cannot be reached in time. */
  send: (peer: string, frames: Uint8Array[]) => Promise<void>
  /** Adds a receiver of every inbound frame; returns its removal. */
  onFrame: (handler: FrameHandler) => () => void
}
