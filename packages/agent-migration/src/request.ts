/**
 * The migration request on the wire: a bundle `{ v: 1, header, agent, trail }` in DAG-CBOR, where
 * `header` is the signed MigrationHeader (cose.ts, by the source node), `agent` the SerializedAgent
 * bytes (codec.ts), `trail` the signed audit entries. The header signs the agent's checksum and the
 * trail's length and head, so the one signature covers everything. `openRequest` checks it all in
 * order of cost: size, shape, header signature, time, checksum, trail, delegation chain.
 */
import { equalBytes, type KLPValue, type Signer } from '@kos-mesh/interface'
import { encodeValue } from '@kos-mesh/klp-codec'
import { auditHead, verifyAuditTrail } from './audit.js'
import { arr, bytes, did, int, obj, oneOf, str } from './check.js'
import { decodeBounded, encodeAgent, validateSerializedAgent, verifyChecksum } from './codec.js'
import { openObject, sha256, signObject } from './cose.js'
import { checkDelegationChain, MAX_FUTURE_SKEW_MS, openDelegation } from './delegation.js'
import { DelegationError, InvalidBundleError, MigrationExpiredError, OwnershipError } from './errors.js'
import { validateFingerprint } from './fingerprint.js'
import { codecLimits, resolveMigrationLimits, type MigrationLimits } from './limits.js'
import { MIGRATION_TYPES, type AuditEntry, type AgentMigrationRequest, type AuditTrail, type MigrationHeader, type SerializedAgent } from './types.js'

const HEADER_FIELDS = ['v', 'kind', 'migration_id', 'agent_id', 'owner', 'source_node', 'target_node', 'migration_type', 'epoch', 'created_at', 'expires_at', 'checksum', 'audit_length', 'audit_head', 'fingerprint', 'delegations', 'restore_epoch', 'handoff_hash'] as const
/**
 * A valid migration id: 16..64 chars of the base64url alphabet (`A-Z`, `a-z`, `0-9`, `_`, `-`).
 * The service makes random ones (22 chars); `OutgoingOptions.migrationId` sets one (tests).
 */
export const MIGRATION_ID_RE = /^[A-Za-z0-9_-]{16,64}$/

/**
 * Checks a decoded value as a {@link MigrationHeader} under the bounds `l`: exact fields, version 1,
 * an id matching {@link MIGRATION_ID_RE}, did:key owner and nodes with a target other than the
 * source, at most `maxDelegations` delegations of at most `maxSignedBytes` each, a 32-byte audit
 * head, a `handoff_hash` of 0 or 32 bytes, `restore_epoch` of -1 or more. Checks neither the
 * signature nor the times (`openRequest` does).
 *
 * @throws InvalidBundleError for any other shape.
 */
export function validateHeader(v: unknown, l: Readonly<MigrationLimits>): MigrationHeader {
  const o = obj(v, 'a migration header', HEADER_FIELDS)
  if (o.v !== 1 || o.kind !== 'migration') throw new InvalidBundleError('expected a migration header of version 1')
  const h: MigrationHeader = {
    v: 1,
    kind: 'migration',
    migration_id: str(o.migration_id, 'migration_id', 64, 16, MIGRATION_ID_RE),
    agent_id: str(o.agent_id, 'agent_id', 256, 1),
    owner: did(o.owner, 'owner'),
    source_node: did(o.source_node, 'source_node'),
    target_node: did(o.target_node, 'target_node'),
    migration_type: oneOf(o.migration_type, 'migration_type', MIGRATION_TYPES),
    epoch: int(o.epoch, 'epoch'),
    created_at: int(o.created_at, 'created_at'),
    expires_at: int(o.expires_at, 'expires_at'),
    checksum: str(o.checksum, 'checksum', 128, 1),
    audit_length: int(o.audit_length, 'audit_length', 1, l.maxAuditEntries),
    audit_head: bytes(o.audit_head, 'audit_head', 32, 32),
    fingerprint: validateFingerprint(o.fingerprint, l.maxProbes),
    delegations: arr(o.delegations, 'delegations', l.maxDelegations).map((d) => bytes(d, 'a delegation', l.maxSignedBytes)),
    restore_epoch: int(o.restore_epoch, 'restore_epoch', -1),
    handoff_hash: bytes(o.handoff_hash, 'handoff_hash', 32),
  }
  if (h.handoff_hash.length !== 0 && h.handoff_hash.length !== 32) throw new InvalidBundleError('expected handoff_hash of 0 or 32 bytes')
  if (h.source_node === h.target_node) throw new InvalidBundleError('expected a target other than the source')
  return h
}

