/**
 * The session of the secure channel: its options and public shape (SecureSession) and the Session
 * that numbers, protects and checks records once a handshake (channel-handshake.ts) has established
 * the keys.
 *
 * Record = epoch (u16 BE) | seq (u48 BE) | AES-256-GCM(ciphertext | tag16); the 12-byte nonce is
 * 0x00000000 | epoch | seq, so the 8-byte header is authenticated through the nonce. Overhead: 24 bytes.
 * Optional associated data (`aad`, e.g. a record-kind byte the caller sends in the clear) is authenticated,
 * not encrypted and not sent: both sides must pass the same bytes. Empty aad = no aad (the same record).
 * The sender moves to epoch + 1 (key_{e+1} = HKDF(key_e, "rekey")) after `rekeyAfterRecords` records or
 * `rekeyAfterBytes` bytes; the receiver follows when it sees the new epoch (signalled in-band).
 */
import { ConnectionClosedError, ReplayError, systemClock, type Clock } from '@kos-mesh/interface'
import type { CryptoBackend } from './backend.js'
import { HandshakeError, RecordOutOfOrderError, RecordTooLargeError, SessionExpiredError, TruncatedRecordError } from './errors.js'
import { makeKey, nextKey, SeqWindow, type DirectionKey } from './channel-record.js'

/** Bytes a record adds to its plaintext: 8-byte header + 16-byte tag. */
export const RECORD_OVERHEAD = 24
const MAX_SEQ = 2 ** 48 - 1

/** Which side of the handshake: the `initiator` dials, the `responder` accepts. */
export type HandshakeRole = 'initiator' | 'responder'

/** Options of the session a handshake establishes: lifetime, record size, rekeying, replay window and clock. */
export interface SessionOptions {
  /** Session lifetime. Default: 24 h (the spec's `expires_at`). */
  lifetimeMs?: number
  /** Largest plaintext per record. Default: 1 MiB (records up to 1 MiB + 24 bytes). */
  maxRecordSize?: number
  /** Sender rekeys after this many records in one epoch. Default: 2^24 (AES-GCM is safe to ~2^32). */
  rekeyAfterRecords?: number
  /** Sender rekeys after this many plaintext bytes in one epoch. Default: 2^34 (16 GiB). */
  rekeyAfterBytes?: number
  /**
   * 0 (default): records must arrive exactly in order (stream transports): an old record is a
   * ReplayError, a skipped one a RecordOutOfOrderError. N (1..4096): accept records up to N behind the
   * newest one, each once (datagram transports).
   */
  replayWindow?: number
  /**
   * Time of the session lifetime and the handshake timeout (`performHandshake`). Default
   * `systemClock` from @kos-mesh/interface.
   */
  clock?: Clock
  /** @deprecated use `clock`; used only when `clock` is not given. */
  now?: () => number
}

/**
 * An established channel: both DIDs, the session id (channel binding), and the keys that protect and check
 * records in each direction.
 */
