/**
 * Range-based set reconciliation (the method of negentropy and iroh-docs, our own code): two
 * parties holding sorted sets of (timestamp, id) exchange fingerprints of ranges; equal ranges are
 * skipped, unequal ones are split into `branching` sub-ranges, and small ones are settled by id
 * lists. Bytes and rounds grow with the size of the difference (times log n), not with the set.
 *
 * Sans-I/O: `Reconciler` turns messages into messages. The initiator calls `initiate()`, sends the
 * bytes, feeds each answer to `reconcile()` and sends what it returns until it returns `done`; it
 * collects `have` (ids it has that the other side lacks) and `need` (ids it lacks). The responder
 * answers every message with `reconcile()`.
 *
 * Message = version byte 0x61, then ranges. A range = upper bound, mode (varint), payload:
 *   bound   = varint(ts === MAX ? 0 : 1 + ts - previous ts), varint(prefix length), prefix bytes
 *   mode 0  = skip (no payload)
 *   mode 1  = fingerprint (16 bytes)
 *   mode 2  = id list: varint count, 32-byte ids
 *   mode 3  = id-list answer (responder to initiator): varint count, 32-byte ids the initiator
 *             lacks, varint bitfield length, bitfield over the initiator's list (bit set = the
 *             responder lacks that id)
 * Improvement over a plain id-list reply: the answer carries only the ids the initiator lacks, and
 * one bit per id it sent. A responder holding more than 4 x idListThreshold items in a listed range
 * answers with its own sub-ranges instead (the initiator then lists again, range by range), and
 * with `frameSizeLimit` both sides defer what does not fit, so no message grows with the set.
 */
import { InvalidParametersError } from '@kos-mesh/interface'
import { InvalidReconcileMessageError, VectorTooLargeError } from './errors.js'
import { FINGERPRINT_SIZE, ID_SIZE, MAX_TIMESTAMP, encodeVarint, type Bound, type ReconStorage } from './recon-storage.js'

/**
 * The first byte of every reconciliation message (format version 0x61); a message that starts
 * with another byte is refused with `InvalidReconcileMessageError`.
 */
export const RECON_VERSION = 0x61
const MODE_SKIP = 0
const MODE_FINGERPRINT = 1
const MODE_IDLIST = 2
const MODE_IDLIST_ANSWER = 3

/**
 * Tuning and bounds of one `Reconciler`. The constructor throws `InvalidParametersError` for a
 * value out of range. The vector-mesh service uses the defaults but for `maxMessageBytes`
 * (`maxReconBytes`, 768 KiB) and `frameSizeLimit` (256 KiB).
 */
export interface ReconcilerOptions {
  /** Sub-ranges per split, 2..1,024. Default 16. */
  branching?: number
  /** A range of fewer than this many items is sent as an id list. Default 2 * branching. */
  idListThreshold?: number
  /** Largest message accepted, bytes. Default 4 MiB. */
  maxMessageBytes?: number
  /**
   * Messages (of either side) stay under about this many bytes plus one range's worth (at most
   * ~5 KB): the ranges that do not fit are answered as at most `branching` fingerprints of
   * consecutive groups of them, compared again next round. Default 0 (no limit); at least 4,096.
   */
  frameSizeLimit?: number
}

/** The result of `Reconciler.reconcile`: the message to send back, or, for the initiator, the end. */
export interface ReconcileOutput {
  /** The next message to send; undefined when the initiator is done. */
  message: Uint8Array | undefined
  /** True (initiator only) when nothing is left to compare: `have` and `need` are complete. */
  done: boolean
}

const INFINITY: Bound = { ts: MAX_TIMESTAMP, prefix: new Uint8Array(0) }

class Writer {
  readonly out: number[] = []
  private lastTs = 0
  bound(b: Bound): void {
    if (b.ts === MAX_TIMESTAMP) encodeVarint(0, this.out)
    else { encodeVarint(1 + b.ts - this.lastTs, this.out); this.lastTs = b.ts }
    encodeVarint(b.prefix.length, this.out)
    for (const x of b.prefix) this.out.push(x)
  }
  bytes(b: Uint8Array): void { for (const x of b) this.out.push(x) }
}

