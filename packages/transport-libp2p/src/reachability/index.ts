/**
 * Reachability of a kos-mesh libp2p node: AutoNAT v2 and observed addresses fill the spec's
 * NetworkInfo (`networkInfoOf`), circuit relay v2 and DCUtR let a node behind a NAT be reached
 * (`reachabilityOptions` / `reachabilityServices`), and a GATEWAY_NODE runs a relay
 * (`reachabilityOptions({ relay: true })`, `relayServerOptions`).
 */
export { classifyNat, specNatType, type NatBehaviour, type NatClassification, type NatEvidence, type Observation } from './nat.js'
export { isPrivateIp, localTcpPortTo } from './ip.js'
export { REACHABILITY_SERVICES, reachabilityOptions, reachabilityServices, relayServerOptions, type ReachabilityInit, type RelayServerInit } from './options.js'
export { ReachabilityTracker, reachabilityTracker, type DialBackCounts, type ReachabilityTrackerInit } from './tracker.js'
export { autonatDialBacks, readAutonatDialBacks, type AutonatReadout, libp2pTransportAddressOf, networkInfoOf, reachabilityTrackerOf, toLibp2pNetworkAddress, type NetworkInfoOptions, type ReachabilityReport } from './network-info.js'
