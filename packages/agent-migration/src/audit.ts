/**
 * The audit trail: hash-chained entries, each a signed object (cose.ts) by the node that held the
 * agent at that point. Entry `i` has `seq = i` and `prev` = SHA-256 of entry `i-1`'s signed bytes
 * (empty for entry 0). The holder changes only through a hand-over entry (`migrated_out`,
 * `copied`, `archived`, `restored`, `cloned`): the next entry's node must be that entry's `peer`.
 * The trail starts with `created`, signed by the owner, whose peer is the first node to host the
 * agent (or, for a clone, with `cloned` signed by the node that made it): a holder cannot forge a
 * shorter history without the owner's key.
 * A migration request signs the trail's length and the hash of its last entry, so removing,
 * reordering or editing any entry (or cutting the tail) fails verification.
 */
import { equalBytes, type KLPValue, type Signer } from '@kos-mesh/interface'
import { bytes, did, int, obj, oneOf, str } from './check.js'
import { openObject, sha256, signObject } from './cose.js'
import { AuditTrailError, InvalidBundleError } from './errors.js'
import { resolveMigrationLimits, type MigrationLimits } from './limits.js'
import type { AuditEntry, AuditTrail, SignedAuditEntry } from './types.js'

const EVENTS = ['created', 'migrated_out', 'migrated_in', 'copied', 'cloned', 'archived', 'restored'] as const
/** Events after which the next entry belongs to the entry's peer. */
const HANDOVER: ReadonlySet<string> = new Set(['created', 'migrated_out', 'copied', 'cloned', 'archived', 'restored'])
/** Events that can start a trail. */
const GENESIS: ReadonlySet<string> = new Set(['created', 'cloned'])
const FIELDS = ['v', 'agent_id', 'seq', 'prev', 'node', 'event', 'epoch', 'at', 'migration_id', 'peer', 'checksum'] as const

/**
 * Checks a decoded value as an {@link AuditEntry} body: exact fields, version 1, `seq` in 0..2^30,
 * `prev` empty for seq 0 and 32 bytes after, did:key `node` (and `peer`, or `''`), a known event,
 * ids of at most 256 chars, a checksum of at most 128. Returns it typed. Checks neither the
 * signature nor the entry's place in a trail (`openAuditEntry`, `verifyAuditTrail` do).
 *
 * @throws InvalidBundleError for any other shape.
 */
export function validateAuditEntry(v: unknown): AuditEntry {
  const o = obj(v, 'an audit entry', FIELDS)
  if (o.v !== 1) throw new InvalidBundleError('expected an audit entry of version 1')
  const seq = int(o.seq, 'seq', 0, 1 << 30)
  return {
    v: 1,
    agent_id: str(o.agent_id, 'agent_id', 256, 1),
    seq,
    prev: bytes(o.prev, 'prev', 32, seq === 0 ? 0 : 32),
    node: did(o.node, 'node'),
    event: oneOf(o.event, 'event', EVENTS),
    epoch: int(o.epoch, 'epoch'),
    at: int(o.at, 'at'),
    migration_id: str(o.migration_id, 'migration_id', 256),
    peer: o.peer === '' ? '' : did(o.peer, 'peer'),
    checksum: str(o.checksum, 'checksum', 128),
  }
}

/**
 * Decodes one signed audit entry (at most `limits.maxSignedBytes`, default 64 KiB) and verifies
 * that the node it names signed it. Returns the entry with its bytes (kept by reference), frozen.
 * Does not check its place in a trail (`verifyAuditTrail` does).
 *
 * @throws BundleTooLargeError, InvalidBundleError or MigrationSignatureError for bad bytes;
 *   AuditTrailError when the signer is not the entry's `node`.
 */
export function openAuditEntry(b: Uint8Array, limits?: Partial<MigrationLimits>): SignedAuditEntry {
  const l = resolveMigrationLimits(limits)
  const o = openObject(b, l.maxSignedBytes, { maxDepth: 3, maxItems: 64, maxStringLength: 1024, maxBytesLength: 64 })
  const entry = validateAuditEntry(o.body)
  if (o.signer !== entry.node) throw new AuditTrailError(`expected entry ${entry.seq} signed by its node ${entry.node}, got ${o.signer}`)
  return Object.freeze({ entry, bytes: b })
}

/** The hash of a trail's last entry (empty for an empty trail). */
export function auditHead(trail: AuditTrail): Uint8Array {
  const last = trail[trail.length - 1]
  return last === undefined ? new Uint8Array(0) : sha256(last.bytes)
}

/**
 * The fields of a new audit entry for `appendAudit`; its version, `seq` and `prev` hash are taken
 * from the trail it extends. `at` is ms since the Unix epoch.
 */
