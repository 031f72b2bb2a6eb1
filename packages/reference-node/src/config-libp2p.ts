/**
 * The `transport` and `libp2p` keys of the node configuration: which transport the node runs
 * (`tcp`, the default, or `libp2p`), the libp2p listen multiaddrs and the options passed through to
 * @kos-mesh/transport-libp2p's `libp2pTransport(init)`.
 */
import type { Libp2pTransportInit } from '@kos-mesh/transport-libp2p'
import { isUnspecifiedLibp2pHost, LIBP2P_SCHEME, parseLibp2pAddress } from './addresses.js'
import { isObj, noExtra } from './config-check.js'
import { InvalidConfigError } from './errors.js'

/** The transports a configured node can run. */
export const TRANSPORT_KINDS = ['tcp', 'libp2p'] as const
export type TransportKind = (typeof TRANSPORT_KINDS)[number]

/** Numeric options of `libp2pTransport(init)` the config passes through, with their bounds. */
export const LIBP2P_CONFIG_NUMBERS = {
  maxFrameSize: [1, 0xffffffff - 1025],
  maxInboundBufferBytes: [1, Number.MAX_SAFE_INTEGER],
  maxOutboundBufferBytes: [1, Number.MAX_SAFE_INTEGER],
  sendStallTimeoutMs: [1, 2 ** 31 - 1],
  closeTimeoutMs: [1, 2 ** 31 - 1],
  dialTimeoutMs: [1, 2 ** 31 - 1],
  maxConnections: [1, 1_000_000],
  maxStreamsPerConnection: [1, 1_000_000],
  streamWindowBytes: [256 * 1024, 2 ** 31 - 1],
} as const satisfies Record<string, readonly [number, number]>

/** transport-libp2p's default maxFrameSize (for the maxOutboundBufferBytes check). */
const DEFAULT_MAX_FRAME_SIZE = 1024 * 1024

export type Libp2pConfigNumbers = { -readonly [K in keyof typeof LIBP2P_CONFIG_NUMBERS]?: number }

export interface Libp2pConfig extends Libp2pConfigNumbers {
  /**
   * Multiaddrs the node listens on with transport libp2p (`/ip4/0.0.0.0/tcp/4747`; port 0 = a
   * random port, new at every start).
   */
  listen: string[]
  /**
   * Multiaddrs the node announces instead of its listen addresses (identify, its record, the DHT):
   * the public address of a node behind a port forward, `/dns4/node.example.org/tcp/4747`. Default:
   * none (the listen addresses).
   */
  announce?: string[]
  /**
   * Circuit relay v2. `client` (default true): the circuit relay transport, so the node dials
   * `/p2p-circuit` addresses and reserves a slot on the relays named in `listen`
   * (`<relay multiaddr>/p2p/<relay PeerId>/p2p-circuit`). `server` (default false): the node runs a
   * circuit relay v2 server (a GATEWAY_NODE).
   */
  relay?: { client?: boolean; server?: boolean }
  /**
   * Run KLP on limited (relayed, with the relay's duration and data limits) connections too, bounded
   * by the relay's data limit (a frame that would pass it is refused). Default false: KLP waits for
   * a direct connection (DCUtR).
   */
  allowLimitedConnections?: boolean
  /** AutoNAT v2 (which of our addresses peers can dial; `kos-mesh status`' nat_type). Default true. */
  autonat?: boolean
  /** DCUtR (upgrade a relayed connection to a direct one). Default true. */
  dcutr?: boolean
  /**
   * libp2p kad-dht as a discovery source (`enabled`, default false): the node's signed record and its
   * capability providers are published there. `clientMode` (default: kad-dht's, server when public);
   * `bootstrap`: multiaddrs with `/p2p/<PeerId>` dialled at start.
   */
  dht?: { enabled: boolean; clientMode?: boolean; bootstrap?: string[] }
  /** gossipsub on the host (topic `/kos/broadcast/1.0.0`). Default false. */
  gossipsub?: boolean
}

