/**
 * The discovery sections of the node configuration file: `dht` and `gossip` (`false` turns the
 * service off; an object of options, or nothing, keeps it on) and `discovery` (options of the
 * peer-table discovery service), and how they become the node's options.
 */
import type { DhtInit, GossipServiceInit, PeerDiscoveryInit } from '@kos-mesh/peer-discovery'
import { InvalidConfigError } from './errors.js'
import { isObj, noExtra } from './config-check.js'

/** `dht` options a config file may set. */
export interface DhtConfig {
  /** Bucket size and lookup result size (default 20). */
  k?: number
  /** Parallel requests per lookup path (default 3). */
  alpha?: number
  /** Disjoint lookup paths (default 4). */
  disjointPaths?: number
  /** Contacts of one network group (/24, /48; a loopback address is a group of its own) per bucket (default 2). */
  maxPerGroupPerBucket?: number
  /** One DHT request, dial included, ms (default 4000). */
  requestTimeoutMs?: number
  /** Maintenance period (providers pruned, stale buckets refreshed, table saved), ms; 0 = never (default 600000). */
  refreshIntervalMs?: number
  /** Names provided besides `capability:<flag>` of the node's capabilities (default none). */
  provide?: string[]
  /** Provide `capability:<flag>` for each true capability (default true). */
  provideCapabilities?: boolean
  /** Contacts saved in db/ at most (default 256). */
  maxStoredContacts?: number
}

/** `gossip` options a config file may set. */
export interface GossipConfig {
  /** Active view, the overlay's degree (default 8). */
  activeViewSize?: number
  /** Passive view (default 30). */
  passiveViewSize?: number
  /** Shuffle period, ms (default 10000). */
  shuffleIntervalMs?: number
  /** Hops of a peer-list walk unless the query says (default 3). */
  gossipHops?: number
  /** View check period, ms; 0 = never (default 5000). */
  repairIntervalMs?: number
}

/** `discovery` options a config file may set. */
export interface DiscoveryFileConfig {
  /** Connected peers to aim for; the best discovered peers are dialled up to it (default 8). */
  targetPeers?: number
  /** Dial discovered peers automatically (default true). */
  autoDial?: boolean
  /** Period of the peer-table refresh, ms; 0 = never (default 60000). */
  refreshIntervalMs?: number
  /** Period of re-announcing the node's record, ms; 0 = never (default 600000). */
  announceIntervalMs?: number
}

const DHT_INTS: Record<keyof Omit<DhtConfig, 'provide' | 'provideCapabilities'>, [number, number]> = {
  k: [1, 256],
  alpha: [1, 16],
  disjointPaths: [1, 16],
  maxPerGroupPerBucket: [1, 256],
  requestTimeoutMs: [1, 600_000],
  refreshIntervalMs: [0, 86_400_000],
  maxStoredContacts: [1, 65_536],
}
const GOSSIP_INTS: Record<keyof GossipConfig, [number, number]> = {
  activeViewSize: [1, 64],
  passiveViewSize: [1, 1024],
  shuffleIntervalMs: [1, 3_600_000],
  gossipHops: [1, 16],
  repairIntervalMs: [0, 3_600_000],
}
const DISCOVERY_INTS: Record<keyof Omit<DiscoveryFileConfig, 'autoDial'>, [number, number]> = {
  targetPeers: [0, 1024],
  refreshIntervalMs: [0, 86_400_000],
  announceIntervalMs: [0, 86_400_000],
}

function ints(where: string, v: Record<string, unknown>, spec: Record<string, [number, number]>, out: Record<string, unknown>): void {
  for (const [k, [min, max]] of Object.entries(spec)) {
    const n = v[k]
    if (n === undefined) continue
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new InvalidConfigError(`${where}.${k}: expected an integer in ${min}..${max}, got ${JSON.stringify(n)}`)
    out[k] = n
  }
}

