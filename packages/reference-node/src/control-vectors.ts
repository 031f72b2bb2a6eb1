/**
 * The vector endpoints of the control API (the node's `vectors` service, node-vectors.ts): the
 * collections with their shards (`GET /v1/vectors`), a new collection (`POST /v1/vectors/create`),
 * this node's entries (`POST /v1/vectors/add`, at most MAX_ADD_ENTRIES a request: an import sends
 * batches), federated search (`POST /v1/vectors/search`), sync with the shards' other holders
 * (`POST /v1/vectors/sync`, its progress at `GET /v1/vectors/syncs`).
 */
import type { CollectionConfig } from '@kos-mesh/vector-mesh'
import { field, HttpError, intField } from './control-fields.js'
import type { KosMeshNode } from './node-types.js'
import { MAX_ADD_ENTRIES, type NodeVectors } from './node-vectors.js'
import { checkEntry, checkVector, type VectorEntry } from './vectors-input.js'

/** Largest k of a search through the API (vector-mesh's per-message bound). */
export const MAX_SEARCH_K = 1000
/** Longest search deadline, ms. */
export const MAX_SEARCH_DEADLINE_MS = 120_000
/** Most shards and replicas `create` takes (vector-mesh's bounds). */
export const MAX_CREATE_SHARDS = 1024
export const MAX_CREATE_REPLICAS = 16
/** Longest sync the API waits for, ms. */
export const SYNC_TIMEOUT_MS = 600_000

const COLLECTION_RE = /^[A-Za-z0-9._-]{1,64}$/
const PEER_RE = /^[A-Za-z0-9._:%-]{1,300}$/
const METRICS = ['cos', 'ip', 'l2sq']
const QUANTIZATIONS = ['f32', 'f16', 'i8']

type Route = (body: unknown, signal: AbortSignal) => Promise<unknown>

/** The node's vector service, or undefined when the node runs without it. */
export function vectorsOf(node: KosMeshNode): NodeVectors | undefined {
  try {
    return node.service<NodeVectors>('vectors')
  } catch {
    return undefined
  }
}

function service(node: KosMeshNode): NodeVectors {
  const v = vectorsOf(node)
  if (v === undefined) throw new HttpError(503, 'ERR_SERVICE_OFF', 'expected the node to run vector collections, got a node without them ("vectors" is not in config.json)', 'vectors')
  return v
}

function collectionName(body: unknown, name = 'collection'): string {
  const v = field<string>(body, name, 'string')
  if (!COLLECTION_RE.test(v)) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" to be 1..64 characters [A-Za-z0-9._-], got ${JSON.stringify(v.slice(0, 80))}`)
  return v
}

function oneOf(body: unknown, name: string, allowed: readonly string[]): string | undefined {
  const v = field<string | undefined>(body, name, 'string', true)
  if (v !== undefined && !allowed.includes(v)) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" to be one of ${allowed.join(', ')}, got ${JSON.stringify(v.slice(0, 40))}`)
  return v
}

function names(body: unknown, name: string, re: RegExp, max: number): string[] | undefined {
  const v = (body as Record<string, unknown> | null)?.[name]
  if (v === undefined) return undefined
  if (!Array.isArray(v) || v.length > max || v.some((x) => typeof x !== 'string' || !re.test(x))) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" to be a list of at most ${max} names, got ${JSON.stringify(v).slice(0, 120)}`)
  return [...new Set(v as string[])]
}

/** vector-mesh's errors as answers: an unknown collection 404, a bad collection or entry 400, too many syncs 429, a label collision 422. */
async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof HttpError) throw err
    const e = err as Error & { code?: string }
    if (e?.name === 'UnknownCollectionError') throw new HttpError(404, 'ERR_UNKNOWN_COLLECTION', e.message)
    if (e?.name === 'InvalidCollectionError' || e?.name === 'InvalidEntryError' || e?.name === 'InvalidVectorInputError') throw new HttpError(400, e.code ?? 'ERR_INVALID_PARAMETERS', e.message)
    if (e?.name === 'VectorTooLargeError') throw new HttpError(413, e.code ?? 'ERR_VECTOR_TOO_LARGE', e.message)
    if (e?.name === 'QueueFullError') throw new HttpError(429, 'ERR_BUSY', e.message)
    if (e?.name === 'LabelCollisionError') throw new HttpError(422, e.code ?? 'ERR_LABEL_COLLISION', e.message)
    throw err
  }
}