export interface SecureSession {
  readonly localDid: string
  readonly remoteDid: string
  readonly role: HandshakeRole
  /** 32-byte handshake transcript hash: the same on both sides, unique per session (channel binding). */
  readonly sessionId: Uint8Array
  /** ms since the epoch after which encrypt/decrypt throw SessionExpiredError. */
  readonly expiresAt: number
  /** Current send / receive key epochs (rekeys so far). */
  readonly sendEpoch: number
  readonly receiveEpoch: number
  /**
   * Protects one record: `header (8) | ciphertext | tag (16)` in one new buffer. `aad` is authenticated
   * but neither encrypted nor part of the record (the peer must pass the same bytes to `decrypt`).
   * Does not keep a reference to `plaintext`. Throws RecordTooLargeError, SessionExpiredError,
   * ConnectionClosedError.
   */
  encrypt(plaintext: Uint8Array, aad?: Uint8Array): Uint8Array
  /**
   * The same record as `encrypt(plaintext, aad)`, as three buffers for a vectored write (writev /
   * cork): `[header (8 bytes), ciphertext (plaintext.length bytes), tag (16 bytes)]`, without copying
   * the ciphertext into a record buffer. Each part is freshly allocated (or a view of a fresh
   * allocation) and owned by the caller; nothing references `plaintext`. Same errors as `encrypt`.
   */
  encryptParts(plaintext: Uint8Array, aad?: Uint8Array): [header: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array]
  /**
   * Opens one record (`aad` as given to `encrypt`; none = empty). `record` may be a view into a larger
   * buffer (e.g. a socket read): it is read, never copied, written or retained. Returns a new buffer.
   * Throws TruncatedRecordError, RecordTooLargeError, ReplayError, RecordOutOfOrderError,
   * DecryptionError, SessionExpiredError, ConnectionClosedError. A failed record leaves the state
   * unchanged; callers should close the connection on any error.
   */
  decrypt(record: Uint8Array, aad?: Uint8Array): Uint8Array
  /** Makes the next outgoing record use a fresh key (the peer follows in-band). */
  rekey(): void
  /** Forgets the keys; later calls throw ConnectionClosedError. */
  close(): void
}

/** The SecureSession a finished handshake returns (internal: built by channel-handshake.ts). */
export class Session implements SecureSession {
  readonly expiresAt: number
  private send: DirectionKey | undefined
  private recv: DirectionKey | undefined
  private prevRecv: DirectionKey | undefined
  private prevWindow: SeqWindow | undefined
  private window: SeqWindow
  private sendSeq = 0
  private sendBytes = 0
  private forceRekey = false
  private readonly header = new Uint8Array(8)
  private readonly strict: boolean
  private readonly maxRecord: number
  private readonly rekeyRecords: number
  private readonly rekeyBytes: number
  private readonly now: () => number
  private readonly windowSize: number

  constructor(
    readonly localDid: string,
    readonly remoteDid: string,
    readonly role: HandshakeRole,
    readonly sessionId: Uint8Array,
    sendKey: Uint8Array,
    recvKey: Uint8Array,
    private readonly crypto: CryptoBackend,
    options: SessionOptions,
  ) {
    const clock = options.clock
    this.now = clock !== undefined ? () => clock.now() : options.now ?? (() => systemClock.now())
    this.expiresAt = this.now() + (options.lifetimeMs ?? 24 * 60 * 60 * 1000)
    this.maxRecord = options.maxRecordSize ?? 1024 * 1024
    this.rekeyRecords = Math.min(options.rekeyAfterRecords ?? 2 ** 24, MAX_SEQ)
    this.rekeyBytes = options.rekeyAfterBytes ?? 2 ** 34
    const w = options.replayWindow ?? 0
    if (!Number.isInteger(w) || w < 0 || w > 4096) throw new HandshakeError(`expected replayWindow in 0..4096, got ${w}`)
    this.strict = w === 0
    this.windowSize = Math.max(w, 1)
    this.window = new SeqWindow(this.windowSize)
    this.send = makeKey(crypto, 0, sendKey)
    this.recv = makeKey(crypto, 0, recvKey)
  }

  get sendEpoch(): number { return this.send?.epoch ?? -1 }
  get receiveEpoch(): number { return this.recv?.epoch ?? -1 }

  private live(): void {
    if (this.send === undefined) throw new ConnectionClosedError('the session is closed')
    if (this.now() >= this.expiresAt) throw new SessionExpiredError('the session passed its lifetime; handshake again')
  }

  rekey(): void { this.forceRekey = true }

  close(): void { this.send = undefined; this.recv = undefined; this.prevRecv = undefined }

  encrypt(plaintext: Uint8Array, aad?: Uint8Array): Uint8Array {
    return this.protect(plaintext, aad, false) as Uint8Array
  }

  encryptParts(plaintext: Uint8Array, aad?: Uint8Array): [header: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array] {
    return this.protect(plaintext, aad, true) as [Uint8Array, Uint8Array, Uint8Array]
  }

