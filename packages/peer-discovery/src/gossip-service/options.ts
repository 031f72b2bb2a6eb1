/**
 * The gossip service's options (every field with its default), components, and their resolution.
 */
import { InvalidParametersError, mulberry32 } from '@kos-mesh/interface'
import type { Clock, Logger, MessageRouter, NetworkAddress, SignatureVerifier, Signer, TransportAddress } from '@kos-mesh/interface'
import { toTransportAddress } from '../addresses.js'
import type { HyParViewInit, PeerListInit, PlumtreeInit } from '../gossip/index.js'
import { createNodeRecord, createRecordPeek, createRecordVerifier, DEFAULT_CLOCK_SKEW_MS, DEFAULT_RECORD_TTL_SECONDS } from '../record.js'
import { localNodeOf } from '../local-node.js'
import type { LocalNodeInit } from '../service-api.js'
import type { NodeRecord, RecordPeek, RecordVerifier } from '../types.js'
import { didOfKeyId } from '../validate.js'
import { DEFAULT_GOSSIP_WIRE_LIMITS, type GossipWireLimits } from './wire.js'

/** The path of the gossip control messages: `klp://<authority>/gossip` (PEER_DISCOVERY). */
export const GOSSIP_PATH = '/gossip'

/** Options of `gossipService()`. */
export interface GossipServiceInit {
  /** HyParView options (active view 8, passive 30, ...: see the core's HyParViewInit). */
  membership?: HyParViewInit
  /** Plumtree options (minEager 5, graft timeouts, caches: see the core's PlumtreeInit). */
  broadcast?: Omit<PlumtreeInit, 'sizeOf'>
  /** Peer-list walk options (maxHops 8, maxPeers 16, timeout 2 s: see the core's PeerListInit). */
  peerList?: PeerListInit
  /** The spec's `gossip_hops`: hops a `findPeers` walk travels unless the query says. Default 3. */
  gossipHops?: number
  /** Join through the first connected neighbour while the overlay is empty. Default true. */
  autoJoin?: boolean
  /**
   * Period of the view check: an active view short for two checks in a row joins again through a
   * random router neighbour outside it (reconnects a group cut off from the overlay); 0 disables.
   * Default 5,000 ms.
   */
  repairIntervalMs?: number
  /** Peer records held (those in the views are evicted last). Default 256. */
  maxRecords?: number
  /** Dials in flight at once. Default 16. */
  maxDials?: number
  /** Control messages being sent at once (more are dropped, like lost ones). Default 1,024. */
  maxInflight?: number
  /** Time one dial may take, ms. Default 10,000. */
  dialTimeoutMs?: number
  /** What this node's record says about it (when the service signs it). */
  node?: LocalNodeInit
  /** TTL of the record the service signs, seconds. Default 3,600; re-signed at half of it. */
  recordTtlSeconds?: number
  /** Takes this node's record from elsewhere (e.g. `() => discovery.localRecord()`) instead of signing one. */
  localRecord?: () => NodeRecord | undefined
  /** Clock skew accepted on records, ms. Default 30,000. */
  clockSkewMs?: number
  /** Wire bounds. Default `DEFAULT_GOSSIP_WIRE_LIMITS`. */
  limits?: Partial<GossipWireLimits>
  /** Maps a record's NetworkAddress to a dialable transport address. Default `protocol://address[:port]`. */
  toTransportAddress?: (address: NetworkAddress) => TransportAddress | undefined
}

/**
 * What the gossip service needs: the router, a signer (or identity, or `init.localRecord`), a signature or
 * record verifier, and optionally a clock, logger and randomness.
 */
export interface GossipServiceComponents {
  router: MessageRouter
  /** Signs this node's record (its key id's DID must be the router's DID); or give `identity` or `init.localRecord`. */
  signer?: Signer
  identity?: { signer: Signer }
  /** Verifies the records peers send (through the record verifier); or give `recordVerifier`. */
  signatureVerifier?: SignatureVerifier
  recordVerifier?: RecordVerifier
  /** Time and every timer. Default `systemClock`. */
  clock?: Clock
  logger?: Logger
  /** Uniform numbers in [0, 1) for the core. Default: a PRNG seeded from the router's DID (reproducible runs). */
  random?: () => number
}

