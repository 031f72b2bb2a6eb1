/** Bounds of every decoder and store of this package; each is an init option with this default. */
import { describeValue, InvalidParametersError } from '@kos-mesh/interface'
import type { CodecLimits } from '@kos-mesh/klp-codec'

/**
 * Size and count bounds of every decoder, validator and store of this package, so a hostile bundle
 * is refused before it costs more than they allow (BundleTooLargeError, InvalidBundleError). Every
 * bound is a positive integer; pass a `Partial` to override some (`AgentMigrationInit.limits`,
 * the `limits` argument of the functions), see {@link resolveMigrationLimits}.
 */
export interface MigrationLimits {
  /** Largest encoded bundle (request + agent + trail), bytes. Default 64 MiB. */
  maxBundleBytes: number
  /** Largest agent state (`agent_state.data`) as DAG-CBOR, bytes. Default 1 MiB. */
  maxStateBytes: number
  /** Largest memory snapshot in total, bytes. Default 48 MiB. */
  maxMemoryBytes: number
  /** Most memory entries. Default 4,096. */
  maxMemoryEntries: number
  /** Longest agent code, bytes. Default 256 KiB. */
  maxCodeBytes: number
  /** Deepest nesting of any decoded value. Default 32. */
  maxDepth: number
  /** Most array items + map entries in one decoded value. Default 100,000. */
  maxItems: number
  /** Most fingerprint probes. Default 16. */
  maxProbes: number
  /** Most audit trail entries. Default 1,024. */
  maxAuditEntries: number
  /** Longest delegation chain. Default 4. */
  maxDelegations: number
  /** Largest signed object (header, delegation, audit entry, vote), bytes. Default 64 KiB. */
  maxSignedBytes: number
}

/** The default {@link MigrationLimits} (each field's documented default), frozen. */
export const DEFAULT_MIGRATION_LIMITS: Readonly<MigrationLimits> = Object.freeze({
  maxBundleBytes: 64 * 1024 * 1024,
  maxStateBytes: 1024 * 1024,
  maxMemoryBytes: 48 * 1024 * 1024,
  maxMemoryEntries: 4096,
  maxCodeBytes: 256 * 1024,
  maxDepth: 32,
  maxItems: 100_000,
  maxProbes: 16,
  maxAuditEntries: 1024,
  maxDelegations: 4,
  maxSignedBytes: 64 * 1024,
})

/**
 * The full limits: `partial` over {@link DEFAULT_MIGRATION_LIMITS} (undefined fields keep their
 * default). Returns the frozen defaults themselves when `partial` is undefined.
 *
 * @throws InvalidParametersError for an unknown limit name, a value that is not a positive safe
 *   integer, or `maxDepth` above 64.
 */
export function resolveMigrationLimits(partial?: Partial<MigrationLimits>): Readonly<MigrationLimits> {
  if (partial === undefined) return DEFAULT_MIGRATION_LIMITS
  const out: MigrationLimits = { ...DEFAULT_MIGRATION_LIMITS }
  for (const [k, v] of Object.entries(partial)) {
    if (v === undefined) continue
    if (!(k in DEFAULT_MIGRATION_LIMITS)) throw new InvalidParametersError(`expected a known limit name, got ${k}`)
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new InvalidParametersError(`expected ${k} to be a positive integer, got ${describeValue(v)}`)
    out[k as keyof MigrationLimits] = v
  }
  if (out.maxDepth > 64) throw new InvalidParametersError(`expected maxDepth <= 64, got ${out.maxDepth}`)
  return Object.freeze(out)
}

/** The codec limits for a whole bundle's DAG-CBOR under these bounds. */
export function codecLimits(l: Readonly<MigrationLimits>, maxBytes: number): Partial<CodecLimits> {
  return {
    maxDepth: l.maxDepth + 4,
    maxItems: l.maxItems + l.maxMemoryEntries * 2 + l.maxAuditEntries + 256,
    maxStringLength: Math.max(l.maxCodeBytes, 64 * 1024),
    maxBytesLength: Math.max(maxBytes, 1),
    maxMessageSize: Math.max(maxBytes, 1),
    maxFrameSize: Math.max(maxBytes, 1),
  }
}