/** The feature options of a `libp2p` config (relay, autonat, dcutr, dht, gossipsub). */
export type Libp2pFeatures = Pick<Libp2pConfig, 'relay' | 'autonat' | 'dcutr' | 'dht' | 'gossipsub'>

/** `libp2pTransport(init)` options plus the config's features (read by libp2p-services.ts). */
export type KosLibp2pInit = Libp2pTransportInit & { features?: Libp2pFeatures }

const FEATURE_KEYS = ['relay', 'autonat', 'dcutr', 'dht', 'gossipsub'] as const

/** A relay listen multiaddr: `<relay multiaddr>[/p2p/<relay PeerId>]/p2p-circuit` or `/p2p-circuit`. */
export function isCircuitListen(addr: string): boolean {
  return /\/p2p-circuit$/.test(addr)
}

function bool(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') throw new InvalidConfigError(`${where}: expected true or false, got ${JSON.stringify(v)}`)
  return v
}

function parseFeatures(v: Record<string, unknown>, out: Libp2pConfig): void {
  if (v.relay !== undefined) {
    const r = v.relay
    if (!isObj(r)) throw new InvalidConfigError(`libp2p.relay: expected an object { client, server }, got ${Array.isArray(r) ? 'array' : JSON.stringify(r)}`)
    noExtra('libp2p.relay', r, ['client', 'server'])
    out.relay = {
      ...(r.client === undefined ? {} : { client: bool(r.client, 'libp2p.relay.client') }),
      ...(r.server === undefined ? {} : { server: bool(r.server, 'libp2p.relay.server') }),
    }
  }
  for (const k of ['autonat', 'dcutr', 'gossipsub'] as const) if (v[k] !== undefined) out[k] = bool(v[k], `libp2p.${k}`)
  if (v.dht !== undefined) {
    const d = v.dht
    if (!isObj(d)) throw new InvalidConfigError(`libp2p.dht: expected an object { enabled, clientMode, bootstrap }, got ${Array.isArray(d) ? 'array' : JSON.stringify(d)}`)
    noExtra('libp2p.dht', d, ['enabled', 'clientMode', 'bootstrap'])
    const dht: NonNullable<Libp2pConfig['dht']> = { enabled: d.enabled === undefined ? false : bool(d.enabled, 'libp2p.dht.enabled') }
    if (d.clientMode !== undefined) dht.clientMode = bool(d.clientMode, 'libp2p.dht.clientMode')
    if (d.bootstrap !== undefined) {
      const b = d.bootstrap
      if (!Array.isArray(b) || b.length > 64) throw new InvalidConfigError(`libp2p.dht.bootstrap: expected a list of at most 64 multiaddrs, got ${Array.isArray(b) ? b.length : typeof b}`)
      dht.bootstrap = b.map((a, i) => {
        const where = `libp2p.dht.bootstrap[${i}]`
        if (typeof a !== 'string') throw new InvalidConfigError(`${where}: expected a multiaddr like /ip4/192.0.2.7/tcp/4747/p2p/12D3KooW..., got ${typeof a}`)
        const canon = checkLibp2pAddress(a, 'dial', where)
        const parsed = parseLibp2pAddress(canon)
        if (parsed.peerId === undefined) throw new InvalidConfigError(`${where}: expected a multiaddr with /p2p/<PeerId>, got ${JSON.stringify(a.slice(0, 120))}`)
        if (parsed.did !== undefined) throw new InvalidConfigError(`${where}: expected a multiaddr without a DID, got ${JSON.stringify(a.slice(0, 120))}`)
        return parsed.multiaddr as string
      })
    }
    out.dht = dht
  }
}

/**
 * Checks a libp2p address (`libp2p://<multiaddr>[/did:...]` or a bare multiaddr) for listening,
 * dialling or publishing, and returns it in the canonical `libp2p://` form. Throws
 * InvalidConfigError naming `where`.
 */
