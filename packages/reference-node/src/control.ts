/**
 * The control API: JSON over HTTP on 127.0.0.1, every request authenticated with a bearer token
 * kept in a 0600 file of the data directory. The CLI's `connect`, `peers`, `trust`, `untrust`,
 * `attest`, `revoke`, `reputation`, `discover`, `dht`, `broadcast`, `task`, `agent`, `vectors`, `status` and `stop`
 * use it (the trust endpoints are in control-trust.ts, the discovery ones in control-discovery.ts, the agent ones in control-agent.ts, the vector ones in control-vectors.ts) to talk to the node that `kos-mesh start` runs; `GET /metrics`
 * serves the node's metrics in the Prometheus text format (same token).
 */
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto'
import { createServer, request as httpRequest, type Server, type ServerResponse } from 'node:http'
import { readFile, rm } from 'node:fs/promises'
import { InvalidParametersError, isKosMeshError, systemClock, type AbortOptions, type Clock, type KLPMessage, type KLPValue, type Logger } from '@kos-mesh/interface'
import { errorOf } from '@kos-mesh/klp-router'
import { dataDirPaths, writeFileAtomic } from './config.js'
import { ControlApiError, NodeNotRunningError } from './errors.js'
import { silentLogger } from './logger.js'
import { PROMETHEUS_CONTENT_TYPE } from './metrics.js'
import { field, HttpError, intField, MAX_CONTROL_BODY_BYTES, readBody } from './control-fields.js'
import { trustRoutes } from './control-trust.js'
import { discoveryRoutes } from './control-discovery.js'
import { agentRoutes, bodyLimitOf } from './control-agent.js'
import { agentsSection } from './dashboard/agents.js'
import { vectorRoutes } from './control-vectors.js'
import { vectorsSection } from './dashboard/vectors.js'
import type { KosMeshNode } from './node.js'
import { createDashboard, type Dashboard, type DashboardInit } from './dashboard/index.js'

export { MAX_CONTROL_BODY_BYTES } from './control-fields.js'
/** Longest `timeoutMs` a task may ask for through the control API (10 minutes). */
export const MAX_TASK_TIMEOUT_MS = 600_000
/** Default time a CLI call waits for the control API, ms. */
export const DEFAULT_CONTROL_TIMEOUT_MS = 30_000

export interface ControlServerInit {
  node: KosMeshNode
  /** Port on 127.0.0.1; 0 = random. Default 0. */
  port?: number
  /** Bearer token. Default: 32 random bytes, base64url. */
  token?: string
  /** Called on `POST /v1/stop` after the answer was sent. */
  onStop?: () => void
  logger?: Logger
  /** The node's log file, reported by `GET /v1/status` (`logFile`). */
  logFile?: string
  /** Time reported by `GET /v1/status` (`time`, to read `nextAt` values against). Default `systemClock`. */
  clock?: Pick<Clock, 'now'>
  /**
   * The dashboard (`GET /dashboard`, its data at `/v1/dashboard` and `/v1/dashboard/events`; see
   * dashboard/index.ts), sampling on `clock` when it is a whole Clock, else on `systemClock`.
   * `false` turns it off. Default `{}` (on).
   */
  dashboard?: DashboardInit | false
}

/** What `GET /v1/status` reports of the router's counters (a summary of `GET /metrics`). */
export interface TrafficSummary {
  messagesIn: number
  messagesOut: number
  bytesIn: number
  bytesOut: number
  rejects: Record<string, number>
  pendingRequests: number
  queueDepth: number
  /** Resident memory of the node's process, bytes. */
  residentMemoryBytes: number
}

export interface ControlServer {
  readonly port: number
  readonly token: string
  /** The dashboard, unless turned off. */
  readonly dashboard?: Dashboard
  close(): Promise<void>
}

