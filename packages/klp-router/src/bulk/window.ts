/**
 * The receiver's pull window over the chunk indices (sans-I/O): which chunks are reserved, asked
 * for, arrived, hashed, written, and which are released, in index order.
 *
 * The window spans indices [base, base + window): a chunk holds its slot from the moment it is
 * reserved until it was hashed (in index order), written and released, so at most `window` chunks
 * are requested, arriving, hashing or being written at any time: the receiver's memory for chunks
 * is bounded by window x chunkSize whatever the sender does (a frame nobody asked for is dropped
 * unread). Pulls are batched (half a window each) to keep signed control messages rare. Internal.
 */
import { MAX_PULL_RANGES } from './wire.js'

/**
 * want -> requested -> arrived -> hashing -> writing -> ready (network), or
 * reading -> checked -> hashing -> ready (read back from the sink, already written).
 */
export type SlotState = 'want' | 'requested' | 'arrived' | 'hashing' | 'writing' | 'ready' | 'reading' | 'checked'

export interface Slot {
  state: SlotState
  bytes: Uint8Array | undefined
  readonly length: number
}

/** What `arrive()` made of a data frame. */
export type Arrival = 'ok' | 'unrequested' | 'wrong-length'

export class PullWindow {
  /** First index not yet released. */
  base = 0
  /** Next index to hand to the hasher (base <= hashNext <= next). */
  hashNext = 0
  /** Next index to reserve. */
  next = 0
  /** Chunks asked for (in this epoch) and not arrived. */
  requested = 0
  /** Bytes of the reserved slots. */
  reserved = 0
  private readonly slots = new Map<number, Slot>()
  /** Indices reserved and not yet asked for (in this epoch). */
  private wanted: number[] = []
  private readonly batch: number

  /** `n` chunks, at most `size` of them reserved at once. */
  constructor(
    readonly n: number,
    readonly size: number,
  ) {
    this.batch = Math.max(1, Math.floor(size / 2))
  }

  /** Every chunk was released. */
  get complete(): boolean {
    return this.base >= this.n
  }

  /** Room for one more slot (and an index left to reserve). */
  get hasRoom(): boolean {
    return this.next < this.n && this.next - this.base < this.size
  }

  /** The slot of `index` while it holds one. */
  slot(index: number): Slot | undefined {
    return this.slots.get(index)
  }

  /** Reserves the next index: to fetch, or (`local`) to read back from the sink. */
  reserve(length: number, local: boolean): { index: number; slot: Slot } {
    const index = this.next++
    const slot: Slot = { state: local ? 'reading' : 'want', bytes: undefined, length }
    this.slots.set(index, slot)
    if (!local) this.wanted.push(index)
    this.reserved += length
    return { index, slot }
  }

  /** A slot that was to be read back (or re-checked) is fetched instead. */
  refetch(index: number, slot: Slot): void {
    slot.state = 'want'
    slot.bytes = undefined
    this.wanted.push(index)
  }

  /**
   * The wanted indices as pull ranges ([start, count, ...], each pull at most MAX_PULL_RANGES
   * pairs), marked requested; undefined while fewer than half a window are wanted and chunks
   * are still on their way (unless `blocked`: no more can be reserved before a leaf page arrives).
   */
  takePulls(blocked: boolean): number[][] | undefined {
    if (this.wanted.length === 0) return undefined
    if (this.wanted.length < this.batch && this.requested > 0 && this.next < this.n && !blocked) return undefined
    const list = this.wanted.sort((a, b) => a - b)
    this.wanted = []
    const ranges: number[] = []
    for (const i of list) {
      const slot = this.slots.get(i)
      if (slot === undefined || slot.state !== 'want') continue
      slot.state = 'requested'
      const last = ranges.length - 2
      if (last >= 0 && ranges[last]! + ranges[last + 1]! === i) ranges[last + 1]!++
      else ranges.push(i, 1)
    }
    if (ranges.length === 0) return undefined
    for (let i = 1; i < ranges.length; i += 2) this.requested += ranges[i]!
    const pulls: number[][] = []
    for (let k = 0; k < ranges.length; k += 2 * MAX_PULL_RANGES) pulls.push(ranges.slice(k, k + 2 * MAX_PULL_RANGES))
    return pulls
  }

  /** A data frame for `index`: taken when it was requested and has the chunk's length. */
  arrive(index: number, bytes: Uint8Array): Arrival {
    const slot = this.slots.get(index)
    if (slot === undefined || slot.state !== 'requested') return 'unrequested'
    if (bytes.byteLength !== slot.length) return 'wrong-length'
    slot.state = 'arrived'
    slot.bytes = bytes
    this.requested--
    return 'ok'
  }

  /** The length a requested chunk must have (for an error message), or undefined. */
  expectedLength(index: number): number | undefined {
    return this.slots.get(index)?.length
  }

  /** The next slot in index order that may be hashed (arrived or checked), moved past; else undefined. */
  nextToHash(): { index: number; slot: Slot } | undefined {
    if (this.hashNext >= this.next) return undefined
    const index = this.hashNext
    const slot = this.slots.get(index)!
    if (slot.state !== 'arrived' && slot.state !== 'checked') return undefined
    this.hashNext++
    return { index, slot }
  }

  /** Releases the ready slots in index order; calls `onRelease` for each. Returns how many. */
  release(onRelease: (index: number, slot: Slot) => void): number {
    const before = this.base
    while (this.base < this.hashNext) {
      const slot = this.slots.get(this.base)
      if (slot === undefined || slot.state !== 'ready') break
      this.slots.delete(this.base)
      this.reserved -= slot.length
      onRelease(this.base++, slot)
    }
    return this.base - before
  }

  /** A new epoch: what was asked and did not arrive is wanted again. */
  restart(): void {
    for (const [i, slot] of this.slots) {
      if (slot.state === 'requested') {
        slot.state = 'want'
        this.wanted.push(i)
      }
    }
    this.requested = 0
  }

  clear(): void {
    this.slots.clear()
    this.wanted = []
    this.reserved = 0
  }
}