export function checkLibp2pAddress(addr: string, use: 'listen' | 'dial' | 'publish', where: string): string {
  const shown = JSON.stringify(addr.slice(0, 120))
  let a
  try {
    a = parseLibp2pAddress(addr)
  } catch (err) {
    throw new InvalidConfigError(`${where}: ${(err as Error).message}`, { cause: err })
  }
  if (use !== 'listen' && a.port === 0) throw new InvalidConfigError(`${where}: expected a port in 1..65535, got 0 in ${shown}`)
  if (use === 'publish' && isUnspecifiedLibp2pHost(a)) throw new InvalidConfigError(`${where}: expected a host other nodes can dial (a name or an IP address), got the unspecified address in ${shown}`)
  if (use !== 'dial' && a.did !== undefined) throw new InvalidConfigError(`${where}: expected a ${use} address without a DID (the DID is added from the node's identity), got ${shown}`)
  if (use === 'listen' && a.peerId !== undefined && !isCircuitListen(a.multiaddr ?? '')) throw new InvalidConfigError(`${where}: expected a listen multiaddr without /p2p/ (the PeerId is the node's identity), got ${shown}`)
  return `${LIBP2P_SCHEME}${a.multiaddr}${a.did === undefined ? '' : `/${a.did}`}`
}

/** A listen multiaddr as `libp2p.listen` keeps it: bare, `/ip4/0.0.0.0/tcp/4747`. */
export function libp2pListenMultiaddr(addr: string, where: string): string {
  return checkLibp2pAddress(addr, 'listen', where).slice(LIBP2P_SCHEME.length)
}

export function parseTransportKind(v: unknown, where = 'transport'): TransportKind {
  if (typeof v !== 'string' || !(TRANSPORT_KINDS as readonly string[]).includes(v)) throw new InvalidConfigError(`${where}: expected one of ${TRANSPORT_KINDS.join(', ')}, got ${JSON.stringify(v)}`)
  return v as TransportKind
}

/**
 * The `transport` setting: one transport (`"tcp"`, `"libp2p"`) or both (`["tcp", "libp2p"]`: the node
 * listens on `listen` and `libp2p.listen`, its record carries both kinds of addresses, and it dials
 * each peer with the transport of the peer's address).
 */
export type TransportSetting = TransportKind | TransportKind[]

/**
 * Parses `transport`: a kind, a list of distinct kinds (JSON), or `tcp,libp2p` (the CLI flag). One kind
 * is returned as a string (so a config with one transport stays as it was), two as a list.
 */
export function parseTransportSetting(v: unknown, where = 'transport'): TransportSetting {
  const items = Array.isArray(v) ? v : typeof v === 'string' && v.includes(',') ? v.split(',').map((x) => x.trim()) : [v]
  const expected = `one of ${TRANSPORT_KINDS.join(', ')} or a list of them like ["tcp", "libp2p"]`
  if (items.length === 0 || items.length > TRANSPORT_KINDS.length) throw new InvalidConfigError(`${where}: expected ${expected}, got ${JSON.stringify(v)}`)
  const kinds = items.map((x) => {
    if (typeof x !== 'string' || !(TRANSPORT_KINDS as readonly string[]).includes(x)) throw new InvalidConfigError(`${where}: expected ${expected}, got ${JSON.stringify(v)}`)
    return x as TransportKind
  })
  if (new Set(kinds).size !== kinds.length) throw new InvalidConfigError(`${where}: expected distinct transports, got ${JSON.stringify(v)}`)
  return kinds.length === 1 ? (kinds[0] as TransportKind) : kinds
}

/** The transports of a setting, `tcp` when absent. */
export function transportKinds(setting: TransportSetting | undefined): TransportKind[] {
  return setting === undefined ? ['tcp'] : Array.isArray(setting) ? [...setting] : [setting]
}