class Reader {
  pos = 0
  private lastTs = 0
  constructor(private readonly b: Uint8Array) {}
  get done(): boolean { return this.pos >= this.b.length }
  get left(): number { return this.b.length - this.pos }
  varint(): number {
    let n = 0
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.b.length) throw new InvalidReconcileMessageError('expected a varint, got the end of the message')
      const x = this.b[this.pos++] as number
      n = n * 128 + (x & 0x7f)
      if ((x & 0x80) === 0) {
        if (!Number.isSafeInteger(n)) break
        return n
      }
    }
    throw new InvalidReconcileMessageError('expected a varint below 2^53')
  }
  take(n: number): Uint8Array {
    if (n > this.b.length - this.pos) throw new InvalidReconcileMessageError(`expected ${n} more bytes, got ${this.b.length - this.pos}`)
    const out = this.b.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }
  bound(): Bound {
    const d = this.varint()
    let ts: number
    if (d === 0) ts = MAX_TIMESTAMP
    else {
      ts = this.lastTs + d - 1
      if (ts >= MAX_TIMESTAMP) throw new InvalidReconcileMessageError('expected a timestamp below 2^53 - 1')
      this.lastTs = ts
    }
    const len = this.varint()
    if (len > ID_SIZE) throw new InvalidReconcileMessageError(`expected a bound prefix of at most ${ID_SIZE} bytes, got ${len}`)
    return { ts, prefix: this.take(len) }
  }
}

/** One side of a reconciliation over a frozen storage. */
export class Reconciler {
  /** Ids this side has and the other lacks (initiator only). */
  readonly have: Uint8Array[] = []
  /** Ids the other side has and this side lacks (initiator only). */
  readonly need: Uint8Array[] = []
  /** Messages processed and bytes sent/received, for measurement. */
  readonly stats = { rounds: 0, bytesSent: 0, bytesReceived: 0 }
  private readonly branching: number
  private readonly idListThreshold: number
  private readonly maxMessageBytes: number
  private readonly frameSizeLimit: number
  private initiator = false

  constructor(private readonly storage: ReconStorage, options: ReconcilerOptions = {}) {
    this.branching = options.branching ?? 16
    this.idListThreshold = options.idListThreshold ?? 2 * this.branching
    this.maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024
    this.frameSizeLimit = options.frameSizeLimit ?? 0
    if (this.frameSizeLimit !== 0 && (!Number.isInteger(this.frameSizeLimit) || this.frameSizeLimit < 4096)) throw new InvalidParametersError(`expected frameSizeLimit 0 or >= 4096, got ${this.frameSizeLimit}`)
    if (!Number.isInteger(this.branching) || this.branching < 2 || this.branching > 1024) throw new InvalidParametersError(`expected branching in 2..1024, got ${this.branching}`)
    if (!Number.isInteger(this.idListThreshold) || this.idListThreshold < 1) throw new InvalidParametersError('expected idListThreshold >= 1')
  }

  /** Starts a reconciliation as the initiator: the first message. */
  initiate(): Uint8Array {
    this.initiator = true
    const w = new Writer()
    w.out.push(RECON_VERSION)
    this.split(w, 0, this.storage.size, INFINITY)
    return this.sent(w)
  }

  private sent(w: Writer): Uint8Array {
    const b = Uint8Array.from(w.out)
    this.stats.bytesSent += b.length
    return b
  }

  private split(w: Writer, lo: number, hi: number, upper: Bound): void {
    const n = hi - lo
    if (n < this.idListThreshold) {
      w.bound(upper)
      encodeVarint(MODE_IDLIST, w.out)
      encodeVarint(n, w.out)
      for (let i = lo; i < hi; i++) w.bytes(this.storage.idAt(i))
      return
    }
    const per = Math.floor(n / this.branching)
    const extra = n % this.branching
    let cur = lo
    for (let i = 0; i < this.branching; i++) {
      const size = per + (i < extra ? 1 : 0)
      const fp = this.storage.fingerprint(cur, cur + size)
      cur += size
      w.bound(cur === hi ? upper : this.storage.minimalBound(cur))
      encodeVarint(MODE_FINGERPRINT, w.out)
      w.bytes(fp)
    }
  }

