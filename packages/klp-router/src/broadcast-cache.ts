/**
 * The recent broadcasts a router holds for `relayBroadcast` (a gossip service's lazy repair): the
 * frame as this node relays it (hop count already raised), bounded in entries and bytes, oldest
 * first out, each dropped at its message's expiry. Internal.
 */
import { InvalidParametersError } from '@kos-mesh/interface'

export interface HeldBroadcast {
  /** The envelope as this node relays it: the signed bytes unchanged, the hop count raised. */
  readonly frame: Uint8Array
  /** The message's `signer` (key id): an id with another signer is not this broadcast. */
  readonly signer: string
  /** Clock ms after which the message is no longer accepted anywhere. */
  readonly expiresAt: number
  /** This node's own broadcast (not counted as a forward). */
  readonly own: boolean
}

export class BroadcastCache {
  private readonly entries = new Map<string, HeldBroadcast>()
  private bytes = 0

  constructor(
    readonly maxEntries: number,
    readonly maxBytes: number,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 0) throw new InvalidParametersError(`expected broadcastCacheSize to be an integer >= 0, got ${maxEntries}`)
    if (!(maxBytes >= 0) || !Number.isFinite(maxBytes)) throw new InvalidParametersError(`expected broadcastCacheBytes to be a finite number >= 0, got ${maxBytes}`)
  }

  get size(): number {
    return this.entries.size
  }

  /** Holds a broadcast (by message id); a frame larger than the byte bound is not held. */
  add(id: string, entry: HeldBroadcast): void {
    if (this.maxEntries === 0 || entry.frame.byteLength > this.maxBytes) return
    this.delete(id)
    while (this.entries.size > 0 && (this.entries.size >= this.maxEntries || this.bytes + entry.frame.byteLength > this.maxBytes)) {
      this.delete(this.entries.keys().next().value as string)
    }
    this.entries.set(id, entry)
    this.bytes += entry.frame.byteLength
  }

  /** The held broadcast of an id, unless it expired (then it is dropped). */
  get(id: string, now: number): HeldBroadcast | undefined {
    const e = this.entries.get(id)
    if (e === undefined) return undefined
    if (now > e.expiresAt) {
      this.delete(id)
      return undefined
    }
    return e
  }

  private delete(id: string): void {
    const e = this.entries.get(id)
    if (e === undefined) return
    this.entries.delete(id)
    this.bytes -= e.frame.byteLength
  }

  clear(): void {
    this.entries.clear()
    this.bytes = 0
  }
}
