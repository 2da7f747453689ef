/**
 * The narrow seam between job logic and the network: publish a frame on a
 * gossipsub topic, send frames to one peer over `/kiln/job/1.0.0`, receive
 * frames. The libp2p implementation is ./libp2p-transport.ts; tests use
 * ./memory-transport.ts. Frames are opaque bytes here (protocols/job.md §4).
 */

export type FrameSource = 'gossip' | 'stream'

export type FrameHandler = (frame: Uint8Array, from: string, via: FrameSource) => void

/** An agent found through the DHT (protocols/capability.md §4): its peer id and the platforms it builds, natively or emulated. */
export interface FoundAgent {
  peer: string
  platforms: string[]
}

export interface AgentSearch {
  /** The platform the agents must build (natively or emulated). */
  platform: string
  /** Capability names whose keys are searched for more candidates; found agents need not have them (they decide). */
  capabilities: string[]
  signal: AbortSignal
  /** Called once per agent, as soon as its signed record is verified. */
  onAgent: (agent: FoundAgent) => void
}

export interface JobTransport {
  /** This node's peer id. */
  readonly peerId: string
  /**
   * Publishes one frame to everyone subscribed to the topic. Resolves when
   * handed to the network, with the peers it was handed to directly (the
   * topic's subscribers among this node's connections): agents that have the
   * frame for certain. Others may get it later through their gossip mesh.
   */
  publish: (topic: string, frame: Uint8Array) => Promise<{ recipients: string[] }>
  /**
   * Finds agents that build a platform beyond this node's connections, so a
   * job can be sent to them directly; resolves when the search has ended (at
   * the latest when `signal` fires). Optional: absent, a job reaches only
   * the topic's subscribers and their gossip meshes.
   */
  findAgents?: (search: AgentSearch) => Promise<void>
  subscribe: (topic: string) => void
  unsubscribe: (topic: string) => void
  /** Delivers frames, in order, to one peer. Rejects if the peer cannot be reached in time. */
  send: (peer: string, frames: Uint8Array[]) => Promise<void>
  /** Adds a receiver of every inbound frame; returns its removal. */
  onFrame: (handler: FrameHandler) => () => void
}
