import type { AbortOptions, KeyValueStore } from '@kos-mesh/interface'
import { createSignatureVerifier } from '@kos-mesh/did-security'
import { createTestnet } from '@kos-mesh/klp-router/testnet'
import type { Testnet, TestnetNode, TestnetOptions } from '@kos-mesh/klp-router/testnet'
import { dhtService } from '../src/dht/index.js'
import type { DhtInit, DhtService } from '../src/dht/index.js'

export const signatureVerifier = createSignatureVerifier()

/** A KeyValueStore in a Map (keys in order for `query`). */
export class MapStore implements KeyValueStore {
  readonly map = new Map<string, Uint8Array>()
  async get(key: string): Promise<Uint8Array | undefined> { return this.map.get(key) }
  async put(key: string, value: Uint8Array): Promise<void> { this.map.set(key, value) }
  async delete(key: string): Promise<void> { this.map.delete(key) }
  async has(key: string): Promise<boolean> { return this.map.has(key) }
  async *query(prefix: string, options: AbortOptions & { limit?: number } = {}): AsyncIterable<{ key: string; value: Uint8Array }> {
    let n = 0
    for (const key of [...this.map.keys()].sort()) {
      if (!key.startsWith(prefix)) continue
      if (options.limit !== undefined && n++ >= options.limit) return
      yield { key, value: this.map.get(key)! }
    }
  }
}

export interface DhtMesh {
  net: Testnet
  dht: Array<DhtService | undefined>
  /** Starts node i's DHT service (replacing a stopped one). */
  startDht(i: number, init?: DhtInit, store?: KeyValueStore): Promise<DhtService>
  stop(): Promise<void>
}

/** A virtual-time testnet whose nodes run the DHT service (those `withDht` selects). */
export async function dhtMesh(n: number, o: { seed?: number; topology?: TestnetOptions['topology']; init?: (i: number) => DhtInit; withDht?: (i: number) => boolean } = {}): Promise<DhtMesh> {
  const net = await createTestnet(n, { time: 'virtual', seed: o.seed ?? 1, topology: o.topology ?? { random: 3 }, link: { latencyMs: 5 }, router: { requestTimeoutMs: 4000 } })
  const dht: Array<DhtService | undefined> = new Array(n).fill(undefined)
  const startDht = async (i: number, init: DhtInit = {}, store?: KeyValueStore): Promise<DhtService> => {
    const node = net.nodes[i] as TestnetNode
    const s = dhtService({ refreshIntervalMs: 0, ...o.init?.(i), ...init })({ router: node.router, signer: node.identity.signer, signatureVerifier, clock: net.network.clock, ...(store === undefined ? {} : { store }) })
    await s.start()
    dht[i] = s
    return s
  }
  for (let i = 0; i < n; i++) if (o.withDht?.(i) ?? true) await startDht(i)
  return {
    net,
    dht,
    startDht,
    stop: async () => {
      await Promise.allSettled(dht.map((s) => s?.stop()))
      await net.stop()
    },
  }
}

export function seedOf(net: Testnet, i = 0): { address: string; did: string } {
  const node = net.nodes[i] as TestnetNode
  return { address: node.address, did: node.did }
}
