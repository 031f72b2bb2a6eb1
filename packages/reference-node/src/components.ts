import type { Clock, Logger, SignatureVerifier, Signer, Transport } from '@kos-mesh/interface'
import type { Identity } from '@kos-mesh/did-security'
import type { Router } from '@kos-mesh/klp-router'
import type { AgentRegistry } from '@kos-mesh/agents'
import type { NodeStore } from './storage/memory.js'
import type { TrustGraphEngine, TrustService } from '@kos-mesh/trust'
import type { PersistentTrustStore } from './trust.js'

/** What the node hands to every service factory. Services are added under their own names. */
export interface NodeComponents {
  identity: Identity
  signer: Signer
  signatureVerifier: SignatureVerifier
  router: Router
  transports: Transport[]
  storage: NodeStore
  /** The operator's anchors (persisted trust decisions). */
  trustStore: PersistentTrustStore
  /** The web-of-trust engine (the router's TrustEngine). */
  trustEngine: TrustGraphEngine
  /** The trust service (signs, verifies, persists and floods statements). */
  trustService: TrustService
  agents: AgentRegistry
  logger: Logger
  clock: Clock
  /** Node settings services may read (authority, node type, ...). */
  nodeInfo: NodeInfo
  [service: string]: unknown
}

/** What services may read of the node they run in (the `nodeInfo` component), fixed at `start()`. */
export interface NodeInfo {
  /** The node's KLP authority (`node-a.mesh.kai`). */
  readonly authority: string
  /** The node's DID. */
  readonly did: string
  /** The spec node type it publishes: PeerNode, GatewayNode, ArchiveNode or ValidatorNode. */
  readonly nodeType: string
}

/** Names of the components the node itself provides. */
export const BUILTIN_COMPONENTS: readonly string[] = Object.freeze([
  'identity',
  'signer',
  'signatureVerifier',
  'router',
  'transports',
  'storage',
  'trustStore',
  'trustEngine',
  'trustService',
  'agents',
  'logger',
  'clock',
  'nodeInfo',
])

/**
 * A service factory. It is called at `start()`, after the services it `requires`; `requires`
 * names built-in components or other services and is checked by `createNode()` (a missing name
 * throws MissingServiceDependencyError naming the service and the component).
 */
export interface NodeService<S = unknown> {
  (components: NodeComponents): S
  readonly requires?: readonly string[]
}

/** Declares a service factory with the components it needs. */
export function defineService<S>(requires: readonly string[], factory: (components: NodeComponents) => S): NodeService<S> {
  return Object.assign((c: NodeComponents) => factory(c), { requires: Object.freeze([...requires]) })
}
