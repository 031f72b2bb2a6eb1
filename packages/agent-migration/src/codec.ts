/**
 * The bundle (SerializedAgent) in exact DAG-CBOR through klp-codec's encoder: a strict, bounded
 * validator (exact fields, types, sizes, depth), the checksum, and encode/decode.
 *
 * checksum = CIDv1(dag-cbor 0x71, sha2-256 of the DAG-CBOR of the bundle with `checksum: ''`),
 * base32 (`bafyrei...`). Any change of any field changes it.
 */
import { describeValue, KosMeshError, LimitExceededError, type KLPValue } from '@kos-mesh/interface'
import { decodeValue, encodeValue } from '@kos-mesh/klp-codec'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { arr, bytes, did, int, jsonLike, obj, oneOf, str, strList } from './check.js'
import { sha256 } from './cose.js'
import { BundleTooLargeError, ChecksumMismatchError, InvalidBundleError } from './errors.js'
import { codecLimits, resolveMigrationLimits, type MigrationLimits } from './limits.js'
import type { AgentLineage, AgentPermissions, SealedBox, SerializedAgent } from './types.js'

/** Version of the bundle encoding (the `v` of headers, entries and boxes). */
export const BUNDLE_VERSION = 1
/**
 * A valid agent name: 1..64 chars of lowercase letters, digits, `.`, `_` and `-`, starting with a
 * letter or digit. The name is the last segment of the agent's address
 * (`klp://<node>/agents/<name>`) and what `AgentPermissions.agents` lists.
 */
export const AGENT_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/
/**
 * A valid capability, host capability or tool name: 1..128 chars of lowercase letters, digits and
 * `.`, `_`, `:`, `/`, `-`, starting with a letter or digit. `AgentPermissions.capabilities` and
 * `required` are further capped at 64 chars.
 */
export const CAPABILITY_RE = /^[a-z0-9][a-z0-9._:/-]{0,127}$/
const MAX_ID = 256
const MAX_SHORT = 1024

function lineage(v: unknown): AgentLineage | null {
  if (v === null) return null
  const o = obj(v, 'agent_metadata.lineage', ['parent', 'kind', 'parent_epoch', 'migration_id'])
  return {
    parent: str(o.parent, 'lineage.parent', MAX_ID, 1),
    kind: oneOf(o.kind, 'lineage.kind', ['copy', 'clone', 'restore'] as const),
    parent_epoch: int(o.parent_epoch, 'lineage.parent_epoch'),
    migration_id: str(o.migration_id, 'lineage.migration_id', MAX_ID, 1),
  }
}

/**
 * Checks a decoded value as a {@link SealedBox}: exactly the fields `v` (1), `epk` (32 bytes),
 * `nonce` (24 bytes) and `ct` (at most 1 MiB); returns it typed. Does not open it (`openSecrets`).
 *
 * @throws InvalidBundleError for any other shape.
 */
export function validateSealedBox(v: unknown): SealedBox {
  const o = obj(v, 'a sealed box', ['v', 'epk', 'nonce', 'ct'])
  if (o.v !== 1) throw new InvalidBundleError(`expected sealed box version 1, got ${describeValue(o.v)}`)
  return { v: 1, epk: bytes(o.epk, 'epk', 32, 32), nonce: bytes(o.nonce, 'nonce', 24, 24), ct: bytes(o.ct, 'ct', 1024 * 1024) }
}

