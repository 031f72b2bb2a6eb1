/**
 * The node dashboard on the control API. The page (`GET /dashboard` and its script and style
 * sheet) holds no data and is served without the token; the data is behind the control API's
 * bearer token like every other endpoint: `GET /v1/dashboard` (one `DashboardSnapshot`) and
 * `GET /v1/dashboard/events` (server-sent events: a `snapshot` event at once, after every sample
 * and shortly after a peer connects or leaves). The page reads the token from its URL's fragment
 * (`/dashboard#token=...`, never sent to the server) and sends it as a header, reading the
 * stream with fetch. Traffic is sampled on the injected clock into a bounded ring.
 */
import type { ServerResponse } from 'node:http'
import type { Clock, TimerHandle } from '@kos-mesh/interface'
import type { KosMeshNode } from '../node-types.js'
import { loadAssets, type Asset } from './assets.js'
import { TrafficRing } from './samples.js'
import { dashboardSnapshot, type DashboardSection, type DashboardSnapshot } from './snapshot.js'
import { EventStreams, frameEvent, type EventStreamStats } from './stream.js'

export { TrafficRing, MAX_REASONS_PER_SAMPLE, type TrafficSample, type TrafficCounters } from './samples.js'
export { EventStreams, frameEvent, type EventStreamsInit, type EventStreamStats } from './stream.js'
export { dashboardSnapshot, meshGraph, trustPanel, CORE_SECTIONS, MAX_GRAPH_NODES, MAX_TRUST_STATEMENTS } from './snapshot.js'
export type { DashboardSnapshot, DashboardSection, GraphNode, GraphLink, GraphNodeState, TrustEdge, TrustPanel, TrafficPanel, DiscoveryPanel, ServiceHealth } from './snapshot.js'

/** Path of the page. */
export const DASHBOARD_PATH = '/dashboard'
/** Path of the JSON snapshot (token required). */
export const DASHBOARD_SNAPSHOT_PATH = '/v1/dashboard'
/** Path of the event stream (token required). */
export const DASHBOARD_EVENTS_PATH = '/v1/dashboard/events'

/** Options of the dashboard. */
export interface DashboardInit {
  /** Time between traffic samples (and stream updates), ms. Default 1000. */
  sampleIntervalMs?: number
  /** Samples kept (the ring's bound). Default 300 (5 minutes at the default interval). */
  maxSamples?: number
  /** Event-stream readers at once. Default 8. */
  maxClients?: number
  /** Bytes queued for one reader before it is dropped. Default 1 MiB. */
  maxQueueBytes?: number
  /** Delay of the update sent after a peer connects or leaves, ms. Default 100. */
  peerEventDelayMs?: number
  /** Further panels (agents and migrations, vector collections, ...), each listed in `sections` when it has data. */
  sections?: DashboardSection[]
}

/** The dashboard of one node, as the control server uses it. */
export interface Dashboard {
  /** Answers the page's static files (no token needed); resolves false for any other path. */
  serveStatic(method: string, path: string, res: ServerResponse): Promise<boolean>
  /** Answers the snapshot and the event stream (call it after the token was checked); false for any other path. */
  handle(method: string, path: string, res: ServerResponse): boolean
  /** The snapshot now. */
  snapshot(): DashboardSnapshot
  stats(): EventStreamStats & { samples: number }
  /** Stops sampling and ends the streams. */
  close(): void
}

/** Headers of the page: no data leaves it for anywhere but this server, and no referrer carries its URL. */
const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** Starts sampling the node's traffic and returns the dashboard's request handlers. */
export function createDashboard(node: KosMeshNode, clock: Clock, init: DashboardInit = {}): Dashboard {
  const intervalMs = init.sampleIntervalMs ?? 1000
  const peerDelayMs = init.peerEventDelayMs ?? 100
  if (!(intervalMs >= 10)) throw new RangeError(`expected sampleIntervalMs >= 10, got ${intervalMs}`)
  const ring = new TrafficRing(init.maxSamples ?? 300)
  const streams = new EventStreams({ maxClients: init.maxClients ?? 8, maxQueueBytes: init.maxQueueBytes ?? 1024 * 1024 })
  const sections = init.sections ?? []
  const listening = new AbortController()
  let assets: Promise<Map<string, Asset>> | undefined
  let timer: TimerHandle | undefined
  let soonTimer: TimerHandle | undefined
  let closed = false
  let attached = false

  const snapshot = (): DashboardSnapshot => dashboardSnapshot(node, ring, intervalMs, clock.now(), sections)
  const push = (): void => {
    if (closed || !node.isStarted() || streams.stats().clients === 0) return
    streams.send('snapshot', JSON.stringify(snapshot()))
  }
  const soon = (): void => {
    if (closed || soonTimer !== undefined) return
    soonTimer = clock.setTimeout(() => {
      soonTimer = undefined
      push()
    }, peerDelayMs)
  }
  const attach = (): void => {
    if (attached || !node.isStarted()) return
    attached = true
    const opts = { signal: listening.signal }
    node.router.addEventListener('peer:connect', soon, opts)
    node.router.addEventListener('peer:identify', soon, opts)
    node.router.addEventListener('peer:disconnect', soon, opts)
  }
  const tick = (): void => {
    timer = undefined
    if (closed) return
    if (node.isStarted()) {
      attach()
      ring.add(clock.now(), node.router.metrics())
      push()
    }
    timer = clock.setTimeout(tick, intervalMs)
  }
  tick()

  return {
    async serveStatic(method, path, res) {
      const name = path === DASHBOARD_PATH || path === `${DASHBOARD_PATH}/` ? 'index.html' : path.startsWith(`${DASHBOARD_PATH}/`) ? path.slice(DASHBOARD_PATH.length + 1) : undefined
      if (name === undefined) return false
      assets ??= loadAssets()
      const asset = (await assets).get(name)
      if (asset === undefined) return false
      if (method !== 'GET' && method !== 'HEAD') {
        sendJson(res, 405, { error: { code: 'ERR_METHOD_NOT_ALLOWED', message: `expected GET, got ${method}` } })
        return true
      }
      res.writeHead(200, { ...PAGE_HEADERS, 'content-type': asset.type, 'content-length': asset.body.byteLength })
      res.end(method === 'HEAD' ? undefined : asset.body)
      return true
    },
    handle(method, path, res) {
      if (method !== 'GET' || (path !== DASHBOARD_SNAPSHOT_PATH && path !== DASHBOARD_EVENTS_PATH)) return false
      attach()
      if (path === DASHBOARD_SNAPSHOT_PATH) {
        sendJson(res, 200, snapshot())
        return true
      }
      if (!streams.hasRoom()) {
        streams.open(res) // counts the refusal
        sendJson(res, 503, { error: { code: 'ERR_TOO_MANY_STREAMS', message: `expected at most ${init.maxClients ?? 8} dashboard streams, got one more` } })
        return true
      }
      streams.open(res, frameEvent('snapshot', JSON.stringify(snapshot())))
      return true
    },
    snapshot,
    stats: () => ({ ...streams.stats(), samples: ring.size }),
    close() {
      closed = true
      listening.abort()
      clock.clearTimeout(timer)
      clock.clearTimeout(soonTimer)
      streams.close()
    },
  }
}
