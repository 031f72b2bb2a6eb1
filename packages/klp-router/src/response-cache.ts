export interface ResponseCacheInit {
  /** Maximum cached responses. Default 10,000. */
  maxEntries?: number
  /** Maximum total bytes of cached responses. Default 16 MiB. */
  maxBytes?: number
  now: () => number
}

interface Entry {
  frame: Uint8Array
  /** Authority the response goes to. */
  target: string
  expiresAt: number
}

/**
 * Responses by request message id, kept for the request's replay window, so a retried (duplicate)
 * request is answered with the very same signed response instead of being processed twice.
 * Bounded by count and bytes (least recently stored first out).
 */
export class ResponseCache {
  private readonly entries = new Map<string, Entry>()
  private bytes = 0
  private readonly maxEntries: number
  private readonly maxBytes: number
  private readonly now: () => number

  constructor(init: ResponseCacheInit) {
    this.maxEntries = init.maxEntries ?? 10_000
    this.maxBytes = init.maxBytes ?? 16 * 1024 * 1024
    this.now = init.now
  }

  get size(): number {
    return this.entries.size
  }

  get byteSize(): number {
    return this.bytes
  }

  get(requestId: string): { frame: Uint8Array; target: string } | undefined {
    const e = this.entries.get(requestId)
    if (e === undefined) return undefined
    if (e.expiresAt <= this.now()) {
      this.delete(requestId)
      return undefined
    }
    return e
  }

  set(requestId: string, frame: Uint8Array, target: string, expiresAt: number): void {
    if (frame.byteLength > this.maxBytes) return
    this.delete(requestId)
    while (this.entries.size >= this.maxEntries || this.bytes + frame.byteLength > this.maxBytes) {
      const first = this.entries.keys().next()
      if (first.done === true) break
      this.delete(first.value)
    }
    this.entries.set(requestId, { frame, target, expiresAt })
    this.bytes += frame.byteLength
  }

  delete(requestId: string): void {
    const e = this.entries.get(requestId)
    if (e !== undefined) {
      this.entries.delete(requestId)
      this.bytes -= e.frame.byteLength
    }
  }

  clear(): void {
    this.entries.clear()
    this.bytes = 0
  }
}