function permissions(v: unknown, l: Readonly<MigrationLimits>): AgentPermissions {
  const o = obj(v, 'permissions', ['capabilities', 'required', 'tools', 'agents', 'memory_bytes', 'cpu_budget'])
  const p: AgentPermissions = {
    capabilities: strList(o.capabilities, 'permissions.capabilities', 64, 64, CAPABILITY_RE),
    required: strList(o.required, 'permissions.required', 64, 64, CAPABILITY_RE),
    tools: strList(o.tools, 'permissions.tools', 64, 128, CAPABILITY_RE),
    agents: strList(o.agents, 'permissions.agents', 64, 64, AGENT_NAME_RE),
    memory_bytes: int(o.memory_bytes, 'permissions.memory_bytes', 64 * 1024, 2 ** 31),
    cpu_budget: int(o.cpu_budget, 'permissions.cpu_budget', 1, 2 ** 31),
  }
  for (const r of p.required) if (!p.capabilities.includes(r)) throw new InvalidBundleError(`expected required capability ${r} among the capabilities`)
  void l
  return p
}

/**
 * Checks a decoded value as a SerializedAgent (exact fields, bounds of `limits`); returns it typed.
 * Does not check the checksum (see verifyChecksum).
 */
export function validateSerializedAgent(v: unknown, limits?: Partial<MigrationLimits>): SerializedAgent {
  const l = resolveMigrationLimits(limits)
  const o = obj(v, 'the bundle', ['agent_metadata', 'agent_state', 'memory_snapshot', 'configuration', 'permissions', 'serialization_timestamp', 'checksum'])
  const m = obj(o.agent_metadata, 'agent_metadata', ['agent_id', 'name', 'owner', 'version', 'capabilities', 'description', 'created_at', 'lineage'])
  const s = obj(o.agent_state, 'agent_state', ['epoch', 'data', 'sealed_secrets'])
  const mem = obj(o.memory_snapshot, 'memory_snapshot', ['entries'])
  const c = obj(o.configuration, 'configuration', ['runtime', 'code', 'params', 'probes'])
  const data = s.data as KLPValue
  if (data === undefined) throw new InvalidBundleError('expected agent_state.data')
  if (!jsonLike(data)) throw new InvalidBundleError('expected agent_state.data without byte strings or bigints')
  const stateBytes = encodeValue(data, { limits: codecLimits(l, l.maxStateBytes) }).length
  if (stateBytes > l.maxStateBytes) throw new BundleTooLargeError(`expected agent_state.data of at most ${l.maxStateBytes} bytes, got ${stateBytes}`)
  let total = 0
  const entries = arr(mem.entries, 'memory_snapshot.entries', l.maxMemoryEntries).map((e, i) => {
    const eo = obj(e, `memory entry ${i}`, ['key', 'value'])
    const value = bytes(eo.value, `memory entry ${i} value`, Number.MAX_SAFE_INTEGER)
    total += value.length
    if (total > l.maxMemoryBytes) throw new BundleTooLargeError(`expected a memory snapshot of at most ${l.maxMemoryBytes} bytes, got more`)
    return { key: str(eo.key, `memory entry ${i} key`, MAX_ID, 1), value }
  })
  if (new Set(entries.map((e) => e.key)).size !== entries.length) throw new InvalidBundleError('expected distinct memory keys')
  const code = str(c.code, 'configuration.code', l.maxCodeBytes, 1)
  if (!isObjMap(c.params) || !jsonLike(c.params as KLPValue)) throw new InvalidBundleError('expected configuration.params as a map without byte strings')
  const probes = arr(c.probes, 'configuration.probes', l.maxProbes)
  if (!probes.every((p) => jsonLike(p))) throw new InvalidBundleError('expected probes without byte strings')
  return {
    agent_metadata: {
      agent_id: str(m.agent_id, 'agent_id', MAX_ID, 1),
      name: str(m.name, 'name', 64, 1, AGENT_NAME_RE),
      owner: did(m.owner, 'owner'),
      version: str(m.version, 'version', 64),
      capabilities: strList(m.capabilities, 'capabilities', 64, 128, CAPABILITY_RE),
      description: str(m.description, 'description', MAX_SHORT),
      created_at: int(m.created_at, 'created_at'),
      lineage: lineage(m.lineage),
    },
    agent_state: {
      epoch: int(s.epoch, 'agent_state.epoch'),
      data,
      sealed_secrets: s.sealed_secrets === null ? null : validateSealedBox(s.sealed_secrets),
    },
    memory_snapshot: { entries },
    configuration: { runtime: oneOf(c.runtime, 'configuration.runtime', ['quickjs'] as const), code, params: c.params as { [k: string]: KLPValue }, probes: [...probes] },
    permissions: permissions(o.permissions, l),
    serialization_timestamp: int(o.serialization_timestamp, 'serialization_timestamp'),
    checksum: str(o.checksum, 'checksum', 128),
  }
}

