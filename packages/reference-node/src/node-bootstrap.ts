/**
 * Bootstrap (the spec's section VII): connect to the seeds, receive their peer tables, announce
 * the node's signed record and dial the best peers, through the discovery service (or, without
 * one, by dialing each seed); with its operator events, and the last result (`status.bootstrap`).
 */
import type { AbortOptions, Clock, PeerInfo } from '@kos-mesh/interface'
import type { Router } from '@kos-mesh/klp-router'
import type { BootstrapResult, PeerDiscovery } from '@kos-mesh/peer-discovery'
import type { EventLog } from './events.js'
import { errName, reasonOf } from './reasons.js'

/** What bootstrap reads of its node. */
export interface BootstrapContext {
  clock: Clock
  events: EventLog
  /** The node DID. */
  did(): string
  /** Dials a seed (`KosMeshNode.connect`). */
  connect(addr: string, options: AbortOptions): Promise<PeerInfo>
  /** Targets being redialled (reported when bootstrap fails). */
  redialing(): number
  warnNoPeers(): void
}

export class NodeBootstrap {
  /** The result of the last bootstrap that finished. */
  result: BootstrapResult | undefined

  constructor(private readonly c: BootstrapContext) {}

  /** Bootstraps from `seeds` on a started node (`discovery`: its discovery service, if any). */
  async bootstrap(router: Router, discovery: PeerDiscovery | undefined, seeds: string[], options: AbortOptions): Promise<BootstrapResult> {
    const events = this.c.events
    events.emit('bootstrap', 'info', 'bootstrap started', { seeds })
    try {
      await this.run(router, discovery, seeds, options)
    } catch (err) {
      const errors = (err as { errors?: Array<{ address: string; error: unknown }> }).errors
      events.emit('bootstrap', 'warn', 'bootstrap failed', {
        seeds: seeds.length,
        reason: reasonOf(errName(err)),
        ...(Array.isArray(errors) ? { errors: errors.map((e) => ({ seed: e.address, reason: reasonOf(errName(e.error)) })) } : {}),
        redialing: this.c.redialing(),
      })
      if (router.peers().length === 0) this.c.warnNoPeers()
      throw err
    }
    const r = this.result as BootstrapResult
    events.emit('bootstrap', 'info', 'bootstrap done', {
      seeds: seeds.length,
      reached: r.seeds_reached,
      discovered: r.discovered,
      peers: r.peer_connections,
      ...(r.errors.length > 0 ? { errors: r.errors.map((e) => ({ seed: e.address, reason: reasonOf(errName(e.error)) })) } : {}),
    })
    if (router.peers().length === 0) this.c.warnNoPeers()
    return r
  }

  private async run(router: Router, discovery: PeerDiscovery | undefined, seeds: string[], options: AbortOptions): Promise<void> {
    if (discovery === undefined) {
      const errors: BootstrapResult['errors'] = []
      let reached = 0
      for (const s of seeds) {
        try {
          await this.c.connect(s, options)
          reached++
        } catch (error) {
          errors.push({ address: s, error })
        }
      }
      this.result = {
        node_id: this.c.did(),
        peer_connections: router.peers().length,
        trust_mesh_joined: reached > 0,
        bootstrap_timestamp: this.c.clock.now(),
        status: reached > 0 ? 'completed' : 'failed',
        seeds_reached: reached,
        discovered: 0,
        errors,
      }
    } else {
      this.result = await discovery.bootstrap(seeds, options)
    }
  }
}
