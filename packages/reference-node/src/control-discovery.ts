/**
 * The discovery endpoints of the control API: ranked peers through the DHT and gossip sources
 * (`POST /v1/discover`), DHT lookups of a node record (`GET /v1/dht/find`) and of providers
 * (`GET /v1/dht/providers`), broadcasts sent (`POST /v1/broadcast`) and received
 * (`GET /v1/broadcasts`).
 */
import type { KLPValue } from '@kos-mesh/interface'
import { CAPABILITY_FLAGS, MAX_PROVIDER_NAME_LENGTH } from '@kos-mesh/peer-discovery'
import { checkDid } from './did.js'
import { field, HttpError, intField, intParam } from './control-fields.js'
import type { KosMeshNode } from './node.js'

/** Most peers `POST /v1/discover` returns. */
export const MAX_DISCOVER_PEERS = 1024
/** Most capabilities one discover call may require. */
export const MAX_DISCOVER_CAPABILITIES = 16
/** Most hops of a gossip peer-list walk asked through the API. */
export const MAX_GOSSIP_HOPS = 16

type Route = (body: unknown, signal: AbortSignal) => Promise<unknown>

function capabilities(body: unknown): string[] | undefined {
  const v = (body as Record<string, unknown> | null)?.capabilities
  if (v === undefined) return undefined
  if (!Array.isArray(v) || v.length > MAX_DISCOVER_CAPABILITIES || v.some((c) => typeof c !== 'string' || !(CAPABILITY_FLAGS as readonly string[]).includes(c))) {
    throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "capabilities" to be a list of at most ${MAX_DISCOVER_CAPABILITIES} of ${CAPABILITY_FLAGS.join(', ')}, got ${JSON.stringify(v).slice(0, 120)}`)
  }
  return [...new Set(v as string[])]
}

function didQuery(query: unknown): string {
  const did = (query as Record<string, unknown>).did
  if (typeof did !== 'string' || did.length === 0) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', 'expected "did" to be a DID, got none')
  try {
    checkDid(did)
  } catch (err) {
    throw new HttpError(400, 'ERR_INVALID_DID', (err as Error).message)
  }
  return did
}

/** The discovery routes, keyed `METHOD /path` (GET routes get the query parameters as their body). */
export function discoveryRoutes(node: KosMeshNode): Record<string, Route> {
  return {
    'POST /v1/discover': async (body, signal) => {
      const caps = capabilities(body)
      const max = intField(body, 'max', 1, MAX_DISCOVER_PEERS)
      const hops = intField(body, 'hops', 1, MAX_GOSSIP_HOPS)
      const dht = field<boolean | undefined>(body, 'dht', 'boolean', true)
      const gossip = field<boolean | undefined>(body, 'gossip', 'boolean', true)
      return await node.mesh.discover(
        {
          ...(caps === undefined ? {} : { capabilities: caps }),
          ...(max === undefined ? {} : { max }),
          ...(hops === undefined ? {} : { hops }),
          ...(dht === undefined ? {} : { dht }),
          ...(gossip === undefined ? {} : { gossip }),
        },
        { signal },
      )
    },
    'GET /v1/dht/find': async (query, signal) => ({ record: await node.mesh.findNode(didQuery(query), { signal }) }),
    'GET /v1/dht/providers': async (query, signal) => {
      const name = (query as Record<string, unknown>).name
      if (typeof name !== 'string' || name.length === 0 || name.length > MAX_PROVIDER_NAME_LENGTH) {
        throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "name" to be a provider name of 1..${MAX_PROVIDER_NAME_LENGTH} characters like capability:vector_storage, got ${JSON.stringify(String(name ?? '')).slice(0, 80)}`)
      }
      const count = intParam(query, 'count', 1, MAX_DISCOVER_PEERS)
      return { name, providers: await node.mesh.findProviders(name, { signal, ...(count === undefined ? {} : { count }) }) }
    },
    'POST /v1/broadcast': async (body, signal) => {
      const b = body as Record<string, unknown> | null
      if (b === null || typeof b !== 'object' || !('data' in b)) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', 'expected "data" (any JSON value), got none')
      return { broadcast: await node.mesh.broadcast(b.data as KLPValue, { signal }) }
    },
    'GET /v1/broadcasts': async () => ({ broadcasts: node.mesh.broadcasts(), ...node.mesh.summary().broadcasts }),
  }
}
