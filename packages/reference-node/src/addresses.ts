/**
 * Addresses of the node's transports in signed node records. @kos-mesh/peer-discovery's address
 * helpers know every transport the node runs (`tcp://`, `memory://` and `libp2p://<multiaddr>`,
 * checked there without loading libp2p: the CLI validates them before it imports the transport), so
 * this module only gives them the node's names.
 */
import type { NetworkAddress, TransportAddress } from '@kos-mesh/interface'
import { parseLibp2pTransportAddress, toNetworkAddress, toTransportAddress, type ParsedLibp2pAddress } from '@kos-mesh/peer-discovery'

export { LIBP2P_SCHEME, MAX_LIBP2P_ADDRESS_LENGTH, isLibp2pAddress, isUnspecifiedLibp2pHost, type ParsedLibp2pAddress } from '@kos-mesh/peer-discovery'

/**
 * Parses `libp2p://<multiaddr>[/did:...]` or a bare multiaddr (peer-discovery's
 * `parseLibp2pTransportAddress`). Throws InvalidAddressError saying what is wrong.
 */
export function parseLibp2pAddress(addr: string): ParsedLibp2pAddress {
  return parseLibp2pTransportAddress(addr)
}

/**
 * A transport address in the form of a signed node record (`NetworkAddress`): peer-discovery's
 * `toNetworkAddress` (`libp2p://` addresses become `protocol: 'libp2p'`, the multiaddr without the
 * DID and its last `/p2p/<id>`, `port`: its TCP port or 0). Undefined for anything else.
 */
export function toRecordAddress(addr: TransportAddress, flags: { is_public?: boolean; is_relay?: boolean } = {}): NetworkAddress | undefined {
  return toNetworkAddress(addr, flags)
}

/** The inverse of `toRecordAddress` (peer-discovery's `toTransportAddress`). */
export function fromRecordAddress(a: NetworkAddress): TransportAddress | undefined {
  return toTransportAddress(a)
}
