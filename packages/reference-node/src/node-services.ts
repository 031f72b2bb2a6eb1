/**
 * The node's service graph: the default service factories (`memory()` transports, `tasks`,
 * `discovery`; `dht` and `gossip` are in mesh-services.ts), their dependency order, and starting them at `start()`.
 */
import { InvalidParametersError, type Startable } from '@kos-mesh/interface'
import { peerDiscovery, type PeerDiscovery, type PeerDiscoveryInit } from '@kos-mesh/peer-discovery'
import { memoryTransport, type MemoryNetwork } from '@kos-mesh/transport-memory'
import { taskService as createTaskService, type AuthorityResolver, type TaskService, type TaskServiceInit } from '@kos-mesh/agents'
import { BUILTIN_COMPONENTS, defineService, type NodeComponents, type NodeService } from './components.js'
import { meshSources } from './mesh-services.js'
import { DuplicateServiceError, MissingServiceDependencyError, ServiceDependencyCycleError } from './errors.js'
import type { TransportFactory } from './node-types.js'

/** Steps that undo a start, run in reverse order at `stop()` (or when `start()` fails). */
export type UndoSteps = Array<() => Promise<void> | void>

/** The in-memory transport as a node transport factory (default network: the process-wide one). */
export function memory(init: { network?: MemoryNetwork; maxFrameSize?: number } = {}): TransportFactory {
  return ({ identity }) => memoryTransport({ peerId: identity.did, ...init })
}

/**
 * The task service factory (`services.tasks`), wrapping `@kos-mesh/agents`' `taskService` with the
 * node's components. Needs `router`, `agents` and `clock`; when the node runs discovery, a DID
 * target may also be resolved through the DID's signed node record. The node's trust engine
 * observes the outcome of each task it sends (`task_ok` / `task_failed`).
 */
export function taskService(init: TaskServiceInit = {}): NodeService<TaskService> {
  return defineService(['router', 'agents', 'clock'], (c) => {
    // discovery is optional and read lazily (services are added to `c` as they are created)
    const authorityResolver: AuthorityResolver = (did) => {
      const discovery = c.discovery as PeerDiscovery | undefined
      const authority = discovery?.registry?.get(did)?.record.address?.authority
      return typeof authority === 'string' && authority.length > 0 ? authority : undefined
    }
    // the trust engine hears how the DIDs that answered this node's tasks did (reputation deltas)
    return createTaskService(init)({ router: c.router, agents: c.agents, clock: c.clock, authorityResolver, trustObserver: c.trustEngine })
  })
}

/**
 * The discovery service factory (`services.discovery`), wrapping `@kos-mesh/peer-discovery`. Its
 * sources are `init.sources` and the node's DHT and gossip services (`services.dht`,
 * `services.gossip`, read when `discoverPeers` asks them with `use_dht` / `use_gossip`).
 */
export function discoveryService(init: PeerDiscoveryInit = {}): NodeService<PeerDiscovery> {
  // discovered peers are ranked by the node's trust engine
  return defineService(['router', 'signer', 'signatureVerifier', 'clock', 'logger', 'trustEngine'], (c) =>
    peerDiscovery({ ...init, sources: [...(init.sources ?? []), ...meshSources(c)] })({ router: c.router, signer: c.signer, signatureVerifier: c.signatureVerifier, trustEngine: c.trustEngine, clock: c.clock, logger: c.logger }),
  )
}

/** Orders services so that each comes after what it requires; checks every requirement exists. */
export function orderServices(services: Map<string, NodeService>): string[] {
  for (const name of services.keys()) {
    if (BUILTIN_COMPONENTS.includes(name)) throw new DuplicateServiceError(`expected a service name other than the built-in component "${name}", got it`)
  }
  for (const [name, svc] of services) {
    if (typeof svc !== 'function') throw new InvalidParametersError(`expected service "${name}" to be a factory function, got ${typeof svc}`)
    for (const dep of svc.requires ?? []) {
      if (!BUILTIN_COMPONENTS.includes(dep) && !services.has(dep)) throw new MissingServiceDependencyError(name, dep)
    }
  }
  const order: string[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (name: string, path: string[]): void => {
    const s = state.get(name)
    if (s === 'done') return
    if (s === 'visiting') throw new ServiceDependencyCycleError(`expected no dependency cycle between services, got ${[...path, name].join(' -> ')}`)
    state.set(name, 'visiting')
    for (const dep of services.get(name)?.requires ?? []) if (services.has(dep)) visit(dep, [...path, name])
    state.set(name, 'done')
    order.push(name)
  }
  for (const name of services.keys()) visit(name, [])
  return order
}

function isStartable(v: unknown): v is Startable {
  return v !== null && typeof v === 'object' && typeof (v as Startable).start === 'function' && typeof (v as Startable).stop === 'function'
}

/**
 * Creates and starts the services in `order`: each is added to `components` (what the next ones
 * see) and to `started`; a startable one is stopped by `undo`.
 */
export async function startServices(order: readonly string[], factories: ReadonlyMap<string, NodeService>, components: NodeComponents, started: Map<string, unknown>, undo: UndoSteps): Promise<void> {
  for (const name of order) {
    const factory = factories.get(name) as NodeService
    const svc = factory(components)
    components[name] = svc
    started.set(name, svc)
    if (isStartable(svc)) {
      await svc.start()
      undo.push(() => svc.stop())
    }
  }
}
