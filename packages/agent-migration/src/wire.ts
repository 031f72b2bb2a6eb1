/**
 * The AGENT_MIGRATION messages at path `/agent-migration` (request -> response, both signed KLP
 * messages, the response signed by the DID the request was for):
 *   { op: 'preflight', migration_id, agent_id, name, type, epoch, restore, size, permissions } -> { status: 'ok' }
 *   { op: 'prepare', migration_id, bundle: bytes }              -> { status: 'ok', vote: 'prepared' | 'committed' }
 *   { op: 'prepare', migration_id, offer: text, size: int }     -> { status: 'ok', vote: 'receiving' }
 *       (the bundle by bulk transfer, pulled by the target in the background; the source then polls)
 *   { op: 'status', migration_id }                              -> { status: 'ok', vote: 'receiving' | 'prepared' | 'committed' }
 *   { op: 'commit' | 'abort', migration_id }                    -> { status: 'ok' }
 *   { op: 'query', migration_id }                               -> { status: 'ok', decision }
 * A refusal is `{ status: 'rejected', error: { code, message } }` with a code of MigrationRejectReason.
 */
import { describeValue, type KLPValue } from '@kos-mesh/interface'
import { bool, bytes, int, obj, oneOf, str } from './check.js'
import { AGENT_NAME_RE } from './codec.js'
import { InvalidBundleError } from './errors.js'
import { MIGRATION_ID_RE } from './request.js'
import type { Preflight } from './protocol/target.js'
import { MIGRATION_TYPES } from './types.js'

/** The default path of the AGENT_MIGRATION handler (`AgentMigrationInit.path`). */
export const MIGRATION_PATH = '/agent-migration'

/** Wire reason codes of refusals (`error.code`). */
export const MigrationRejectReason = {
  INVALID_BUNDLE: 'invalid_bundle',
  TOO_LARGE: 'too_large',
  CHECKSUM_MISMATCH: 'checksum_mismatch',
  BAD_SIGNATURE: 'bad_signature',
  EXPIRED: 'expired',
  STALE: 'stale',
  OWNERSHIP: 'ownership',
  DELEGATION: 'delegation',
  AUDIT_TRAIL: 'audit_trail',
  FINGERPRINT_MISMATCH: 'fingerprint_mismatch',
  SEAL: 'seal',
  SANDBOX_LIMIT: 'sandbox_limit',
  CAPABILITY_NOT_GRANTED: 'capability_not_granted',
  AGENT_CODE: 'agent_code',
  PERMISSION_REFUSED: 'permission_refused',
  AGENT_STATE: 'agent_state',
  TYPE_NOT_ACCEPTED: 'type_not_accepted',
  NOT_SENDER: 'not_sender',
  TRANSFER_FAILED: 'transfer_failed',
  BUSY: 'busy',
  UNKNOWN_MIGRATION: 'unknown_migration',
  INTERNAL: 'internal',
} as const
export type MigrationRejectReason = (typeof MigrationRejectReason)[keyof typeof MigrationRejectReason]

const BY_NAME: Record<string, MigrationRejectReason> = {
  InvalidBundleError: 'invalid_bundle',
  BundleTooLargeError: 'too_large',
  ChecksumMismatchError: 'checksum_mismatch',
  MigrationSignatureError: 'bad_signature',
  MigrationExpiredError: 'expired',
  StaleMigrationError: 'stale',
  OwnershipError: 'ownership',
  DelegationError: 'delegation',
  AuditTrailError: 'audit_trail',
  FingerprintMismatchError: 'fingerprint_mismatch',
  SealError: 'seal',
  SandboxLimitError: 'sandbox_limit',
  CapabilityNotGrantedError: 'capability_not_granted',
  AgentCodeError: 'agent_code',
  PermissionRefusedError: 'permission_refused',
  AgentStateError: 'agent_state',
  FencedAgentError: 'agent_state',
}