function isObjMap(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function cidOf(b: Uint8Array): string {
  return CID.createV1(0x71, createDigest(0x12, sha256(b))).toString()
}

/** The checksum of a bundle: CIDv1 of its DAG-CBOR with `checksum: ''` (validates the bundle first). */
export function computeChecksum(agent: SerializedAgent, limits?: Partial<MigrationLimits>): string {
  const l = resolveMigrationLimits(limits)
  const a = validateSerializedAgent(agent as unknown as KLPValue, l)
  return cidOf(encodeValue({ ...a, checksum: '' } as unknown as KLPValue, { limits: codecLimits(l, l.maxBundleBytes) }))
}

/** Returns the bundle with its checksum set. */
export function sealChecksum(agent: Omit<SerializedAgent, 'checksum'> & { checksum?: string }, limits?: Partial<MigrationLimits>): SerializedAgent {
  const a = { ...agent, checksum: '' } as SerializedAgent
  return { ...a, checksum: computeChecksum(a, limits) }
}

/** Throws ChecksumMismatchError unless `agent.checksum` is the checksum of its content. */
export function verifyChecksum(agent: SerializedAgent, limits?: Partial<MigrationLimits>): void {
  const want = computeChecksum(agent, limits)
  if (agent.checksum !== want) throw new ChecksumMismatchError(`expected checksum ${want}, got ${agent.checksum.slice(0, 80)}`)
}

/** Exact DAG-CBOR of a (valid) bundle. */
export function encodeAgent(agent: SerializedAgent, limits?: Partial<MigrationLimits>): Uint8Array {
  const l = resolveMigrationLimits(limits)
  const a = validateSerializedAgent(agent as unknown as KLPValue, l)
  const out = encodeValue(a as unknown as KLPValue, { limits: codecLimits(l, l.maxBundleBytes) })
  if (out.length > l.maxBundleBytes) throw new BundleTooLargeError(`expected a bundle of at most ${l.maxBundleBytes} bytes, got ${out.length}`)
  return out
}

/** Decodes one DAG-CBOR value under the bundle limits, mapping codec errors to this package's. */
export function decodeBounded(b: Uint8Array, maxBytes: number, l: Readonly<MigrationLimits>, what: string): KLPValue {
  if (!(b instanceof Uint8Array)) throw new InvalidBundleError(`expected ${what} as bytes, got ${describeValue(b)}`)
  if (b.length > maxBytes) throw new BundleTooLargeError(`expected ${what} of at most ${maxBytes} bytes, got ${b.length}`)
  try {
    return decodeValue(b, { limits: codecLimits(l, maxBytes) })
  } catch (err) {
    if (err instanceof LimitExceededError) throw new BundleTooLargeError(`expected ${what} within the limits, got ${err.name}: ${err.message}`, { cause: err })
    if (err instanceof KosMeshError) throw new InvalidBundleError(`expected ${what} as DAG-CBOR, got ${err.name}: ${err.message}`, { cause: err })
    throw err
  }
}

/** Strictly decodes a bundle and checks its checksum (InvalidBundleError, BundleTooLargeError, ChecksumMismatchError). */
export function decodeAgent(b: Uint8Array, limits?: Partial<MigrationLimits>): SerializedAgent {
  const l = resolveMigrationLimits(limits)
  const agent = validateSerializedAgent(decodeBounded(b, l.maxBundleBytes, l, 'a bundle'), l)
  verifyChecksum(agent, l)
  return agent
}