/** Validates the `libp2p` object of the config. */
export function parseLibp2pConfig(v: unknown): Libp2pConfig {
  if (!isObj(v)) throw new InvalidConfigError(`libp2p: expected an object, got ${Array.isArray(v) ? 'array' : typeof v}`)
  noExtra('libp2p', v, ['listen', 'announce', 'allowLimitedConnections', ...FEATURE_KEYS, ...Object.keys(LIBP2P_CONFIG_NUMBERS)])
  const listen = v.listen ?? []
  if (!Array.isArray(listen) || listen.length > 64) throw new InvalidConfigError(`libp2p.listen: expected a list of at most 64 multiaddrs, got ${Array.isArray(listen) ? listen.length : typeof listen}`)
  const out: Libp2pConfig = {
    listen: listen.map((a, i) => {
      if (typeof a !== 'string') throw new InvalidConfigError(`libp2p.listen[${i}]: expected a multiaddr like /ip4/0.0.0.0/tcp/4747, got ${typeof a}`)
      return libp2pListenMultiaddr(a, `libp2p.listen[${i}]`)
    }),
  }
  if (v.announce !== undefined) {
    const an = v.announce
    if (!Array.isArray(an) || an.length > 64) throw new InvalidConfigError(`libp2p.announce: expected a list of at most 64 multiaddrs, got ${Array.isArray(an) ? an.length : typeof an}`)
    out.announce = an.map((a, i) => {
      const where = `libp2p.announce[${i}]`
      if (typeof a !== 'string') throw new InvalidConfigError(`${where}: expected a multiaddr like /dns4/node.example.org/tcp/4747, got ${typeof a}`)
      const parsed = parseLibp2pAddress(checkLibp2pAddress(a, 'publish', where))
      if (parsed.peerId !== undefined) throw new InvalidConfigError(`${where}: expected a multiaddr without /p2p/ (the PeerId is the node's identity), got ${JSON.stringify(a.slice(0, 120))}`)
      return parsed.multiaddr as string
    })
  }
  if (v.allowLimitedConnections !== undefined) out.allowLimitedConnections = bool(v.allowLimitedConnections, 'libp2p.allowLimitedConnections')
  parseFeatures(v, out)
  if (out.relay?.client === false) {
    const i = out.listen.findIndex(isCircuitListen)
    if (i >= 0) throw new InvalidConfigError(`libp2p.listen[${i}]: expected no /p2p-circuit address with relay.client false, got ${JSON.stringify(out.listen[i])}`)
  }
  for (const [k, [min, max]] of Object.entries(LIBP2P_CONFIG_NUMBERS)) {
    const n = v[k]
    if (n === undefined) continue
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new InvalidConfigError(`libp2p.${k}: expected an integer in ${min}..${max}, got ${JSON.stringify(n)}`)
    out[k as keyof Libp2pConfigNumbers] = n
  }
  if (out.maxOutboundBufferBytes !== undefined && out.maxOutboundBufferBytes < (out.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE)) {
    throw new InvalidConfigError(`libp2p.maxOutboundBufferBytes: expected at least maxFrameSize (${out.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE}), got ${out.maxOutboundBufferBytes}`)
  }
  return out
}

/** The `libp2pTransport(init)` options of a `libp2p` config object (its numbers). */
export function libp2pInit(config: Libp2pConfig | undefined): KosLibp2pInit {
  const init: KosLibp2pInit = {}
  if (config === undefined) return init
  const features: Libp2pFeatures = {}
  for (const k of FEATURE_KEYS) if (config[k] !== undefined) (features as Record<string, unknown>)[k] = config[k]
  // always set: the defaults (relay client, autonat, dcutr) apply to every configured libp2p node
  init.features = features
  if (config.announce !== undefined && config.announce.length > 0) init.announce = [...config.announce]
  if (config.allowLimitedConnections === true) init.allowLimitedConnections = true
  for (const k of Object.keys(LIBP2P_CONFIG_NUMBERS) as Array<keyof Libp2pConfigNumbers>) {
    const n = config[k]
    if (n !== undefined) init[k] = n
  }
  return init
}