  /**
   * Processes a message of the other side. For the initiator, `done` is true (and `message`
   * undefined) when nothing is left to compare. Throws InvalidReconcileMessageError or
   * VectorTooLargeError on bad input; then the reconciliation must be abandoned.
   */
  reconcile(msg: Uint8Array): ReconcileOutput {
    if (!(msg instanceof Uint8Array)) throw new InvalidReconcileMessageError('expected a Uint8Array')
    if (msg.length > this.maxMessageBytes) throw new VectorTooLargeError(`expected a reconciliation message of at most ${this.maxMessageBytes} bytes, got ${msg.length}`)
    this.stats.rounds++
    this.stats.bytesReceived += msg.length
    if (msg[0] !== RECON_VERSION) throw new InvalidReconcileMessageError(`expected protocol version 0x61, got ${msg.length === 0 ? 'nothing' : `0x${(msg[0] as number).toString(16)}`}`)
    const r = new Reader(msg)
    r.pos = 1
    const w = new Writer()
    w.out.push(RECON_VERSION)
    const s = this.storage
    let prevBound: Bound = { ts: 0, prefix: new Uint8Array(0) }
    let prevIndex = 0
    let pendingSkip = false
    let wrote = false
    const doSkip = (): void => {
      if (!pendingSkip) return
      pendingSkip = false
      w.bound(prevBound)
      encodeVarint(MODE_SKIP, w.out)
    }
    while (!r.done) {
      if (this.frameSizeLimit > 0 && w.out.length > this.frameSizeLimit - 600) {
        // over the frame limit: the ranges left are answered next round. Settled (skip) ranges stay
        // skipped; each run of unsettled ones becomes one fingerprint of ours, which the other
        // side splits again (nothing is lost, no state is kept)
        let lo = prevIndex
        let runEnd: Bound | undefined
        const closeRun = (): void => {
          if (runEnd === undefined) return
          const hi = s.lowerBound(runEnd, lo)
          w.bound(runEnd)
          encodeVarint(MODE_FINGERPRINT, w.out)
          w.bytes(s.fingerprint(lo, hi))
          prevBound = runEnd
          lo = hi
          runEnd = undefined
          wrote = true
        }
        while (!r.done) {
          const b = r.bound()
          if (compareBounds(b, runEnd ?? prevBound) < 0) throw new InvalidReconcileMessageError('expected ranges in increasing order')
          const mode = r.varint()
          skipPayload(r, mode)
          if (mode === MODE_SKIP) {
            closeRun()
            pendingSkip = true
            prevBound = b
            lo = s.lowerBound(b, lo)
          } else {
            if (runEnd === undefined) doSkip()
            runEnd = b
          }
        }
        closeRun()
        break
      }
      const bound = r.bound()
      const mode = r.varint()
      if (compareBounds(bound, prevBound) < 0) throw new InvalidReconcileMessageError('expected ranges in increasing order')
      const lo = prevIndex
      const hi = s.lowerBound(bound, lo)
      if (mode === MODE_SKIP) {
        pendingSkip = true
      } else if (mode === MODE_FINGERPRINT) {
        const theirs = r.take(FINGERPRINT_SIZE)
        const ours = s.fingerprint(lo, hi)
        if (Buffer.compare(theirs, ours) === 0) pendingSkip = true
        else { doSkip(); this.split(w, lo, hi, bound); wrote = true }
      } else if (mode === MODE_IDLIST) {
        const count = r.varint()
        if (count > (msg.length - r.pos) / ID_SIZE) throw new InvalidReconcileMessageError(`expected ${count} ids, got fewer bytes`)
        const theirs = new Map<string, number>()
        for (let i = 0; i < count; i++) theirs.set(Buffer.from(r.take(ID_SIZE)).toString('hex'), i)
        if (this.initiator) {
          for (let i = lo; i < hi; i++) {
            const k = Buffer.from(s.idAt(i)).toString('hex')
            if (!theirs.delete(k)) this.have.push(s.idAt(i).slice())
          }
          for (const k of theirs.keys()) this.need.push(Uint8Array.from(Buffer.from(k, 'hex')))
          pendingSkip = true
        } else if (hi - lo > 4 * this.idListThreshold) {
          // far more here than the initiator listed: answer by ranges rather than with every id
          doSkip()
          this.split(w, lo, hi, bound)
          wrote = true
        } else {
          doSkip()
          const missing: Uint8Array[] = []
          const lack = new Uint8Array(Math.ceil(count / 8))
          const seen = new Set<number>()
          for (let i = lo; i < hi; i++) {
            const at = theirs.get(Buffer.from(s.idAt(i)).toString('hex'))
            if (at === undefined) missing.push(s.idAt(i))
            else seen.add(at)
          }
          for (let i = 0; i < count; i++) if (!seen.has(i)) lack[i >> 3] = (lack[i >> 3] as number) | (1 << (i & 7))
          w.bound(bound)
          encodeVarint(MODE_IDLIST_ANSWER, w.out)
          encodeVarint(missing.length, w.out)
          for (const id of missing) w.bytes(id)
          encodeVarint(lack.length, w.out)
          w.bytes(lack)
          wrote = true
        }
      } else if (mode === MODE_IDLIST_ANSWER) {
        if (!this.initiator) throw new InvalidReconcileMessageError('expected no id-list answer at the responder')
        const count = r.varint()
        if (count > (msg.length - r.pos) / ID_SIZE) throw new InvalidReconcileMessageError(`expected ${count} ids, got fewer bytes`)
        for (let i = 0; i < count; i++) this.need.push(r.take(ID_SIZE).slice())
        const lackLen = r.varint()
        if (lackLen !== Math.ceil((hi - lo) / 8)) throw new InvalidReconcileMessageError(`expected a bitfield of ${Math.ceil((hi - lo) / 8)} bytes, got ${lackLen}`)
        const lack = r.take(lackLen)
        for (let i = 0; i < hi - lo; i++) if (((lack[i >> 3] as number) >> (i & 7)) & 1) this.have.push(s.idAt(lo + i).slice())
        pendingSkip = true
      } else {
        throw new InvalidReconcileMessageError(`expected a range mode 0..3, got ${mode}`)
      }
      prevIndex = hi
      prevBound = bound
    }
    if (this.initiator && !wrote) return { message: undefined, done: true }
    return { message: this.sent(w), done: false }
  }
}

