/**
 * libp2p options for reachability: AutoNAT v2 (confirms which of our addresses peers can dial),
 * the circuit relay v2 transport (dial and listen through relays: a node behind a NAT reserves a slot
 * and is reachable at `<relay>/p2p-circuit/p2p/<us>`), DCUtR (upgrades a relayed connection to a
 * direct one), identify (observed addresses; required by the three) and our `reachability` tracker.
 * A GATEWAY_NODE adds the circuit relay v2 server (`relay: true`).
 */
import { autoNATv2, type AutoNATv2ServiceInit } from '@libp2p/autonat-v2'
import { circuitRelayServer, circuitRelayTransport, type CircuitRelayServerInit, type CircuitRelayTransportInit } from '@libp2p/circuit-relay-v2'
import { dcutr, type DCUtRServiceInit } from '@libp2p/dcutr'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import type { Libp2pOptions } from 'libp2p'
import { reachabilityTracker, type ReachabilityTrackerInit } from './tracker.js'

/**
 * Options of the circuit relay v2 server a GATEWAY_NODE runs ({@link relayServerOptions}): whether
 * relayed connections are limited, and the reservations it holds. Times in ms, data in bytes.
 */
export interface RelayServerInit {
  /**
   * Apply relay v2's default limits (2 minutes and 128 KiB per relayed connection). Default false: a
   * limited connection only carries protocols registered with `runOnLimitedConnection`, which KLP
   * is only where the transport has `allowLimitedConnections` (then bounded by the data limit), so
   * otherwise KLP through a limited relay waits for DCUtR. Set limits with `reservations` instead.
   */
  limited?: boolean
  /** Reservations held at once. Default 128. */
  maxReservations?: number
  /** Reservation lifetime in ms. Default 2 hours (relay v2's default). */
  reservationTtlMs?: number
  /** Longest relayed connection in ms when `limited`. */
  durationLimitMs?: number
  /** Most bytes per relayed connection when `limited`. */
  dataLimitBytes?: bigint
  /** Passed to `circuitRelayServer` over the above. */
  server?: CircuitRelayServerInit
}

/** Options of the circuit relay v2 server a GATEWAY_NODE runs. */
export function relayServerOptions(init: RelayServerInit = {}): CircuitRelayServerInit {
  return {
    maxInboundHopStreams: 256,
    maxOutboundStopStreams: 256,
    ...init.server,
    reservations: {
      maxReservations: init.maxReservations ?? 128,
      applyDefaultLimit: init.limited ?? false,
      ...(init.reservationTtlMs === undefined ? {} : { reservationTtl: init.reservationTtlMs }),
      ...(init.durationLimitMs === undefined ? {} : { defaultDurationLimit: init.durationLimitMs }),
      ...(init.dataLimitBytes === undefined ? {} : { defaultDataLimit: init.dataLimitBytes }),
      ...init.server?.reservations,
    },
  }
}

/**
 * Options of {@link reachabilityServices} and {@link reachabilityOptions}: which reachability
 * services the host runs (AutoNAT v2 and DCUtR by default, a relay server for a gateway) and their
 * settings.
 */
export interface ReachabilityInit {
  /** Run a circuit relay v2 server (a GATEWAY_NODE). `true` or its options. Default false. */
  relay?: boolean | RelayServerInit
  /** AutoNAT v2 options. `false` disables AutoNAT. */
  autonat?: AutoNATv2ServiceInit | false
  /** DCUtR options. `false` disables DCUtR. */
  dcutr?: DCUtRServiceInit | false
  /** Circuit relay transport options (dial/listen through relays). */
  relayTransport?: CircuitRelayTransportInit
  /** Observed-address tracker options. */
  tracker?: ReachabilityTrackerInit
}

/** Service names the helpers use on the host (`host.services[...]`). */
export const REACHABILITY_SERVICES = { autonat: 'autoNAT', dcutr: 'dcutr', relay: 'relay', tracker: 'reachability', identify: 'identify' } as const

/**
 * The `services` of a reachable host: identify, ping, AutoNAT v2, DCUtR, the reachability tracker and,
 * for a gateway, the relay server. Merge into your own `createLibp2p` services.
 */
export function reachabilityServices(init: ReachabilityInit = {}): NonNullable<Libp2pOptions['services']> {
  const services: Record<string, unknown> = {
    identify: identify(),
    ping: ping(),
    [REACHABILITY_SERVICES.tracker]: reachabilityTracker(init.tracker),
  }
  if (init.autonat !== false) services[REACHABILITY_SERVICES.autonat] = autoNATv2({ startupDelay: 0, ...init.autonat })
  if (init.dcutr !== false) services[REACHABILITY_SERVICES.dcutr] = dcutr(init.dcutr === undefined ? {} : init.dcutr)
  if (init.relay !== undefined && init.relay !== false) {
    services[REACHABILITY_SERVICES.relay] = circuitRelayServer(relayServerOptions(init.relay === true ? {} : init.relay))
  }
  return services as NonNullable<Libp2pOptions['services']>
}

/**
 * `libp2pOptions` for `libp2pTransport({ libp2pOptions })`: the transport's own transports (TCP,
 * WebSockets) plus the circuit relay transport, and `reachabilityServices(init)`. The transport keeps
 * its Noise/Yamux settings and the identity's key.
 */
export function reachabilityOptions(init: ReachabilityInit = {}): Omit<Libp2pOptions, 'privateKey'> {
  return {
    transports: [tcp(), webSockets(), circuitRelayTransport(init.relayTransport)],
    services: reachabilityServices(init),
  }
}