/** What `kos-mesh start` writes to `control.json`. */
export interface ControlInfo {
  pid: number
  host: string
  port: number
  did: string
  authority: string
  addrs: string[]
  startedAt: number
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** Maps a thrown error to an HTTP status and a JSON error. */
function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err
  const e = err as Error & { code?: string; reason?: string }
  const name = e?.name ?? 'Error'
  const message = isKosMeshError(err) ? e.message : 'internal error'
  if (name === 'RemoteRejectedError' || name === 'RequestDeferredError') {
    // the peer's own explanation, when its error response carries one
    const response = (err as { response?: unknown }).response
    const remote = response !== null && typeof response === 'object' && 'payload' in response ? errorOf(response as KLPMessage) : undefined
    const text = remote !== undefined && remote.message.length > 0 ? `rejected by the peer (${remote.code}): ${remote.message}` : message
    return new HttpError(502, e.code ?? 'ERR_REMOTE_REJECTED', text, e.reason)
  }
  if (/Timeout/.test(name)) return new HttpError(504, e.code ?? 'ERR_TIMEOUT', message)
  // the peer proved (or an authority is pinned to) another DID than the one asked for
  if (['PeerMismatchError', 'TargetConflictError', 'AuthorityConflictError'].includes(name)) return new HttpError(409, e.code ?? 'ERR_PEER_MISMATCH', message)
  if (['NoRouteError', 'NoTransportError', 'UnreachableError', 'ConnectionClosedError', 'UnknownPeerError'].includes(name) || e.code === 'ECONNREFUSED') {
    return new HttpError(504, e.code ?? 'ERR_UNREACHABLE', isKosMeshError(err) ? message : `could not reach the peer (${e.code ?? name})`)
  }
  // a DHT lookup found no verified record of the DID; the node does not run the service asked for
  if (name === 'NodeNotFoundError') return new HttpError(404, e.code ?? 'ERR_NODE_NOT_FOUND', message)
  if (name === 'ServiceOffError') return new HttpError(503, e.code ?? 'ERR_SERVICE_OFF', message)
  // this node's own DID is revoked: it signs nothing any more
  if (name === 'RevokedDidError') return new HttpError(409, e.code ?? 'ERR_REVOKED_DID', message)
  if (isKosMeshError(err) && err instanceof InvalidParametersError) return new HttpError(400, e.code ?? 'ERR_INVALID_PARAMETERS', message)
  if (isKosMeshError(err) && /Address|Decode|Invalid/.test(name)) return new HttpError(400, e.code ?? 'ERR_INVALID_PARAMETERS', message)
  return new HttpError(500, e?.code ?? 'ERR_INTERNAL', isKosMeshError(err) ? message : `internal error (${name})`)
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v))
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** Starts the control API on 127.0.0.1. */
export async function startControlServer(init: ControlServerInit): Promise<ControlServer> {
  const { node } = init
  const token = init.token ?? randomBytes(32).toString('base64url')
  const expected = digest(`Bearer ${token}`)
  const log = init.logger ?? silentLogger
  const clock = init.clock ?? systemClock
  const dashboard = init.dashboard === false ? undefined : createDashboard(node, 'setTimeout' in clock ? (clock as Clock) : systemClock, { ...init.dashboard, sections: [agentsSection(node), vectorsSection(node), ...(init.dashboard?.sections ?? [])] })
  const traffic = (): TrafficSummary => {
    const m = node.router.metrics()
    return {
      messagesIn: m.messagesIn,
      messagesOut: m.messagesOut,
      bytesIn: m.bytesIn,
      bytesOut: m.bytesOut,
      rejects: { ...m.rejects },
      pendingRequests: m.pendingRequests,
      queueDepth: m.queueDepth.total,
      residentMemoryBytes: process.memoryUsage.rss(),
    }
  }
  const routes: Record<string, (body: unknown, signal: AbortSignal) => Promise<unknown>> = {
    'GET /v1/status': async () => ({ ...node.status(), record: node.record() ?? null, traffic: traffic(), logFile: init.logFile ?? null, time: clock.now() }),
    'GET /v1/peers': async () => ({ peers: node.peers() }),
    'POST /v1/connect': async (body, signal) => {
      const address = field<string>(body, 'address', 'string')
      const info = await node.connect(address, { signal })
      return { connected: info }
    },
    ...trustRoutes(node),
    ...discoveryRoutes(node),
    ...agentRoutes(node),
    ...vectorRoutes(node),
    'POST /v1/task': async (body, signal) => {
      const target = field<string>(body, 'target', 'string')
      const capability = field<string>(body, 'capability', 'string')
      const params = field<Record<string, KLPValue> | undefined>(body, 'params', 'object', true)
      const timeoutMs = intField(body, 'timeoutMs', 1, MAX_TASK_TIMEOUT_MS)
      const input = (body as { input?: KLPValue }).input ?? null
      const result = await node.task(target, params === undefined ? { capability, input } : { capability, input, params }, {
        signal,
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      })
      return { task: result }
    },
    'POST /v1/stop': async () => {
      setImmediate(() => init.onStop?.()) // clock-exempt: after this response is written, not protocol time
      return { stopping: true }
    },
  }

  const server: Server = createServer((req, res) => {
    const controller = new AbortController()
    res.on('close', () => controller.abort())
    void (async () => {
      try {
        // the dashboard page holds no data: it is served without the token (its data is not)
        const path = (req.url ?? '/').split('?')[0] ?? '/'
        if (dashboard !== undefined && (await dashboard.serveStatic(req.method ?? 'GET', path, res))) return
        const auth = req.headers.authorization ?? ''
        const got = digest(auth)
        if (!timingSafeEqual(got, expected)) throw new HttpError(401, 'ERR_UNAUTHORIZED', 'expected a valid bearer token (see control.token in the data dir), got none or a wrong one')
        const key = `${req.method ?? 'GET'} ${(req.url ?? '/').split('?')[0] ?? '/'}`
        if (dashboard?.handle(req.method ?? 'GET', path, res) === true) return
        if (key === 'GET /metrics') {
          const text = node.metricsText()
          res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) })
          res.end(text)
          return
        }
        const route = routes[key]
        if (route === undefined) throw new HttpError(404, 'ERR_NOT_FOUND', `expected a known endpoint, got ${req.method ?? ''} ${req.url ?? ''}`)
        const body = req.method === 'POST' ? await readBody(req, bodyLimitOf(key)) : Object.fromEntries(new URL(req.url ?? '/', 'http://127.0.0.1').searchParams)
        send(res, 200, await route(body, controller.signal))
      } catch (err) {
        const h = toHttpError(err)
        if (h.status >= 500 && h.status !== 502 && h.status !== 504) log.warn('control request failed', { url: req.url, err })
        send(res, h.status, { error: { code: h.code, message: h.message, ...(h.reason === undefined ? {} : { reason: h.reason }) } })
      }
    })()
  })
  server.requestTimeout = 120_000
  server.headersTimeout = 10_000
  server.maxHeadersCount = 32
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => {
      dashboard?.close()
      reject(err)
    })
    server.listen(init.port ?? 0, '127.0.0.1', () => {
      server.removeAllListeners('error')
      resolve()
    })
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  return {
    port,
    token,
    ...(dashboard === undefined ? {} : { dashboard }),
    close: () =>
      new Promise<void>((resolve) => {
        dashboard?.close()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** Writes `control.json` and `control.token` (0600) for the CLI. */
export async function writeControlFiles(dataDir: string, info: ControlInfo, token: string): Promise<void> {
  const p = dataDirPaths(dataDir)
  await writeFileAtomic(p.token, token + '\n', 0o600)
  await writeFileAtomic(p.control, JSON.stringify(info, null, 2) + '\n', 0o600)
}

export async function removeControlFiles(dataDir: string): Promise<void> {
  const p = dataDirPaths(dataDir)
  await rm(p.control, { force: true })
  await rm(p.token, { force: true })
}

export interface ControlClient {
  readonly info: ControlInfo
  call<T = unknown>(method: 'GET' | 'POST', path: string, body?: unknown, options?: AbortOptions & { timeoutMs?: number }): Promise<T>
}

/** A client for the node running on `dataDir`. Throws NodeNotRunningError when there is none. */
export async function connectControl(dataDir: string): Promise<ControlClient> {
  const p = dataDirPaths(dataDir)
  let info: ControlInfo
  let token: string
  try {
    info = JSON.parse(await readFile(p.control, 'utf8')) as ControlInfo
    token = (await readFile(p.token, 'utf8')).trim()
  } catch {
    throw new NodeNotRunningError(`no node is running for ${p.root} (start one with \`kos-mesh start --data-dir ${p.root}\`)`)
  }
  if (typeof info.port !== 'number' || info.port <= 0 || info.port > 65535) throw new NodeNotRunningError(`no node is running for ${p.root} (control.json is damaged)`)
  const call = <T>(method: 'GET' | 'POST', path: string, body?: unknown, options: AbortOptions & { timeoutMs?: number } = {}): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body)
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: info.port,
          method,
          path,
          headers: { authorization: `Bearer ${token}`, ...(data === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }) },
          timeout: options.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        },
        (res) => {
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (c: Buffer) => {
            size += c.length
            if (size > 16 * MAX_CONTROL_BODY_BYTES) req.destroy(new ControlApiError('expected a smaller answer from the control API, got more than 16 MiB', 0))
            else chunks.push(c)
          })
          res.on('end', () => {
            let json: unknown
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8'))
            } catch {
              return reject(new ControlApiError(`expected JSON from the control API, got status ${res.statusCode ?? 0}`, res.statusCode ?? 0))
            }
            const status = res.statusCode ?? 0
            if (status >= 200 && status < 300) return resolve(json as T)
            const e = (json as { error?: { code?: string; message?: string; reason?: string } }).error ?? {}
            reject(new ControlApiError(e.message ?? `control API answered ${status}`, status, e.code, e.reason))
          })
          res.on('error', reject)
        },
      )
      req.on('timeout', () => req.destroy(new ControlApiError(`expected an answer from the node within ${options.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS} ms, got none`, 504, 'ERR_TIMEOUT')))
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET') reject(new NodeNotRunningError(`no node is running for ${p.root} (control port ${info.port} refused the connection)`, { cause: err }))
        else reject(err)
      })
      req.end(data)
    })
  return { info, call }
}
