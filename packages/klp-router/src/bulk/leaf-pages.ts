/**
 * The receiver's leaf pages: fetched from the sender (`leaves` requests), each checked against
 * the signed root with its proof before any chunk is compared with it, kept only while the window
 * uses them (the page ahead is fetched while the current one is used, so pulls never wait for
 * it). A chunk's leaf hash is compared with its verified leaf here. Internal.
 */
import { controlRequest, type BulkContext } from './context.js'
import { BulkProofError } from './errors.js'
import { HASH_BYTES, bytesEqual, pageCount, verifyPage } from './tree.js'
import { parseLeaves, type BulkOfferInfo } from './wire.js'

export interface LeafPageEvents {
  /** A request ended (page stored or not): the window may move on. */
  settled(): void
  /** A request failed; the caller decides whether it is retried later (transient) or fatal. */
  failed(err: Error): void
  /** Whether a page that arrives now is still wanted (the transfer is running, the page not behind the window). */
  wanted(page: number): boolean
}

export class LeafPages {
  private readonly pages = new Map<number, Uint8Array>()
  private readonly loads = new Set<number>()
  private readonly P: number
  private readonly count: number

  constructor(
    private readonly ctx: BulkContext,
    private readonly offer: BulkOfferInfo,
    private readonly idBytes: Uint8Array,
    private readonly senderAuthority: string,
    private readonly signal: AbortSignal,
    private readonly events: LeafPageEvents,
  ) {
    this.P = offer.pageLeaves
    this.count = pageCount(offer.chunks, offer.pageLeaves)
  }

  /** Page of chunk `index`. */
  pageOf(index: number): number {
    return Math.floor(index / this.P)
  }

  /** True when the page of chunk `index` is verified and here. */
  has(index: number): boolean {
    return this.pages.has(this.pageOf(index))
  }

  /** Starts fetching the page of chunk `index` (if not here or on its way); when `index` is past the middle of its page, also the next page. */
  load(index: number, ahead: boolean): void {
    const p = this.pageOf(index)
    if (!ahead) return this.fetch(p)
    if (index % this.P >= this.P / 2 && p + 1 < this.count) this.fetch(p + 1)
  }

  /** True when `leaf` is the verified leaf hash of chunk `index` (false when its page is not here). */
  matches(index: number, leaf: Uint8Array): boolean {
    const leaves = this.pages.get(this.pageOf(index))
    return leaves !== undefined && bytesEqual(leaf, leaves, (index % this.P) * HASH_BYTES)
  }

  /** Forgets the pages below the one of chunk `base`. */
  prune(base: number): void {
    const low = this.pageOf(base)
    for (const p of this.pages.keys()) if (p < low) this.pages.delete(p)
  }

  clear(): void {
    this.pages.clear()
  }

  private fetch(p: number): void {
    if (this.pages.has(p) || this.loads.has(p)) return
    this.loads.add(p)
    const { root, chunks, pageLeaves, id } = this.offer
    void controlRequest(this.ctx, this.senderAuthority, { op: 'leaves', id: this.idBytes, page: p }, `leaf page ${p}`, this.signal)
      .then(({ data }) => {
        const page = parseLeaves(data, id, p)
        if (!verifyPage(root, chunks, pageLeaves, p, page.leaves, page.proof)) throw new BulkProofError(`expected leaf page ${p} to lead to the offer's root, got one that does not`)
        if (this.events.wanted(p)) this.pages.set(p, page.leaves)
      })
      .catch((err: unknown) => this.events.failed(err instanceof Error ? err : new Error(String(err))))
      .finally(() => {
        this.loads.delete(p)
        this.events.settled()
      })
  }
}
