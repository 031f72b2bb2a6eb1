/**
 * The `vectors` section of the node configuration file: absent (or `false`) leaves the vector
 * service off; an object turns it on (the node then advertises `vector_storage`) with the
 * collections created at every start and a few options of @kos-mesh/vector-mesh. The shape is
 * checked here; the collection configs are checked in full by vector-mesh when the node starts.
 */
import type { CollectionConfig, SyncStrategy } from '@kos-mesh/vector-mesh'
import { InvalidConfigError } from './errors.js'
import { isObj, noExtra } from './config-check.js'

/** Collections a config may declare. */
export const MAX_CONFIG_COLLECTIONS = 64
const STRATEGIES = ['push', 'pull', 'hybrid', 'gossip']
const COLLECTION_RE = /^[A-Za-z0-9._-]{1,64}$/
const COLLECTION_KEYS = ['name', 'dimensions', 'metric', 'quantization', 'connectivity', 'expansionAdd', 'expansionSearch', 'sharding', 'rangeBoundaries', 'centroids', 'probeShards']

/** `vectors` options a config file may set. */
export interface VectorsConfig {
  /** Collections created at every start (same config on every node of the collection). Default none. */
  collections?: CollectionConfig[]
  /** Sync strategies: push, pull, hybrid, gossip (default ["hybrid"]). */
  strategies?: SyncStrategy[]
  /** Pull / gossip period, ms; 0 = only `kos-mesh vectors sync` (default 30000). */
  syncIntervalMs?: number
  /** Trust score (0..10) a peer needs for its sync requests to be served (default 6). */
  minSyncTrust?: number
  /** Place shards on the discovered `vector_storage` nodes with the replication factor (default true); false: every node holds every shard. */
  placement?: boolean
  /** This node's region, for geographic sharding. */
  region?: string
}

const NUMBERS: Record<'syncIntervalMs' | 'minSyncTrust', [number, number, boolean]> = {
  syncIntervalMs: [0, 86_400_000, true],
  minSyncTrust: [0, 10, false],
}

function checkCollection(c: unknown, where: string): CollectionConfig {
  if (!isObj(c)) throw new InvalidConfigError(`${where}: expected a collection object, got ${Array.isArray(c) ? 'array' : typeof c}`)
  noExtra(where, c, COLLECTION_KEYS)
  if (typeof c.name !== 'string' || !COLLECTION_RE.test(c.name)) throw new InvalidConfigError(`${where}.name: expected 1..64 characters [A-Za-z0-9._-], got ${JSON.stringify(c.name)}`)
  if (typeof c.dimensions !== 'number' || !Number.isInteger(c.dimensions) || c.dimensions < 1 || c.dimensions > 4096) throw new InvalidConfigError(`${where}.dimensions: expected an integer in 1..4096, got ${JSON.stringify(c.dimensions)}`)
  if (c.sharding !== undefined && !isObj(c.sharding)) throw new InvalidConfigError(`${where}.sharding: expected an object, got ${typeof c.sharding}`)
  return structuredClone(c) as unknown as CollectionConfig
}

/** Checks `vectors` (`false` and absent: off). */
export function parseVectorsConfig(v: unknown, where = 'vectors'): VectorsConfig | false {
  if (v === false) return false
  if (!isObj(v)) throw new InvalidConfigError(`${where}: expected an object (or false), got ${Array.isArray(v) ? 'array' : typeof v}`)
  noExtra(where, v, ['collections', 'strategies', 'syncIntervalMs', 'minSyncTrust', 'placement', 'region'])
  const out: VectorsConfig = {}
  if (v.collections !== undefined) {
    if (!Array.isArray(v.collections) || v.collections.length > MAX_CONFIG_COLLECTIONS) throw new InvalidConfigError(`${where}.collections: expected a list of at most ${MAX_CONFIG_COLLECTIONS} collections, got ${Array.isArray(v.collections) ? v.collections.length : typeof v.collections}`)
    const list = v.collections.map((c, i) => checkCollection(c, `${where}.collections[${i}]`))
    const names = new Set(list.map((c) => c.name))
    if (names.size !== list.length) throw new InvalidConfigError(`${where}.collections: expected distinct names, got a name twice`)
    out.collections = list
  }
  if (v.strategies !== undefined) {
    if (!Array.isArray(v.strategies) || v.strategies.length === 0 || v.strategies.some((s) => typeof s !== 'string' || !STRATEGIES.includes(s))) throw new InvalidConfigError(`${where}.strategies: expected a non-empty list of ${STRATEGIES.join(', ')}, got ${JSON.stringify(v.strategies).slice(0, 80)}`)
    out.strategies = [...new Set(v.strategies as SyncStrategy[])]
  }
  for (const [k, [lo, hi, int]] of Object.entries(NUMBERS) as Array<[keyof typeof NUMBERS, [number, number, boolean]]>) {
    const n = v[k]
    if (n === undefined) continue
    if (typeof n !== 'number' || !Number.isFinite(n) || n < lo || n > hi || (int && !Number.isInteger(n))) throw new InvalidConfigError(`${where}.${k}: expected ${int ? 'an integer' : 'a number'} in ${lo}..${hi}, got ${JSON.stringify(n)}`)
    out[k] = n
  }
  if (v.placement !== undefined) {
    if (typeof v.placement !== 'boolean') throw new InvalidConfigError(`${where}.placement: expected a boolean, got ${typeof v.placement}`)
    out.placement = v.placement
  }
  if (v.region !== undefined) {
    if (typeof v.region !== 'string' || v.region.length < 1 || v.region.length > 64) throw new InvalidConfigError(`${where}.region: expected 1..64 characters, got ${JSON.stringify(v.region)}`)
    out.region = v.region
  }
  return out
}