export type AuditAppend = Omit<AuditEntry, 'v' | 'seq' | 'prev'>

/** Appends an entry signed by `signer` (a key of `init.node`); returns the new trail. */
export async function appendAudit(trail: AuditTrail, init: AuditAppend, signer: Signer): Promise<AuditTrail> {
  const entry = validateAuditEntry({ v: 1, seq: trail.length, prev: auditHead(trail), ...init } as unknown as KLPValue)
  const b = await signObject(entry as unknown as KLPValue, signer, entry.node)
  return Object.freeze([...trail, Object.freeze({ entry, bytes: b })])
}

/**
 * What `verifyAuditTrail` requires of a trail besides its internal rules: the values the
 * migration header signed (length, head), who sent it, and who owns the agent.
 */
export interface TrailExpectation {
  /** The agent id the trail must end with. */
  agentId: string
  /** Length and head hash signed in the request. */
  length: number
  /** SHA-256 of the last entry's signed bytes (32 bytes), as signed in the request. */
  head: Uint8Array
  /** The node that must have signed the last entry (the sender). */
  lastNode: string
  /** The owner, who must have signed a `created` genesis entry. */
  owner: string
  /** What the last entry must be (the sender's hand-over for this migration), when given. */
  last?: { event: AuditEntry['event']; migrationId: string; peer: string }
}

/**
 * Decodes and verifies a trail: each signature, `seq`, the `prev` chain, the hand-over rule, the
 * agent id (it changes only at a `copied` or `cloned` entry), and the signed length and head.
 * Throws AuditTrailError for an edited, cut or spliced trail.
 */
export function verifyAuditTrail(entries: readonly Uint8Array[], want: TrailExpectation, limits?: Partial<MigrationLimits>): AuditTrail {
  const l = resolveMigrationLimits(limits)
  if (entries.length === 0 || entries.length > l.maxAuditEntries) throw new AuditTrailError(`expected 1..${l.maxAuditEntries} audit entries, got ${entries.length}`)
  if (entries.length !== want.length) throw new AuditTrailError(`expected ${want.length} audit entries (signed in the request), got ${entries.length}`)
  const trail: SignedAuditEntry[] = []
  let prevHash: Uint8Array = new Uint8Array(0)
  for (const [i, b] of entries.entries()) {
    const s = openAuditEntry(b, l)
    const e = s.entry
    if (e.seq !== i) throw new AuditTrailError(`expected entry ${i} to have seq ${i}, got ${e.seq}`)
    if (!equalBytes(e.prev, prevHash)) throw new AuditTrailError(`expected entry ${i} to chain to the hash of entry ${i - 1}`)
    const before = trail[i - 1]?.entry
    if (before === undefined) {
      if (!GENESIS.has(e.event)) throw new AuditTrailError(`expected the trail to start with created or cloned, got ${e.event}`)
      if (e.event === 'created' && e.node !== want.owner) throw new AuditTrailError(`expected the created entry signed by the owner ${want.owner}, got ${e.node}`)
    } else {
      if (HANDOVER.has(before.event) ? e.node !== before.peer : e.node !== before.node) throw new AuditTrailError(`expected entry ${i} by ${HANDOVER.has(before.event) ? before.peer : before.node}, got ${e.node}`)
      if (e.agent_id !== before.agent_id && e.event !== 'copied' && e.event !== 'cloned') throw new AuditTrailError(`expected entry ${i} for agent ${before.agent_id}, got ${e.agent_id}`)
      if (e.epoch < before.epoch && e.event !== 'copied' && e.event !== 'cloned') throw new AuditTrailError(`expected entry ${i}'s epoch at least ${before.epoch}, got ${e.epoch}`)
    }
    prevHash = sha256(b)
    trail.push(s)
  }
  const last = trail[trail.length - 1]!.entry
  if (!equalBytes(prevHash, want.head)) throw new AuditTrailError('expected the trail head signed in the request, got another')
  if (last.node !== want.lastNode) throw new AuditTrailError(`expected the last entry by the sender ${want.lastNode}, got ${last.node}`)
  if (last.agent_id !== want.agentId) throw new AuditTrailError(`expected the trail to end with agent ${want.agentId}, got ${last.agent_id}`)
  if (want.last !== undefined && (last.event !== want.last.event || last.migration_id !== want.last.migrationId || last.peer !== want.last.peer)) {
    throw new AuditTrailError(`expected the trail to end with ${want.last.event} of ${want.last.migrationId} to ${want.last.peer}, got ${last.event} of ${last.migration_id}`)
  }
  return Object.freeze(trail)
}
