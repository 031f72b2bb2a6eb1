/**
 * The dashboard's live stream: server-sent events to at most `maxClients` readers, each with a
 * send queue bounded in bytes. A reader whose queue would pass the bound (it stopped reading) is
 * dropped, never waited for, so a stuck browser tab costs at most `maxQueueBytes`.
 */
import type { ServerResponse } from 'node:http'

/** Bounds of the event stream. */
export interface EventStreamsInit {
  /** Most readers at once; one more is refused (503). */
  maxClients: number
  /** Most bytes queued for one reader before it is dropped. */
  maxQueueBytes: number
}

/** Counters of the stream, for tests and the operator. */
export interface EventStreamStats {
  clients: number
  opened: number
  refused: number
  /** Readers dropped because their queue passed the bound. */
  dropped: number
  eventsSent: number
}

/** The set of open event streams. */
export class EventStreams {
  private readonly clients = new Set<ServerResponse>()
  private readonly counters = { opened: 0, refused: 0, dropped: 0, eventsSent: 0 }

  constructor(private readonly init: EventStreamsInit) {
    if (!Number.isSafeInteger(init.maxClients) || init.maxClients < 1) throw new RangeError(`expected maxClients >= 1, got ${init.maxClients}`)
    if (!Number.isSafeInteger(init.maxQueueBytes) || init.maxQueueBytes < 1024) throw new RangeError(`expected maxQueueBytes >= 1024, got ${init.maxQueueBytes}`)
  }

  /** Room for another reader. */
  hasRoom(): boolean {
    return this.clients.size < this.init.maxClients
  }

  /**
   * Starts an event stream on `res` and sends it `first` (an already framed event) at once.
   * Returns false (and writes nothing) when the stream is full.
   */
  open(res: ServerResponse, first?: string): boolean {
    if (!this.hasRoom()) {
      this.counters.refused++
      return false
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    res.flushHeaders()
    this.clients.add(res)
    this.counters.opened++
    res.on('close', () => this.clients.delete(res))
    if (first !== undefined) this.write(res, first)
    return true
  }

  /** Sends one event (`event: <name>` with `data` on one line) to every reader. */
  send(event: string, data: string): void {
    if (this.clients.size === 0) return
    const frame = frameEvent(event, data)
    for (const res of this.clients) this.write(res, frame)
  }

  private write(res: ServerResponse, frame: string): void {
    if (res.destroyed || res.writableEnded) {
      this.clients.delete(res)
      return
    }
    if (res.writableLength + Buffer.byteLength(frame) > this.init.maxQueueBytes) {
      this.counters.dropped++
      this.clients.delete(res)
      res.destroy()
      return
    }
    res.write(frame)
    this.counters.eventsSent++
  }

  /** Ends every stream. */
  close(): void {
    for (const res of this.clients) res.end()
    this.clients.clear()
  }

  stats(): EventStreamStats {
    return { clients: this.clients.size, ...this.counters }
  }
}

/** One server-sent event; `data` must be one line (JSON text is). */
export function frameEvent(event: string, data: string): string {
  if (/[\r\n]/.test(event) || /[\r\n]/.test(data)) throw new RangeError('expected an event name and data without line breaks')
  return `event: ${event}\ndata: ${data}\n\n`
}