/** The audit event with which the source hands the agent over in this migration. */
export function handoverEvent(h: Pick<MigrationHeader, 'migration_type' | 'restore_epoch'>): AuditEntry['event'] {
  if (h.restore_epoch >= 0) return 'restored'
  return h.migration_type === 'move' ? 'migrated_out' : h.migration_type === 'copy' ? 'copied' : h.migration_type === 'clone' ? 'cloned' : 'archived'
}

/**
 * The header fields the caller of `buildRequest` supplies; the version, kind, bundle checksum,
 * audit length and head and hand-off hash are taken from the agent, trail and hand-off it signs.
 * Times are ms since the Unix epoch.
 */
export type HeaderInit = Omit<MigrationHeader, 'v' | 'kind' | 'checksum' | 'audit_length' | 'audit_head' | 'handoff_hash'>

/** Builds and signs the request; returns the bundle bytes and the request. */
export async function buildRequest(init: HeaderInit, agent: SerializedAgent, trail: AuditTrail, signer: Signer, handoff: Uint8Array | null = null, limits?: Partial<MigrationLimits>): Promise<{ bytes: Uint8Array; request: AgentMigrationRequest }> {
  const l = resolveMigrationLimits(limits)
  const header = validateHeader({ v: 1, kind: 'migration', ...init, checksum: agent.checksum, audit_length: trail.length, audit_head: auditHead(trail), handoff_hash: handoff === null ? new Uint8Array(0) : sha256(handoff) } as unknown as KLPValue, l)
  const signature = await signObject(header as unknown as KLPValue, signer, header.source_node, { maxBytesLength: l.maxSignedBytes })
  const agentBytes = encodeAgent(agent, l)
  const b = encodeValue({ v: 1, header: signature, agent: agentBytes, trail: trail.map((e) => e.bytes), handoff } as KLPValue, { limits: codecLimits(l, l.maxBundleBytes) })
  return {
    bytes: b,
    request: { agent_id: header.agent_id, agent_data: agent, source_node: header.source_node, target_node: header.target_node, migration_type: header.migration_type, behavioral_fingerprint: header.fingerprint, audit_trail: trail, signature, header, handoff },
  }
}

/** How `openRequest` and `openBundle` check a bundle: at what time, for which node, under which bounds. */
export interface OpenRequestOptions {
  /** Now, ms since the Unix epoch (the node clock): the request and each delegation must be valid then. */
  now: number
  /** Bounds of the decoders. Default {@link DEFAULT_MIGRATION_LIMITS}. */
  limits?: Partial<MigrationLimits>
  /** This node's DID: the request must name it as target. */
  self: string
  /**
   * The bytes come from this node's own store, verified when they arrived: the checksum is not
   * recomputed (the signature and every other check still run). Default false.
   */
  stored?: boolean
}

/**
 * Decodes and verifies a bundle. Throws BundleTooLargeError / InvalidBundleError (shape),
 * MigrationSignatureError (header or a trail entry forged), MigrationExpiredError,
 * ChecksumMismatchError (agent tampered), AuditTrailError, OwnershipError, DelegationError.
 * Does not check the fingerprint, the fencing epoch or replays (the target's state machine does).
 */
export function openRequest(bytesIn: Uint8Array, o: OpenRequestOptions): AgentMigrationRequest {
  return openBundle(bytesIn, o).request
}

