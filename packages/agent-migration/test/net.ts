/** A virtual-time testnet with the migration service on every node. */
import { AgentRegistry } from '@kos-mesh/agents'
import type { KeyValueStore } from '@kos-mesh/interface'
import { bulkTransfer, type BulkTransfer } from '@kos-mesh/klp-router'
import { createTestnet, type Testnet } from '@kos-mesh/klp-router/testnet'
import { KLPMessageType } from '@kos-mesh/interface'
import { agentMigration, type AgentMigrationComponents, type AgentMigrationInit, type AgentMigrationService } from '../src/service.js'
import { memoryKeyValueStore } from '../src/store.js'

export interface MNode {
  did: string
  authority: string
  svc: AgentMigrationService
  registry: AgentRegistry
  store: KeyValueStore
  bulk: BulkTransfer
  observed: Array<[string, string]>
  /** Replaces the service with a fresh one over `store` (a restart: nothing kept in memory). */
  restart(store?: KeyValueStore): Promise<void>
  /** A restart with other components (e.g. a real trust engine). */
  restartWith(c: Partial<AgentMigrationComponents>): Promise<void>
}

export interface MNet {
  net: Testnet
  nodes: MNode[]
  drive<T>(p: Promise<T>, timeoutMs?: number): Promise<T>
  stop(): Promise<void>
}

export async function migrationNet(n: number, init: (i: number) => AgentMigrationInit = () => ({}), seed = 1): Promise<MNet> {
  const net = await createTestnet(n, { time: 'virtual', seed, link: { latencyMs: 5 } })
  const clock = net.network.clock
  const nodes: MNode[] = []
  for (const [i, t] of net.nodes.entries()) {
    const registry = new AgentRegistry(t.authority, t.did)
    const bulk = bulkTransfer({ type: KLPMessageType.AGENT_MIGRATION })({ router: t.router, clock })
    bulk.start()
    const observed: Array<[string, string]> = []
    let extra: Partial<AgentMigrationComponents> = {}
    const make = (store: KeyValueStore): AgentMigrationService => agentMigration({ recoveryIntervalMs: 1000, requestTimeoutMs: 2000, prepareTimeoutMs: 20_000, ...init(i) })({ router: t.router, identity: t.identity, store, clock, registry, bulk, trust: { observe: (s, o) => observed.push([s, o]) }, ...extra })
    const node: MNode = {
      did: t.did, authority: t.authority, registry, bulk, observed, store: memoryKeyValueStore(),
      svc: undefined as unknown as AgentMigrationService,
      async restart(store = node.store) {
        await node.svc.stop()
        node.store = store
        node.svc = make(store)
        await net.drive(Promise.resolve(node.svc.start()))
      },
      async restartWith(c) {
        extra = c
        await node.restart()
      },
    }
    node.svc = make(node.store)
    await net.drive(Promise.resolve(node.svc.start()))
    nodes.push(node)
  }
  return {
    net, nodes,
    drive: (p, timeoutMs = 120_000) => net.drive(p, { timeoutMs }),
    async stop() {
      for (const x of nodes) { await x.svc.stop(); await x.bulk.stop() }
      await net.stop()
    },
  }
}