  private protect(plaintext: Uint8Array, aad: Uint8Array | undefined, parts: boolean): Uint8Array | [Uint8Array, Uint8Array, Uint8Array] {
    this.live()
    if (plaintext.length > this.maxRecord) throw new RecordTooLargeError(`expected a plaintext of at most ${this.maxRecord} bytes, got ${plaintext.length}`)
    let k = this.send as DirectionKey
    if (this.forceRekey || this.sendSeq >= this.rekeyRecords || this.sendBytes >= this.rekeyBytes) {
      k = this.send = nextKey(this.crypto, k)
      this.sendSeq = 0; this.sendBytes = 0; this.forceRekey = false
    }
    const seq = this.sendSeq
    const h = this.header
    h[0] = k.epoch >>> 8; h[1] = k.epoch & 0xff
    const hi = Math.floor(seq / 0x1000000)
    const lo = seq % 0x1000000
    h[2] = (hi >>> 16) & 0xff; h[3] = (hi >>> 8) & 0xff; h[4] = hi & 0xff
    h[5] = (lo >>> 16) & 0xff; h[6] = (lo >>> 8) & 0xff; h[7] = lo & 0xff
    const out = parts ? k.sealParts(h, plaintext, aad) : k.seal(h, plaintext, aad)
    this.sendSeq = seq + 1
    this.sendBytes += plaintext.length
    return out
  }

  decrypt(record: Uint8Array, aad?: Uint8Array): Uint8Array {
    this.live()
    if (record.length < RECORD_OVERHEAD) throw new TruncatedRecordError(`expected a record of at least ${RECORD_OVERHEAD} bytes, got ${record.length}`)
    if (record.length > this.maxRecord + RECORD_OVERHEAD) throw new RecordTooLargeError(`expected a record of at most ${this.maxRecord + RECORD_OVERHEAD} bytes, got ${record.length}`)
    const epoch = ((record[0] as number) << 8) | (record[1] as number)
    const seq = (((record[2] as number) << 16) | ((record[3] as number) << 8) | (record[4] as number)) * 0x1000000 +
      (((record[5] as number) << 16) | ((record[6] as number) << 8) | (record[7] as number))
    const cur = this.recv as DirectionKey
    if (epoch === cur.epoch) {
      const c = this.window.check(seq, this.strict)
      if (c === 1) throw new ReplayError(`record ${epoch}:${seq} was already received or is too old`)
      if (c === 2) throw new RecordOutOfOrderError(`expected record ${epoch}:${this.window.top + 1}, got ${epoch}:${seq}`)
      const pt = cur.open(record, aad)
      this.window.accept(seq)
      return pt
    }
    if (epoch === cur.epoch + 1) {
      if (this.strict && seq !== 0) throw new RecordOutOfOrderError(`expected record ${epoch}:0, got ${epoch}:${seq}`)
      const next = nextKey(this.crypto, cur)
      const pt = next.open(record, aad)
      this.prevRecv = this.strict ? undefined : cur
      this.prevWindow = this.strict ? undefined : this.window
      this.recv = next
      this.window = new SeqWindow(this.windowSize)
      this.window.accept(seq)
      return pt
    }
    if (epoch === cur.epoch - 1 && this.prevRecv !== undefined && this.prevWindow !== undefined) {
      if (this.prevWindow.check(seq, false) !== 0) throw new ReplayError(`record ${epoch}:${seq} was already received or is too old`)
      const pt = this.prevRecv.open(record, aad)
      this.prevWindow.accept(seq)
      return pt
    }
    if (epoch < cur.epoch) throw new ReplayError(`record of epoch ${epoch} is older than the current epoch ${cur.epoch}`)
    throw new RecordOutOfOrderError(`expected a record of epoch ${cur.epoch} or ${cur.epoch + 1}, got ${epoch}`)
  }
}