/** Reads past a range's payload (bounded like the full parse). */
function skipPayload(r: Reader, mode: number): void {
  if (mode === MODE_SKIP) return
  if (mode === MODE_FINGERPRINT) { r.take(FINGERPRINT_SIZE); return }
  if (mode !== MODE_IDLIST && mode !== MODE_IDLIST_ANSWER) throw new InvalidReconcileMessageError(`expected a range mode 0..3, got ${mode}`)
  const count = r.varint()
  if (count > r.left / ID_SIZE) throw new InvalidReconcileMessageError(`expected ${count} ids, got fewer bytes`)
  r.take(count * ID_SIZE)
  if (mode === MODE_IDLIST_ANSWER) r.take(r.varint())
}

function compareBounds(a: Bound, b: Bound): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1
  const n = Math.max(a.prefix.length, b.prefix.length)
  for (let k = 0; k < n; k++) {
    const x = k < a.prefix.length ? (a.prefix[k] as number) : 0
    const y = k < b.prefix.length ? (b.prefix[k] as number) : 0
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

/**
 * Runs a whole reconciliation between two in-memory storages (tests, benchmarks, and a local
 * shard copy). Returns the initiator's have/need and the traffic.
 */
export function reconcileLocal(a: ReconStorage, b: ReconStorage, options?: ReconcilerOptions): { have: Uint8Array[]; need: Uint8Array[]; rounds: number; bytes: number; messages: number } {
  const init = new Reconciler(a, options)
  const resp = new Reconciler(b, options)
  let msg: Uint8Array | undefined = init.initiate()
  let bytes = msg.length
  let messages = 1
  let rounds = 0
  for (;;) {
    const answer = resp.reconcile(msg)
    bytes += answer.message!.length
    messages++
    rounds++
    const next = init.reconcile(answer.message!)
    if (next.done) break
    msg = next.message!
    bytes += msg.length
    messages++
  }
  return { have: init.have, need: init.need, rounds, bytes, messages }
}