function bool(where: string, v: Record<string, unknown>, key: string, out: Record<string, unknown>): void {
  if (v[key] === undefined) return
  if (typeof v[key] !== 'boolean') throw new InvalidConfigError(`${where}.${key}: expected a boolean, got ${typeof v[key]}`)
  out[key] = v[key]
}

function onOff(where: string, v: unknown): Record<string, unknown> | false {
  if (v === false) return false
  if (v === true) return {}
  if (!isObj(v)) throw new InvalidConfigError(`${where}: expected false (off) or an object of options, got ${Array.isArray(v) ? 'array' : typeof v}`)
  return v
}

/** Checks `dht`: false, or its options. */
export function parseDhtConfig(v: unknown, where = 'dht'): DhtConfig | false {
  const o = onOff(where, v)
  if (o === false) return false
  noExtra(where, o, [...Object.keys(DHT_INTS), 'provide', 'provideCapabilities'])
  const out: Record<string, unknown> = {}
  ints(where, o, DHT_INTS, out)
  bool(where, o, 'provideCapabilities', out)
  if (o.provide !== undefined) {
    const p = o.provide
    if (!Array.isArray(p) || p.length > 64 || p.some((x) => typeof x !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(x))) {
      throw new InvalidConfigError(`${where}.provide: expected a list of at most 64 names (printable, no spaces) like "agent:summarizer", got ${JSON.stringify(p).slice(0, 80)}`)
    }
    out.provide = [...new Set(p as string[])]
  }
  return out as DhtConfig
}

/** Checks `gossip`: false, or its options. */
export function parseGossipConfig(v: unknown, where = 'gossip'): GossipConfig | false {
  const o = onOff(where, v)
  if (o === false) return false
  noExtra(where, o, Object.keys(GOSSIP_INTS))
  const out: Record<string, unknown> = {}
  ints(where, o, GOSSIP_INTS, out)
  return out as GossipConfig
}

/** Checks `discovery`: its options. */
export function parseDiscoveryConfig(v: unknown, where = 'discovery'): DiscoveryFileConfig {
  if (!isObj(v)) throw new InvalidConfigError(`${where}: expected an object, got ${Array.isArray(v) ? 'array' : typeof v}`)
  noExtra(where, v, [...Object.keys(DISCOVERY_INTS), 'autoDial'])
  const out: Record<string, unknown> = {}
  ints(where, v, DISCOVERY_INTS, out)
  bool(where, v, 'autoDial', out)
  return out as DiscoveryFileConfig
}

/** The node options (`dht`, `gossip`, `discovery` of NodeInit) of the config's sections. */
export function discoveryInit(c: { dht?: DhtConfig | false; gossip?: GossipConfig | false; discovery?: DiscoveryFileConfig }): { dht: DhtInit | false; gossip: GossipServiceInit | false; discovery?: PeerDiscoveryInit } {
  let dht: DhtInit | false = {}
  if (c.dht === false) dht = false
  else if (c.dht !== undefined) {
    const { k, alpha, disjointPaths, maxPerGroupPerBucket, ...rest } = c.dht
    const kad = { ...(k === undefined ? {} : { k }), ...(alpha === undefined ? {} : { alpha }), ...(disjointPaths === undefined ? {} : { disjointPaths }), ...(maxPerGroupPerBucket === undefined ? {} : { maxPerGroupPerBucket }) }
    dht = { ...rest, ...(Object.keys(kad).length === 0 ? {} : { kad }) }
  }
  let gossip: GossipServiceInit | false = {}
  if (c.gossip === false) gossip = false
  else if (c.gossip !== undefined) {
    const { activeViewSize, passiveViewSize, shuffleIntervalMs, ...rest } = c.gossip
    const membership = { ...(activeViewSize === undefined ? {} : { activeViewSize }), ...(passiveViewSize === undefined ? {} : { passiveViewSize }), ...(shuffleIntervalMs === undefined ? {} : { shuffleIntervalMs }) }
    gossip = { ...rest, ...(Object.keys(membership).length === 0 ? {} : { membership }) }
  }
  return { dht, gossip, ...(c.discovery === undefined ? {} : { discovery: { ...c.discovery } }) }
}
