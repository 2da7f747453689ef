/**
 * The peer network: a kiln libp2p node, its identity on disk, capability
 * records and their discovery on the DHT, and bounded stream helpers for
 * kiln's own protocols.
 *
 * @example
 * ```ts
 * const { privateKey } = await loadOrCreateIdentity(dataDir)
 * const node = await createKilnNode({ privateKey, bootstrap: ['/ip4/10.0.0.1/tcp/4001/p2p/12D3Koo...'] })
 * const advertiser = createCapabilityAdvertiser({ node, privateKey, describe: () => detectCapabilities() })
 * await advertiser.start()
 * const arm = await findAgents(node, { platform: 'linux/arm64' })
 * await advertiser.stop(); await node.stop()
 * ```
 */
export { createKilnNode, withTlsTwins } from './node.ts'
export { isTcpTlsAddress, tcpTls } from './tls-transport.ts'
export { bulkConnection, dialBulkProtocol, dialDirect } from './bulk-connection.ts'
export type { KilnNode, KilnNodeInit, KilnServices, DhtTuning, ConnectionTuning } from './node.ts'
export type { RelayVia, RelayViaEvents, RelayLost, RelayRenewed, RelayRetry } from './relay-via.ts'
export { loadOrCreateIdentity, IDENTITY_FILE } from './identity.ts'
export type { Identity } from './identity.ts'
export { createCapabilityAdvertiser, findAgents, readCapabilityRecord } from './discovery.ts'
export type { CapabilityAdvertiser, CapabilityAdvertiserInit, CapabilityDescription, FindAgentsOptions, ReadRecordOptions } from './discovery.ts'
export { createRecordServer, readRecordFromPeer } from './record-exchange.ts'
export type { RecordServer } from './record-exchange.ts'
export { signCapabilityRecord, verifyCapabilityRecord, validateCapabilityRecord, selectCapabilityRecord } from './capability-record.ts'
export { ByteReader, StreamReader, encodeFrame, jsonFrame, parseJsonFrame, sendAll, streamChannel } from './stream-io.ts'
export type { ByteChannel, WaitOptions } from './stream-io.ts'
export { DirectChannel, DirectChannels } from './direct.ts'
export type { DirectHandler, DirectHandlerOptions } from './direct.ts'
export * from './errors.ts'
export { nodeInitFromOptions, splitList, waitForPeers } from './options.ts'
export type { NodeConfig, NodeFlags } from './options.ts'
export { publishCacheRecord, resolveCacheRecord, signCacheRecord, verifyCacheRecord, validateCacheRecord, selectCacheRecord, InvalidCacheRecordError } from './cache-records.ts'
export type { CacheEntry, CacheTrust, PublishCacheOptions, ResolveCacheOptions, VerifiedCacheRecord } from './cache-records.ts'