export interface Resolved {
  membership: HyParViewInit
  broadcast: Omit<PlumtreeInit, 'sizeOf'>
  peerList: PeerListInit
  gossipHops: number
  autoJoin: boolean
  maxRecords: number
  maxDials: number
  maxInflight: number
  dialTimeoutMs: number
  recordRefreshMs: number
  repairIntervalMs: number
  limits: GossipWireLimits
  toTransportAddress: (a: NetworkAddress) => TransportAddress | undefined
  verifyRecord: RecordVerifier
  peekRecord: RecordPeek
  random: () => number
  ownRecord: (router: MessageRouter) => Promise<NodeRecord | undefined>
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < 1) throw new InvalidParametersError(`${name}: expected an integer >= 1, got ${String(v)}`)
  return v
}

/** FNV-1a of a string: the default PRNG seed (the router's DID). */
function seedOf(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}


export function resolveOptions(init: GossipServiceInit, c: GossipServiceComponents, clock: Clock): Resolved {
  const limits = { ...DEFAULT_GOSSIP_WIRE_LIMITS, ...init.limits }
  const ttl = positiveInt('recordTtlSeconds', init.recordTtlSeconds, DEFAULT_RECORD_TTL_SECONDS)
  const signer = c.signer ?? c.identity?.signer
  if (signer !== undefined && didOfKeyId(signer.keyId) !== c.router.did) {
    throw new InvalidParametersError(`signer: expected a key of ${c.router.did.slice(0, 80)}, got ${signer.keyId.slice(0, 80)}`)
  }
  if (signer === undefined && init.localRecord === undefined) throw new InvalidParametersError('signer: expected a Signer, an identity or init.localRecord, got none')
  let verifyRecord = c.recordVerifier
  if (verifyRecord === undefined) {
    if (c.signatureVerifier === undefined) throw new InvalidParametersError('signatureVerifier: expected a SignatureVerifier or a recordVerifier, got none')
    verifyRecord = createRecordVerifier({ signatureVerifier: c.signatureVerifier, clock, clockSkewMs: init.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS, maxRecordBytes: limits.maxRecordBytes })
  }
  const given = init.localRecord
  const ownRecord = async (router: MessageRouter): Promise<NodeRecord | undefined> => {
    if (given !== undefined) return given()
    const now = clock.now()
    return createNodeRecord(localNodeOf(router, init.node ?? {}, now), signer!, { source: { scheme: 'klp', authority: router.authority, path: GOSSIP_PATH }, ttlSeconds: ttl, now: Math.floor(now) })
  }
  return {
    membership: init.membership ?? {},
    broadcast: init.broadcast ?? {},
    peerList: init.peerList ?? {},
    gossipHops: positiveInt('gossipHops', init.gossipHops, 3),
    autoJoin: init.autoJoin ?? true,
    maxRecords: positiveInt('maxRecords', init.maxRecords, 256),
    maxDials: positiveInt('maxDials', init.maxDials, 16),
    maxInflight: positiveInt('maxInflight', init.maxInflight, 1024),
    dialTimeoutMs: positiveInt('dialTimeoutMs', init.dialTimeoutMs, 10_000),
    recordRefreshMs: given === undefined ? (ttl * 1000) / 2 : 0,
    repairIntervalMs: init.repairIntervalMs === 0 ? 0 : positiveInt('repairIntervalMs', init.repairIntervalMs, 5_000),
    limits,
    toTransportAddress: init.toTransportAddress ?? toTransportAddress,
    verifyRecord,
    peekRecord: createRecordPeek(limits.maxRecordBytes),
    random: c.random ?? mulberry32(seedOf(c.router.did)),
    ownRecord,
  }
}
