/**
 * The job protocol, shared by both sides (protocols/job.md): sealing and
 * opening signed frames (./messages.ts), the narrow `JobTransport` seam
 * between job logic and the network (./transport.ts), its libp2p
 * implementation (gossipsub for job announcements, `/kiln/job/1.0.0`
 * streams for everything else) and an in-process one for tests and demos.
 * The requester (src/requester) and the agent (agent/jobs) both build on
 * this module; neither imports the other. Job secrets are sealed to the
 * awarded agent and opened by it here (./secrets.ts).
 *
 * @example
 * ```ts
 * const transport = createLibp2pJobTransport({ node })
 * await transport.start()
 * const { frame } = await seal(key, 'award', award)
 * await transport.send(peer, [frame])
 * ```
 */
export { createLibp2pJobTransport } from './libp2p-transport.ts'
export type { Libp2pJobTransport, Libp2pJobTransportInit } from './libp2p-transport.ts'
export { createMemoryJobNetwork } from './memory-transport.ts'
export type { MemoryJobNetwork } from './memory-transport.ts'
export type { AgentSearch, FoundAgent, FrameHandler, FrameSource, JobTransport } from './transport.ts'
export { openFrame, seal, frameOf, isHandBack } from './messages.ts'
export type { JobPayloads, OpenedFrame, SealOptions } from './messages.ts'
export { SecretsError, checkSecrets, montgomeryPublic, montgomeryPublicOf, openSecrets, sealSecrets } from './secrets.ts'
export type { SecretsBinding } from './secrets.ts'
