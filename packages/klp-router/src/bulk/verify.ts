/**
 * The receiver's verification of chunks, and the only path to the sink: a chunk from the network
 * is hashed, compared with its verified leaf and only then written; a chunk the sink holds from
 * an earlier attempt is read back and compared with its leaf before it counts. The content hash
 * (when the offer has one) is fed in index order by the caller. Internal.
 */
import type { BulkContext } from './context.js'
import { BulkChunkHashError, BulkIoError } from './errors.js'
import { pooledLeafHash, type ChunkHasher, type LeafHashing } from './hasher.js'
import type { LeafPages } from './leaf-pages.js'
import type { BulkSink } from './sink.js'
import type { Slot } from './window.js'

export interface VerifyHooks {
  /** Ends the transfer with `err`. */
  fail(err: Error): void
  /** A slot changed state: the transfer loop should look again. */
  wake(): void
  /** The slot still belongs to `index` in a running transfer (a late read-back is dropped otherwise). */
  current(index: number, slot: Slot): boolean
  /** A read-back chunk failed its check (torn, stale, unreadable): fetch it instead. */
  refetch(index: number, slot: Slot): void
}

export class ChunkVerifier {
  /** Sink writes in progress (awaited before the sink is aborted or suspended). */
  private readonly writes = new Set<Promise<void>>()
  /** Chunks taken from the sink's earlier attempt. */
  resumed = 0
  /** Leaf hashes of network chunks go to the thread pool (only when no content hash needs them in order). */
  private readonly pool: boolean

  constructor(
    private readonly ctx: BulkContext,
    private readonly hasher: ChunkHasher,
    private readonly pages: LeafPages,
    private readonly sink: BulkSink,
    private readonly hooks: VerifyHooks,
    leafHashing: LeafHashing,
  ) {
    this.pool = leafHashing === 'pool' && !hasher.inOrder
  }

  /**
   * A chunk from the network, next in index order: hashed (leaf, and content when offered),
   * checked, written. `slot.bytes` is a view into its data frame after the header (see
   * `pooledLeafHash`). With the pool, chunks are hashed concurrently and written as their hashes
   * come back (any order); the window still releases them in index order.
   */
  network(index: number, slot: Slot): void {
    slot.state = 'hashing'
    if (!this.pool) return this.checked(index, slot, this.hasher.both(slot.bytes!))
    pooledLeafHash(slot.bytes!).then(
      (leaf) => {
        if (this.hooks.current(index, slot)) this.checked(index, slot, leaf)
      },
      (err: unknown) => this.hooks.fail(new BulkIoError(`expected the thread pool to hash chunk ${index}`, { cause: err })),
    )
  }

  /** A chunk read back from the sink and already checked, next in index order: content hash only. */
  local(slot: Slot): void {
    this.hasher.content(slot.bytes!)
    slot.state = 'ready'
    this.hooks.wake()
  }

  /** A chunk's leaf hash is known: checked against the verified page, then written to the sink. */
  private checked(index: number, slot: Slot, leaf: Uint8Array): void {
    const bytes = slot.bytes!
    const stats = this.ctx.stats
    if (!this.pages.matches(index, leaf)) {
      stats.chunksRejected++
      this.hooks.fail(new BulkChunkHashError(`expected chunk ${index} to match its leaf hash, got ${bytes.byteLength} bytes that do not`, index))
      return
    }
    stats.chunksReceived++
    stats.bytesReceived += bytes.byteLength
    slot.state = 'writing'
    let r: Promise<void> | void
    try {
      r = this.sink.write(index, bytes)
    } catch (err) {
      this.hooks.fail(new BulkIoError(`expected the sink to take chunk ${index}`, { cause: err }))
      return
    }
    if (r instanceof Promise) {
      const p: Promise<void> = r.then(
        () => {
          this.writes.delete(p)
          if (slot.state === 'writing') slot.state = 'ready'
          this.hooks.wake()
        },
        (err: unknown) => {
          this.writes.delete(p)
          this.hooks.fail(new BulkIoError(`expected the sink to take chunk ${index}`, { cause: err }))
        },
      )
      this.writes.add(p)
    } else {
      slot.state = 'ready'
      this.hooks.wake()
    }
  }

  /** A chunk the sink held from an earlier attempt: read back and checked against its leaf (any order). */
  readBack(index: number, slot: Slot): void {
    const hooks = this.hooks
    const refetch = (): void => {
      if (hooks.current(index, slot)) hooks.refetch(index, slot)
    }
    Promise.resolve()
      .then(() => this.sink.read!(index))
      .then((bytes) => {
        if (!hooks.current(index, slot)) return
        if (bytes.byteLength !== slot.length || !this.pages.matches(index, this.hasher.leaf(bytes))) return refetch()
        slot.state = 'checked'
        slot.bytes = bytes
        this.resumed++
        this.ctx.stats.chunksResumed++
        hooks.wake()
      })
      .catch(refetch)
  }

  /** Waits for the sink writes in progress to settle. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.writes])
  }

  digest(): Uint8Array {
    return this.hasher.digest()
  }
}
