/**
 * `NodeInit` as the node takes it: the checks `createNode()` makes before anything starts, the
 * default authority, and the node record published through discovery (type, capabilities,
 * `publish` addresses).
 */
import { createHash } from 'node:crypto'
import { InvalidParametersError, NodeType, type NetworkAddress, type NodeCapabilities } from '@kos-mesh/interface'
import { parseAddress } from '@kos-mesh/klp-codec'
import type { Identity } from '@kos-mesh/did-security'
import type { PeerDiscoveryInit } from '@kos-mesh/peer-discovery'
import { fromRecordAddress, toRecordAddress } from './addresses.js'
import { InvalidConfigError } from './errors.js'
import { isIdentitySource, type IdentitySource } from './identity.js'
import type { NodeInit } from './node-types.js'

const DEFAULT_CAPABILITIES: NodeCapabilities = {
  agent_hosting: false,
  vector_storage: false,
  relay_services: false,
  validation_services: false,
  archive_services: false,
  bandwidth_mbps: 0,
  storage_gb: 0,
  compute_units: 0,
}

/** The default authority of a DID: `n<12 hex>.mesh.kai`. */
export function defaultAuthority(did: string): string {
  return `n${createHash('sha256').update(did).digest('hex').slice(0, 12)}.mesh.kai`
}

function checkAuthority(authority: string): void {
  let a
  try {
    a = parseAddress(`klp://${authority}`)
  } catch (err) {
    throw new InvalidConfigError(`expected an authority like node-a.mesh.kai, got ${JSON.stringify(authority)}`, { cause: err })
  }
  if (a.authority !== authority) throw new InvalidConfigError(`expected a lower-case authority, got ${JSON.stringify(authority)}`)
}

/**
 * Checks `publish`, `authority`, `taskMinTrust` and `identity`; resolves with the identity, or
 * the source it loads from at start (neither: a new random identity at start).
 */
export function checkNodeInit(init: NodeInit): { identity?: Identity; identitySource?: IdentitySource } {
  if (init.publish !== undefined) {
    if (!Array.isArray(init.publish) || init.publish.some((a) => typeof a !== 'string' || toRecordAddress(a) === undefined || a.includes('/did:'))) {
      throw new InvalidConfigError(`expected publish to be transport addresses like tcp://203.0.113.7:4747 or libp2p:///ip4/203.0.113.7/tcp/4747 (no DID), got ${JSON.stringify(init.publish).slice(0, 200)}`)
    }
  }
  if (init.authority !== undefined) checkAuthority(init.authority)
  if (init.taskMinTrust !== undefined && !(typeof init.taskMinTrust === 'number' && init.taskMinTrust >= 0 && init.taskMinTrust <= 10)) {
    throw new InvalidConfigError(`expected taskMinTrust to be a number in 0..10, got ${String(init.taskMinTrust)}`)
  }
  if (init.identity === undefined) return {}
  if (isIdentitySource(init.identity)) return { identitySource: init.identity }
  if (typeof (init.identity as Identity).did === 'string' && typeof (init.identity as Identity).signer === 'object') return { identity: init.identity as Identity }
  throw new InvalidParametersError('expected identity to be a did-security Identity or an IdentitySource')
}

const LOOPBACK_MULTIADDR = /^\/(?:ip4\/127\.|ip6\/::1\/)/

/**
 * The record form of the router's addresses. A libp2p host listening on 0.0.0.0 reports one
 * address per interface, loopback included: a loopback libp2p address is left out when there is
 * another libp2p address (a remote peer dialling 127.0.0.1 would reach itself, not this node).
 */
function recordAddresses(addrs: readonly string[]): NetworkAddress[] {
  const out = addrs.map((a) => toRecordAddress(a)).filter((a) => a !== undefined)
  const remote = out.some((a) => a.protocol === 'libp2p' && !LOOPBACK_MULTIADDR.test(a.address))
  return remote ? out.filter((a) => !(a.protocol === 'libp2p' && LOOPBACK_MULTIADDR.test(a.address))) : out
}

/**
 * `init` with its discovery options completed by the node record it publishes: the node type,
 * the capabilities (over the defaults; `agent_hosting` follows the agents) and the `publish`
 * addresses; what `init.discovery.node` sets wins. Without `publish` (nor
 * `discovery.node.addresses`) the record carries the router's listen addresses as
 * `routerAddrs` gives them at signing time, libp2p ones included (`toRecordAddress`), and
 * discovery, the DHT and gossip turn record addresses back into transport addresses with
 * `fromRecordAddress` unless their init says otherwise.
 */
export function withNodeRecord(init: NodeInit, routerAddrs?: () => readonly string[]): NodeInit {
  const caps = { ...DEFAULT_CAPABILITIES, ...init.capabilities, agent_hosting: (init.agents?.length ?? 0) > 0 || init.capabilities?.agent_hosting === true, vector_storage: (init.vectors !== undefined && init.vectors !== false) || init.capabilities?.vector_storage === true }
  const published = (init.publish ?? []).map((a) => toRecordAddress(a, { is_public: true })).filter((a) => a !== undefined)
  const node: NonNullable<PeerDiscoveryInit['node']> = {
    node_type: init.nodeType ?? NodeType.PEER_NODE,
    ...(published.length > 0 ? { addresses: published } : {}),
    ...init.discovery?.node,
    capabilities: { ...caps, ...init.discovery?.node?.capabilities },
  }
  if (node.addresses === undefined && routerAddrs !== undefined) {
    // read whenever a record is signed (after the router listens); peer-discovery's own default
    // would drop the libp2p addresses, which it cannot convert
    Object.defineProperty(node, 'addresses', {
      get: () => recordAddresses(routerAddrs()),
      enumerable: true,
      configurable: true,
    })
  }
  const discovery: PeerDiscoveryInit = { toTransportAddress: fromRecordAddress, ...init.discovery, node }
  const withAddr = <T extends object>(o: T | false | undefined): T | false => (o === false ? false : ({ toTransportAddress: fromRecordAddress, ...o }) as T)
  return { ...init, discovery, dht: withAddr(init.dht), gossip: withAddr(init.gossip) }
}