/** The wire code of an error (a typed error of this package, or `internal`). */
export function reasonOf(err: unknown): MigrationRejectReason {
  const e = err as { name?: unknown; reason?: unknown }
  if (e?.name === 'MigrationRefusedError' && typeof e.reason === 'string' && Object.values(MigrationRejectReason).includes(e.reason as MigrationRejectReason)) return e.reason as MigrationRejectReason
  if (typeof e?.name === 'string' && e.name.startsWith('Bulk')) return 'transfer_failed'
  return typeof e?.name === 'string' ? BY_NAME[e.name] ?? 'internal' : 'internal'
}

/**
 * A request payload of the migration protocol as {@link parseWireRequest} returns it, by `op` (the
 * answers are in this module's description): `preflight`, `prepare` with the bundle inline or a
 * bulk-transfer offer, and `commit`, `abort`, `query` or `status` of a migration id.
 */
export type WireRequest =
  | ({ op: 'preflight' } & Preflight)
  | { op: 'prepare'; migration_id: string; bundle: Uint8Array }
  | { op: 'prepare'; migration_id: string; offer: string; size: number }
  | { op: 'commit' | 'abort' | 'query' | 'status'; migration_id: string }

/** Strictly parses a request payload (InvalidBundleError otherwise). */
export function parseWireRequest(data: unknown, maxBundleBytes: number): WireRequest {
  const op = (data as { op?: unknown } | null)?.op
  if (op === 'preflight') {
    const o = obj(data, 'a preflight', ['op', 'migration_id', 'agent_id', 'name', 'type', 'epoch', 'restore', 'size', 'permissions'])
    const p = obj(o.permissions, 'permissions', ['capabilities', 'required', 'tools', 'agents', 'memory_bytes', 'cpu_budget'])
    const list = (v: unknown, w: string): string[] => (Array.isArray(v) && v.length <= 64 ? v.map((x) => str(x, w, 128, 1)) : (() => { throw new InvalidBundleError(`expected ${w} as a list`) })())
    return {
      op,
      migration_id: str(o.migration_id, 'migration_id', 64, 16, MIGRATION_ID_RE),
      agent_id: str(o.agent_id, 'agent_id', 256, 1),
      name: str(o.name, 'name', 64, 1, AGENT_NAME_RE),
      type: oneOf(o.type, 'type', MIGRATION_TYPES),
      epoch: int(o.epoch, 'epoch'),
      restore: bool(o.restore, 'restore'),
      size: int(o.size, 'size'),
      permissions: { capabilities: list(p.capabilities, 'capabilities'), required: list(p.required, 'required'), tools: list(p.tools, 'tools'), agents: list(p.agents, 'agents'), memory_bytes: int(p.memory_bytes, 'memory_bytes'), cpu_budget: int(p.cpu_budget, 'cpu_budget') },
    }
  }
  if (op === 'prepare') {
    const o = data as Record<string, KLPValue>
    if ('bundle' in o) {
      const p = obj(data, 'a prepare', ['op', 'migration_id', 'bundle'])
      return { op, migration_id: str(p.migration_id, 'migration_id', 64, 16, MIGRATION_ID_RE), bundle: bytes(p.bundle, 'bundle', maxBundleBytes) }
    }
    const p = obj(data, 'a prepare', ['op', 'migration_id', 'offer', 'size'])
    return { op, migration_id: str(p.migration_id, 'migration_id', 64, 16, MIGRATION_ID_RE), offer: str(p.offer, 'offer', 128, 1), size: int(p.size, 'size', 0, maxBundleBytes) }
  }
  if (op === 'commit' || op === 'abort' || op === 'query' || op === 'status') {
    const o = obj(data, `a ${op}`, ['op', 'migration_id'])
    return { op, migration_id: str(o.migration_id, 'migration_id', 64, 16, MIGRATION_ID_RE) }
  }
  throw new InvalidBundleError(`expected op preflight|prepare|status|commit|abort|query, got ${describeValue(op)}`)
}
