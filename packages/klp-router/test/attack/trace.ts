/**
 * Where an honest request's time goes inside the target (benchmarks only): wall-clock stamps
 * (performance.timeOrigin + now, comparable with the honest child's stamps) when the target's read
 * loop gets the request's frame, when its signature check starts and ends, when its handler starts
 * and returns, and when the response is handed to the connection; plus the target's GC pauses and
 * event-loop delay during a measurement. The honest peer is matched by its DID.
 */
import { PerformanceObserver, monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { Connection, Listener, SignatureVerifier, Transport } from '@kos-mesh/interface'
import { decodeMessage } from '@kos-mesh/klp-codec'
import { ENVELOPE_HEADER_BYTES, EnvelopeKind } from '../../src/envelope.js'

const wall = (): number => performance.timeOrigin + performance.now()

export interface Stamps {
  read?: number
  verify0?: number
  verify1?: number
  handler0?: number
  handler1?: number
  send?: number
}

export class Tracer {
  /** DIDs whose messages are stamped. */
  readonly watched = new Set<string>()
  /** The next accepted connection's DID is watched (the honest peer connects first). */
  watchNext = true
  readonly stamps = new Map<string, Stamps>()
  private current: string | undefined
  private gcMs = 0
  private gcMax = 0
  private gcCount = 0
  private hist: IntervalHistogram | undefined
  private cpu0: NodeJS.CpuUsage | undefined
  private wall0 = 0
  private readonly obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      this.gcMs += e.duration
      this.gcCount++
      this.gcMax = Math.max(this.gcMax, e.duration)
    }
  })

  private stamp(id: string, k: keyof Stamps): void {
    let s = this.stamps.get(id)
    if (s === undefined) this.stamps.set(id, (s = {}))
    s[k] ??= wall()
  }

  /** Starts counting GC pauses and the event-loop delay. */
  begin(): void {
    this.gcMs = this.gcMax = this.gcCount = 0
    this.obs.observe({ entryTypes: ['gc'] })
    this.hist = monitorEventLoopDelay({ resolution: 1 })
    this.hist.enable()
    this.cpu0 = process.cpuUsage()
    this.wall0 = performance.now()
  }

  /** GC pauses and event-loop delay since `begin()`. */
  end(): { gcMs: number; gcMax: number; gcCount: number; loopP50: number; loopP99: number; loopMax: number; cpu: number } {
    this.obs.disconnect()
    const h = this.hist!
    h.disable()
    const c = process.cpuUsage(this.cpu0)
    const cpu = (c.user + c.system) / 1000 / (performance.now() - this.wall0)
    return { cpu, gcMs: this.gcMs, gcMax: this.gcMax, gcCount: this.gcCount, loopP50: h.percentile(50) / 1e6, loopP99: h.percentile(99) / 1e6, loopMax: h.max / 1e6 }
  }

  /** Marks a watched message's handler start / return (call from the handler). */
  handler(id: string, from: string, phase: 0 | 1): void {
    if (!this.watched.has(from)) return
    this.stamp(id, phase === 0 ? 'handler0' : 'handler1')
  }

  verifier(inner: SignatureVerifier): SignatureVerifier {
    return {
      verifySignature: async (keyId, data, sig, options) => {
        const did = keyId.split('#')[0]!
        const id = this.watched.has(did) ? this.current : undefined
        if (id !== undefined) this.stamp(id, 'verify0')
        const ok = await inner.verifySignature(keyId, data, sig, options)
        if (id !== undefined) this.stamp(id, 'verify1')
        return ok
      },
    }
  }

  transport(inner: Transport): Transport {
    return {
      name: inner.name,
      canDial: (a) => inner.canDial(a),
      dial: (a, o) => inner.dial(a, o),
      close: () => inner.close(),
      listen: async (addr, handler): Promise<Listener> => inner.listen(addr, (conn) => handler(this.wrap(conn))),
    }
  }

  private wrap(conn: Connection): Connection {
    if (this.watchNext) {
      this.watchNext = false
      this.watched.add(conn.remotePeer)
    }
    if (!this.watched.has(conn.remotePeer)) return conn
    const tracer = this
    const idOf = (frame: Uint8Array): { id: string; corr: string | undefined } | undefined => {
      if (frame[2] !== EnvelopeKind.MESSAGE) return undefined
      try {
        const m = decodeMessage(frame.subarray(ENVELOPE_HEADER_BYTES))
        return { id: m.metadata.message_id, corr: m.metadata.correlation_id }
      } catch {
        return undefined
      }
    }
    return new Proxy(conn, {
      get(target, prop) {
        if (prop === Symbol.asyncIterator) {
          return () => {
            const it = target[Symbol.asyncIterator]()
            return {
              next: async () => {
                const r = await it.next()
                if (r.done !== true) {
                  const m = idOf(r.value)
                  if (m !== undefined && m.corr === undefined) {
                    tracer.current = m.id
                    tracer.stamp(m.id, 'read')
                  }
                }
                return r
              },
              return: it.return?.bind(it),
            }
          }
        }
        if (prop === 'send') {
          return (frame: Uint8Array, o?: { signal?: AbortSignal }) => {
            const m = idOf(frame)
            if (m?.corr !== undefined) tracer.stamp(m.corr, 'send')
            return target.send(frame, o)
          }
        }
        const v = Reflect.get(target, prop, target) as unknown
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
  }
}

/** Segments of each traced request (ms), from the client's send/answer stamps and the target's. */
export function segments(trace: Array<[string, number, number]>, stamps: Map<string, Stamps>): Record<string, number[]> {
  const out: Record<string, number[]> = { 'client->read': [], 'read->verify': [], verify: [], 'verify->handler': [], handler: [], 'handler->send': [], 'send->client': [], total: [] }
  for (const [id, t0, t1] of trace) {
    const s = stamps.get(id)
    if (s?.read === undefined || s.verify0 === undefined || s.verify1 === undefined || s.handler0 === undefined || s.handler1 === undefined || s.send === undefined) continue
    out['client->read']!.push(s.read - t0)
    out['read->verify']!.push(s.verify0 - s.read)
    out.verify!.push(s.verify1 - s.verify0)
    out['verify->handler']!.push(s.handler0 - s.verify1)
    out.handler!.push(s.handler1 - s.handler0)
    out['handler->send']!.push(s.send - s.handler1)
    out['send->client']!.push(t1 - s.send)
    out.total!.push(t1 - t0)
  }
  return out
}
