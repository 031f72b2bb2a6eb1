/**
 * What libp2p brings to discovery: kad-dht as a peer-discovery DiscoverySource (signed node records
 * under `/kos/<PeerId>`, capability provider records) and KLP broadcasts over gossipsub.
 */
export * from './errors.js'
export { KOS_DHT_NAMESPACE, KOS_NODE_PROVIDER_NAME, nodeRecordKey, peerIdOfRecordKey, providerCid, capabilityCid } from './keys.js'
export { libp2pDhtSource, kosDhtRecordOptions, createNodeRecordValidator, createNodeRecordSelector, DHT_SOURCE_DEFAULTS } from './dht.js'
export type { Libp2pDhtSource, Libp2pDhtSourceInit, Libp2pDhtSourceComponents, KosDhtRecordOptionsInit, PublishResult } from './dht.js'
export { gossipsubBroadcast, KOS_BROADCAST_TOPIC, GOSSIPSUB_BROADCAST_DEFAULTS } from './gossipsub.js'
export type { GossipsubBroadcast, GossipsubBroadcastInit, GossipsubBroadcastComponents, GossipsubBroadcastStats, ReceivedBroadcast, BroadcastHandler, BroadcastRouter, AttachOptions } from './gossipsub.js'
