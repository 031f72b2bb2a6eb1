/**
 * The gossip service's address book: the verified signed node record of every peer the views
 * mention (the core only knows DIDs), bounded, and this node's own record. Records arrive inside
 * control messages from anyone, so each is verified with the record verifier before it is kept; a
 * record no newer than the one held is not verified again.
 */
import type { Logger, NetworkAddress, TransportAddress } from '@kos-mesh/interface'
import { knownKeyOf } from '../protocol.js'
import type { NodeRecord, RecordPeek, RecordVerifier } from '../types.js'

export interface KnownPeer {
  readonly record: NodeRecord
  /** Last 8 bytes of the record (its signature's end): equal bytes need no second verify. */
  readonly key: string
}

export interface RecordBookInit {
  self: string
  verify: RecordVerifier
  peek: RecordPeek
  /** Records held. Peers in the views are evicted last. */
  maxEntries: number
  /** Whether a peer is in a view (evicted last). */
  inView: (did: string) => boolean
  toTransportAddress: (a: NetworkAddress) => TransportAddress | undefined
  log: Logger
}

export class RecordBook {
  private readonly peers = new Map<string, KnownPeer>()
  /** This node's own record (signed by the service or given by the discovery service). */
  own: NodeRecord | undefined
  /** Records that failed verification (counted for stats). */
  invalid = 0

  constructor(private readonly init: RecordBookInit) {}

  get size(): number {
    return this.peers.size
  }

  get(did: string): NodeRecord | undefined {
    return did === this.init.self ? this.own : this.peers.get(did)?.record
  }

  /** The record bytes of a peer (or of this node), if held. */
  bytesOf(did: string): Uint8Array | undefined {
    return this.get(did)?.bytes
  }

  /** The dialable transport addresses of a peer's record. */
  addressesOf(did: string): TransportAddress[] {
    const r = this.peers.get(did)?.record
    if (r === undefined) return []
    return r.node.network_info.addresses.map((a) => this.init.toTransportAddress(a)).filter((a): a is TransportAddress => a !== undefined)
  }

  /** The klp authority a peer's record names as its source, if any. */
  authorityOf(did: string): string | undefined {
    return this.peers.get(did)?.record.address?.authority
  }

  /**
   * Verifies record bytes (unless the same or an older record of that peer is held) and keeps the
   * newest; returns the peer's record, or undefined when the bytes are invalid (or this node's own).
   * `expected`: the DID the record must belong to (e.g. the message signer).
   */
  async accept(bytes: Uint8Array, expected?: string, signal?: AbortSignal): Promise<NodeRecord | undefined> {
    const claim = this.init.peek(bytes)
    if (claim === undefined || (expected !== undefined && claim.peerId !== expected)) {
      this.invalid++
      return undefined
    }
    if (claim.peerId === this.init.self) return undefined
    const held = this.peers.get(claim.peerId)
    if (held !== undefined && (held.key === knownKeyOf(bytes) || held.record.timestamp >= claim.timestamp)) return held.record
    let record: NodeRecord
    try {
      record = await this.init.verify(bytes, signal === undefined ? {} : { signal })
    } catch (err) {
      this.invalid++
      this.init.log.debug('gossip: invalid record', { err: err instanceof Error ? err.name : typeof err })
      return undefined
    }
    if (record.peerId !== claim.peerId) {
      this.invalid++
      return undefined
    }
    const now = this.peers.get(record.peerId)
    if (now !== undefined && now.record.timestamp >= record.timestamp) return now.record
    this.peers.delete(record.peerId)
    this.evict()
    this.peers.set(record.peerId, { record, key: knownKeyOf(bytes) })
    return record
  }

  /** Makes room for one more: the oldest peer not in a view first, else the oldest. */
  private evict(): void {
    if (this.peers.size < this.init.maxEntries) return
    for (const did of this.peers.keys()) {
      if (!this.init.inView(did)) {
        this.peers.delete(did)
        return
      }
    }
    const first = this.peers.keys().next()
    if (first.done !== true) this.peers.delete(first.value)
  }

  clear(): void {
    this.peers.clear()
  }
}