function entriesOf(body: unknown): VectorEntry[] {
  const list = (body as Record<string, unknown> | null)?.entries
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_ADD_ENTRIES) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "entries" to be a list of 1..${MAX_ADD_ENTRIES} entries, got ${Array.isArray(list) ? list.length : typeof list}`)
  return list.map((e, i) => {
    try {
      return checkEntry(e)
    } catch (err) {
      throw new HttpError(400, 'ERR_INVALID_VECTOR_INPUT', `entries[${i}]: ${(err as Error).message}`)
    }
  })
}

/** The collection config of a create body: name, dimensions, metric, quantization, hash sharding over `shards` with `replicas`. */
function createConfig(body: unknown): CollectionConfig {
  const name = collectionName(body, 'name')
  const dimensions = intField(body, 'dimensions', 1, 4096)
  if (dimensions === undefined) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', 'expected "dimensions" to be a decimal integer in 1..4096, got none')
  const metric = oneOf(body, 'metric', METRICS)
  const quantization = oneOf(body, 'quantization', QUANTIZATIONS)
  const shards = intField(body, 'shards', 1, MAX_CREATE_SHARDS) ?? 1
  const replicas = intField(body, 'replicas', 1, MAX_CREATE_REPLICAS) ?? 1
  return {
    name,
    dimensions,
    ...(metric === undefined ? {} : { metric: metric as 'cos' }),
    ...(quantization === undefined ? {} : { quantization: quantization as 'f32' }),
    sharding: { sharding_method: 'hash_based', shard_count: shards, replication_factor: replicas, locality_hints: [] },
  }
}

/** The vector routes, keyed `METHOD /path` (GET routes get the query parameters as their body). */
export function vectorRoutes(node: KosMeshNode): Record<string, Route> {
  return {
    'GET /v1/vectors': async () => await service(node).status(),
    'GET /v1/vectors/syncs': async () => {
      const v = service(node).view()
      return { syncs: v.syncs, recent: v.recent }
    },
    'POST /v1/vectors/create': async (body) => {
      const config = createConfig(body)
      const v = service(node)
      return { collection: await mapped(() => v.create(config)) }
    },
    'POST /v1/vectors/add': async (body) => {
      const collection = collectionName(body)
      const entries = entriesOf(body)
      const v = service(node)
      return { collection, ...(await mapped(() => v.add(collection, entries))) }
    },
    'POST /v1/vectors/search': async (body, signal) => {
      const collection = collectionName(body)
      let vector: number[]
      try {
        vector = checkVector((body as Record<string, unknown>).vector)
      } catch (err) {
        throw new HttpError(400, 'ERR_INVALID_VECTOR_INPUT', (err as Error).message)
      }
      const k = intField(body, 'k', 1, MAX_SEARCH_K) ?? 10
      const deadlineMs = intField(body, 'deadlineMs', 1, MAX_SEARCH_DEADLINE_MS)
      const v = service(node)
      const r = await mapped(() => v.search(collection, vector, { k, signal, ...(deadlineMs === undefined ? {} : { deadlineMs }) }))
      return { search: { collection, k, hits: r.hits, shards: r.shards, complete: r.complete } }
    },
    'POST /v1/vectors/sync': async (body, signal) => {
      const collections = names(body, 'collections', COLLECTION_RE, 64)
      const peers = names(body, 'peers', PEER_RE, 64)
      const v = service(node)
      return { sync: await mapped(() => v.sync({ signal, ...(collections === undefined ? {} : { collections }), ...(peers === undefined ? {} : { peers }) })) }
    },
  }
}
