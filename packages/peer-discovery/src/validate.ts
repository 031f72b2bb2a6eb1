/**
 * Strict shape checks for the FederatedNode carried by a node record. Everything that came off
 * the wire goes through here before it is stored: unknown fields, wrong types and oversized
 * values are rejected with a typed error ("expected X, got Y").
 */
import { ConnectivityStatus, NATType, NodeType, VerificationLevel, describeValue } from '@kos-mesh/interface'
import type { FederatedNode, NetworkAddress, NodeCapabilities } from '@kos-mesh/interface'
import { InvalidNodeRecordError, RecordLimitExceededError } from './errors.js'

/** Bounds of a node record's fields. */
export interface NodeLimits {
  /** Max transport addresses in one record. Default 16. */
  maxAddresses: number
  /** Max length of any string field (DID, address, protocol name). Default 512. */
  maxStringLength: number
  /** Max entries of `protocols_supported`. Default 16. */
  maxProtocols: number
}

/** The default bounds of node records (each documented on NodeLimits). */
export const DEFAULT_NODE_LIMITS: Readonly<NodeLimits> = Object.freeze({
  maxAddresses: 16,
  maxStringLength: 512,
  maxProtocols: 16,
})

/** The boolean capability names a query may require (`required_capabilities`). */
export const CAPABILITY_FLAGS = [
  'agent_hosting',
  'vector_storage',
  'relay_services',
  'validation_services',
  'archive_services',
] as const
/** A boolean capability name (one of CAPABILITY_FLAGS). */
export type CapabilityFlag = (typeof CAPABILITY_FLAGS)[number]

const CAPABILITY_NUMBERS = ['bandwidth_mbps', 'storage_gb', 'compute_units'] as const

const NODE_TYPES = new Set<string>(Object.values(NodeType))
const NAT_TYPES = new Set<string>(Object.values(NATType))
const CONNECTIVITY = new Set<string>(Object.values(ConnectivityStatus))
const VERIFICATION = new Set<string>(Object.values(VerificationLevel))


function fail(path: string, expected: string, got: unknown): never {
  throw new InvalidNodeRecordError(`${path}: expected ${expected}, got ${describeValue(got)}`)
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function exactKeys(path: string, obj: Record<string, unknown>, keys: readonly string[]): void {
  const allowed = new Set(keys)
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) throw new InvalidNodeRecordError(`${path}: expected only known fields, got unknown field ${JSON.stringify(k.slice(0, 40))}`)
  }
}

function str(path: string, v: unknown, limits: NodeLimits): string {
  if (typeof v !== 'string') fail(path, 'a string', v)
  if (v.length > limits.maxStringLength) throw new RecordLimitExceededError(`${path}: expected at most ${limits.maxStringLength} characters, got ${v.length}`)
  return v
}

function num(path: string, v: unknown, min: number, max: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    fail(path, `${integer ? 'an integer' : 'a number'} in [${min}, ${max}]`, v)
  }
  return v
}

function bool(path: string, v: unknown): boolean {
  if (typeof v !== 'boolean') fail(path, 'a boolean', v)
  return v
}

function oneOf<T extends string>(path: string, v: unknown, set: Set<string>): T {
  if (typeof v !== 'string' || !set.has(v)) fail(path, `one of ${[...set].join(', ')}`, v)
  return v as T
}

function parseCapabilities(v: unknown): NodeCapabilities {
  if (!isPlainObject(v)) fail('capabilities', 'an object', v)
  exactKeys('capabilities', v, [...CAPABILITY_FLAGS, ...CAPABILITY_NUMBERS])
  const out: Record<string, boolean | number> = {}
  for (const k of CAPABILITY_FLAGS) out[k] = bool(`capabilities.${k}`, v[k])
  for (const k of CAPABILITY_NUMBERS) out[k] = num(`capabilities.${k}`, v[k], 0, Number.MAX_SAFE_INTEGER)
  return out as unknown as NodeCapabilities
}

