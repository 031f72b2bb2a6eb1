import type { AbortOptions, DiscoveryMethod, FederatedNode, KLPAddress } from '@kos-mesh/interface'

/** A verified, signed node record: a FederatedNode plus the original signed bytes it came in. */
export interface NodeRecord {
  /** The node's DID (= `node.node_id` = the signer's DID). */
  readonly peerId: string
  readonly node: FederatedNode
  /** The signed message's timestamp (ms since epoch): newer records replace older ones. */
  readonly timestamp: number
  /** `timestamp + ttl` in ms: the record is dropped after this. */
  readonly expiresAt: number
  readonly messageId: string
  /** The original encoded signed KLP message; forwarded as-is in peer tables. */
  readonly bytes: Uint8Array
  /** The record message's `source`: the node's klp:// address (its authority routes to it). */
  readonly address?: KLPAddress
}

/** Decodes and fully verifies record bytes; throws a typed error for anything invalid. */
export type RecordVerifier = (bytes: Uint8Array, options?: AbortOptions) => Promise<NodeRecord>

/**
 * Cheap pre-check that returns the claimed peer id and timestamp of record bytes WITHOUT verifying
 * the signature (used only to skip verifying records that could not replace what is stored), or
 * undefined when the bytes cannot be peeked.
 */
export type RecordPeek = (bytes: Uint8Array) => { peerId: string; timestamp: number } | undefined

/** What a discovery source is asked for. */
export interface PeerQuery {
  /** Boolean capability names every returned peer must have. */
  requiredCapabilities?: readonly string[]
  /** Upper bound of records wanted. */
  maxPeers?: number
  /** How far a gossip request may travel (the spec's `gossip_hops`); sources that don't relay ignore it. */
  hops?: number
}

/**
 * A pluggable origin of signed node records (seed peer tables today; DHT and gossip later). The
 * registry verifies every record a source yields itself, so a source needs no trust.
 */
export interface DiscoverySource {
  /** Recorded as `discovery_method` on every peer this source introduces. */
  readonly method: DiscoveryMethod
  /** A stable name for logs and per-source rate limits. */
  readonly name: string
  /** Signed node records (bytes) of peers that may match `query`; the registry verifies each. */
  findPeers(query: PeerQuery, options?: AbortOptions): Promise<Iterable<Uint8Array>> | AsyncIterable<Uint8Array>
}
