/**
 * The composition layer: starts the services one kiln process runs on a
 * data dir, out of the modules below it, so that a command only parses its
 * flags, calls here and prints. Each service comes back as a handle with
 * `close()`; `kiln up` composes an agent, a gateway and the local build
 * runner in one process. Only src/cli imports this module.
 *
 * Terms: a *node* here is one such service with what it needs around it
 * (the libp2p node, trust policy, metrics), not only the libp2p node;
 * *building for others* is running recipes of other peers (jobs) or of
 * whoever may push to the gateway (gateway builds), which needs a sandbox
 * that isolates build steps (./sandbox.ts, docs/security.md).
 *
 * Errors: NodeSettingError (a setting the service cannot start with) and
 * ListenError (an address it cannot listen on) carry a hint; a requester
 * session throws NoPeerReachableError (./errors.ts).
 *
 * @example
 * ```ts
 * const metrics = await startNodeMetrics(config.metrics.listen)
 * const sandbox = await sandboxForOthers(config, ['--no-jobs'])
 * const agent = await startAgentNode({ config, store, identity, metrics: metrics.metrics, log, network: {}, jobs: { concurrency: 1, allowNetwork: false, ...sandbox } })
 * const builder = await createLocalBuildRunner(store, sandbox)
 * const gateway = await startGatewayNode({ config, store, log, host: '127.0.0.1', port: 5000, network: { node: agent.node, transfer: agent.agent.transfer, privateKey: identity.privateKey }, builder })
 * await runAgentUntilStopped(agent, { drainMs: 90_000, setLogLevel, flags: {} })
 * await gateway.close()
 * ```
 */
export { followLogLevel, startAgentNode, runAgentUntilStopped } from './agent.ts'
export type { AgentNode, AgentNodeInit, AgentRunInit } from './agent.ts'
export { startGatewayNode, attachGatewayPeer, isLoopback } from './gateway.ts'
export type { GatewayNode, GatewayNodeInit, GatewayNetwork, GatewayPeer, GatewayPeerInit } from './gateway.ts'
export { attachRequester, openRequesterNode, FIRST_PEER_TIMEOUT_MS } from './requester.ts'
export type { AttachedRequesterInit, PublishedTagName, RequesterNode, RequesterNodeInit } from './requester.ts'
export { chooseBuildRunner, createNetworkBuildRunner, jobEventLine } from './network-build.ts'
export type { BuildRunnerChoice, GatewayBuildMode, NetworkBuildRunnerInit } from './network-build.ts'
export { createLocalBuildRunner, runLocalBuild } from './local-build.ts'
export type { LocalBuild, LocalBuildInit } from './local-build.ts'
export { sandboxForOthers } from './sandbox.ts'
export type { NodeSandbox } from './sandbox.ts'
export { startNodeMetrics } from './metrics.ts'
export type { NodeMetrics } from './metrics.ts'
export { loadNodeTrust } from './trust.ts'
export type { NodeTrust } from './trust.ts'
export { gcRoots } from './gc-roots.ts'
export { storeUsage } from './store-usage.ts'
export type { StoreUsage } from './store-usage.ts'
export { createNodeStatus } from './status.ts'
export type { NodeStatusInit } from './status.ts'
export { startPeer, untilFirstPeer } from './peer.ts'
export { resolveNetworkTag } from './tags.ts'
export type { TagResolution } from './tags.ts'
export * from './errors.ts'