/** openRequest, also returning the agent's bytes as received (a view into `bytesIn`). */
export function openBundle(bytesIn: Uint8Array, o: OpenRequestOptions): { request: AgentMigrationRequest; agentBytes: Uint8Array } {
  const l = resolveMigrationLimits(o.limits)
  const top = obj(decodeBounded(bytesIn, l.maxBundleBytes, l, 'a migration bundle'), 'a migration bundle', ['v', 'header', 'agent', 'trail', 'handoff'])
  if (top.v !== 1) throw new InvalidBundleError(`expected bundle version 1, got ${String(top.v)}`)
  const signature = bytes(top.header, 'header', l.maxSignedBytes)
  const opened = openObject(signature, l.maxSignedBytes, codecLimits(l, l.maxSignedBytes))
  const header = validateHeader(opened.body, l)
  if (opened.signer !== header.source_node) throw new InvalidBundleError(`expected the header signed by the source ${header.source_node}, got ${opened.signer}`)
  if (header.target_node !== o.self) throw new InvalidBundleError(`expected a request for ${o.self}, got one for ${header.target_node}`)
  if (header.expires_at <= o.now) throw new MigrationExpiredError(`expected a request valid at ${o.now}, got one that expired at ${header.expires_at}`)
  if (header.created_at > o.now + MAX_FUTURE_SKEW_MS) throw new MigrationExpiredError(`expected a request created before ${o.now + MAX_FUTURE_SKEW_MS}, got ${header.created_at}`)
  const agentBytes = bytes(top.agent, 'agent', l.maxBundleBytes)
  const agent = validateSerializedAgent(decodeBounded(agentBytes, l.maxBundleBytes, l, 'the agent'), l)
  if (agent.checksum !== header.checksum) throw new InvalidBundleError('expected the agent checksum signed in the header, got another')
  if (o.stored !== true) verifyChecksum(agent, l)
  if (agent.agent_metadata.agent_id !== header.agent_id) throw new InvalidBundleError(`expected agent ${header.agent_id}, got ${agent.agent_metadata.agent_id}`)
  if (header.migration_type !== 'clone' && agent.agent_metadata.owner !== header.owner) throw new OwnershipError(`expected the owner ${agent.agent_metadata.owner} in the header, got ${header.owner}`)
  const trail = verifyAuditTrail(arr(top.trail, 'trail', l.maxAuditEntries).map((e) => bytes(e, 'an audit entry', l.maxSignedBytes)), { agentId: header.agent_id, length: header.audit_length, head: header.audit_head, lastNode: header.source_node, owner: agent.agent_metadata.owner, last: { event: handoverEvent(header), migrationId: header.migration_id, peer: header.target_node } }, l)
  const subject = header.migration_type === 'clone' ? agent.agent_metadata.lineage?.parent ?? header.agent_id : header.migration_type === 'copy' ? agent.agent_metadata.lineage?.parent ?? header.agent_id : header.agent_id
  checkDelegationChain(header.delegations, { owner: header.owner, actor: header.source_node, agentId: subject, action: header.migration_type, target: header.target_node, now: o.now }, l)
  const handoff = top.handoff === null ? null : bytes(top.handoff, 'handoff', l.maxSignedBytes)
  if (handoff === null ? header.handoff_hash.length !== 0 : !equalBytes(sha256(handoff), header.handoff_hash)) throw new InvalidBundleError('expected the hand-off delegation signed in the header, got another')
  if (handoff !== null) {
    const d = openDelegation(handoff, l)
    if (d.issuer !== header.source_node || d.delegate !== header.target_node) throw new DelegationError(`expected a hand-off from ${header.source_node} to ${header.target_node}, got ${d.issuer} to ${d.delegate}`)
  }
  return { request: { agent_id: header.agent_id, agent_data: agent, source_node: header.source_node, target_node: header.target_node, migration_type: header.migration_type, behavioral_fingerprint: header.fingerprint, audit_trail: trail, signature, header, handoff }, agentBytes }
}