function parseAddress(path: string, v: unknown, limits: NodeLimits): NetworkAddress {
  if (!isPlainObject(v)) fail(path, 'an object', v)
  exactKeys(path, v, ['protocol', 'address', 'port', 'is_public', 'is_relay'])
  return {
    protocol: str(`${path}.protocol`, v.protocol, limits),
    address: str(`${path}.address`, v.address, limits),
    port: num(`${path}.port`, v.port, 0, 65535, true),
    is_public: bool(`${path}.is_public`, v.is_public),
    is_relay: bool(`${path}.is_relay`, v.is_relay),
  }
}

/** Parses and bounds an untrusted value as a FederatedNode. Returns a fresh, plain copy. */
export function parseFederatedNode(v: unknown, limits: NodeLimits = DEFAULT_NODE_LIMITS): FederatedNode {
  if (!isPlainObject(v)) fail('node', 'an object', v)
  exactKeys('node', v, ['node_id', 'node_type', 'capabilities', 'network_info', 'trust_profile', 'last_seen'])
  const nodeId = str('node.node_id', v.node_id, limits)
  if (!nodeId.startsWith('did:')) fail('node.node_id', 'a DID', nodeId)
  const ni = v.network_info
  if (!isPlainObject(ni)) fail('network_info', 'an object', ni)
  exactKeys('network_info', ni, ['addresses', 'protocols_supported', 'nat_type', 'connectivity_status', 'latency_ms'])
  if (!Array.isArray(ni.addresses)) fail('network_info.addresses', 'an array', ni.addresses)
  if (ni.addresses.length > limits.maxAddresses) {
    throw new RecordLimitExceededError(`network_info.addresses: expected at most ${limits.maxAddresses} addresses, got ${ni.addresses.length}`)
  }
  if (!Array.isArray(ni.protocols_supported)) fail('network_info.protocols_supported', 'an array', ni.protocols_supported)
  if (ni.protocols_supported.length > limits.maxProtocols) {
    throw new RecordLimitExceededError(`network_info.protocols_supported: expected at most ${limits.maxProtocols} entries, got ${ni.protocols_supported.length}`)
  }
  const tp = v.trust_profile
  if (!isPlainObject(tp)) fail('trust_profile', 'an object', tp)
  exactKeys('trust_profile', tp, ['trust_score', 'endorsements', 'verification_level'])
  return {
    node_id: nodeId,
    node_type: oneOf('node.node_type', v.node_type, NODE_TYPES),
    capabilities: parseCapabilities(v.capabilities),
    network_info: {
      addresses: ni.addresses.map((a: unknown, i: number) => parseAddress(`network_info.addresses[${i}]`, a, limits)),
      protocols_supported: ni.protocols_supported.map((p: unknown, i: number) => str(`network_info.protocols_supported[${i}]`, p, limits)),
      nat_type: oneOf('network_info.nat_type', ni.nat_type, NAT_TYPES),
      connectivity_status: oneOf('network_info.connectivity_status', ni.connectivity_status, CONNECTIVITY),
      latency_ms: num('network_info.latency_ms', ni.latency_ms, 0, Number.MAX_SAFE_INTEGER),
    },
    trust_profile: {
      trust_score: num('trust_profile.trust_score', tp.trust_score, 0, 10),
      endorsements: num('trust_profile.endorsements', tp.endorsements, 0, Number.MAX_SAFE_INTEGER, true),
      verification_level: oneOf('trust_profile.verification_level', tp.verification_level, VERIFICATION),
    },
    last_seen: num('node.last_seen', v.last_seen, 0, Number.MAX_SAFE_INTEGER, true),
  }
}

/** True when `caps` has every named boolean capability. Unknown names never match. */
export function hasCapabilities(caps: NodeCapabilities, required: readonly string[]): boolean {
  for (const name of required) {
    if ((caps as unknown as Record<string, unknown>)[name] !== true) return false
  }
  return true
}

/** The DID part of a key id (`did:key:z...#z...` -> `did:key:z...`). */
export { didOfKeyId } from '@kos-mesh/interface'
