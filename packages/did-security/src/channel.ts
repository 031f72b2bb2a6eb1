/**
 * The KLP secure channel: a sans-I/O mutual-authentication handshake that binds both sides' DIDs to
 * the session, then per-direction AES-256-GCM record protection with 64-bit record numbers, automatic
 * in-band rekeying, a 24-hour lifetime and replay / reorder protection.
 *
 * Handshake (3 messages, Noise-XX-shaped with identity signatures, SIGMA-I style):
 *
 *   -> m1 = ver | 0x01 | e_i
 *   <- m2 = ver | 0x02 | e_r | AEAD(k_r, 0, len | did_r | sig_r(L_R | h2 | did_r), aad = h2)
 *   -> m3 = ver | 0x03 |       AEAD(k_i, 0, len | did_i | sig_i(L_I | h3 | did_i), aad = h3)
 *
 *   h0 = SHA-256(PROTOCOL); h1 = H(h0 | m1); h2 = H(h1 | m2 header | e_r); h3 = H(h2 | m2 body);
 *   h4 = H(h3 | m3); (k_r, k_i, ck) = HKDF(X25519(e_i, e_r), salt = h2); session keys =
 *   HKDF(ck, salt = h4, "keys") split into initiator->responder and responder->initiator.
 *
 * Each identity signs the transcript hash, which covers both ephemeral keys, so a man in the middle
 * who substitutes an ephemeral key breaks the signature; the identities travel encrypted.
 *
 * Record = epoch (u16 BE) | seq (u48 BE) | AES-256-GCM(ciphertext | tag16); the 12-byte nonce is
 * 0x00000000 | epoch | seq, so the 8-byte header is authenticated through the nonce. Overhead: 24 bytes.
 * Optional associated data (`aad`, e.g. a record-kind byte the caller sends in the clear) is authenticated,
 * not encrypted and not sent: both sides must pass the same bytes. Empty aad = no aad (the same record).
 * The sender moves to epoch + 1 (key_{e+1} = HKDF(key_e, "rekey")) after `rekeyAfterRecords` records or
 * `rekeyAfterBytes` bytes; the receiver follows when it sees the new epoch (signalled in-band).
 */
import * as nodeCrypto from 'node:crypto'
import { AbortError, ConnectionClosedError, DecryptionError, PeerMismatchError, ReplayError, systemClock, type AbortOptions, type Clock, type KeyResolver } from '@kos-mesh/interface'
import { getBackend, type AeadKey, type BackendName, type CryptoBackend, type X25519KeyPair } from './backend.js'
import type { Identity } from './identity.js'
import { checkedAgree } from './identity.js'
import { concatBytes, utf8 } from './bytes.js'
import { publicKeyFromDidKey, MAX_DID_LENGTH } from './did-key.js'
import { ed25519Verify } from './verifier.js'
import {
  HandshakeError, HandshakeTimeoutError, RecordOutOfOrderError, RecordTooLargeError, SessionExpiredError, TruncatedRecordError,
} from './errors.js'

/**
 * Name of the channel protocol, bound into the handshake transcript: its version and the primitives it
 * uses.
 */
export const CHANNEL_PROTOCOL = 'KLP-CHANNEL-v1_X25519_Ed25519_AES256GCM_SHA256'
const VERSION = 1
const M1 = 1
const M2 = 2
const M3 = 3
const LABEL_R = utf8.encode('KLP-CHANNEL-v1 responder signature')
const LABEL_I = utf8.encode('KLP-CHANNEL-v1 initiator signature')
const INFO_HS = utf8.encode('KLP-CHANNEL-v1 handshake keys')
const INFO_SESSION = utf8.encode('KLP-CHANNEL-v1 session keys')
const INFO_REKEY = utf8.encode('KLP-CHANNEL-v1 rekey')
const EMPTY = new Uint8Array(0)
const FATAL_UTF8 = new TextDecoder('utf-8', { fatal: true })
const ZERO_NONCE = new Uint8Array(12)
/** Largest handshake message accepted (DIDs of other methods may be long). */
export const MAX_HANDSHAKE_MESSAGE = 2 + 32 + 2 + MAX_DID_LENGTH + 64 + 16
/** Bytes a record adds to its plaintext: 8-byte header + 16-byte tag. */
export const RECORD_OVERHEAD = 24
const MAX_SEQ = 2 ** 48 - 1
const MAX_EPOCH = 0xffff

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
 * Options of a channel handshake: this side's identity and role, the peer it expects, the deadline and the
 * backend.
 */
export interface HandshakeOptions extends SessionOptions {
  identity: Identity
  role: HandshakeRole
  /** Refuse the peer unless it authenticates as this DID (PeerMismatchError). */
  expectedRemoteDid?: string
  /** Whole-handshake deadline for performHandshake. Default: 10 000 ms. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Backend for the session's AES-GCM, X25519 and signature checks. Default: the identity's backend. */
  backend?: BackendName
  /** Resolves non-did:key peer DIDs to their Ed25519 key. did:key needs no resolver. */
  resolver?: KeyResolver
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

// ------------------------------------------------------------------ record protection

interface DirectionKey {
  epoch: number
  key: Uint8Array
  seal(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): Uint8Array
  sealParts(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): [Uint8Array, Uint8Array, Uint8Array]
  open(record: Uint8Array, aad: Uint8Array | undefined): Uint8Array
}

/**
 * node:crypto record protection. Per record: one cipher object (node has no reusable GCM context),
 * the KeyObject created once per direction and epoch, a reused nonce buffer written byte by byte
 * (no views allocated), and one record-sized allocation on encrypt. node:crypto cannot write into a
 * caller buffer, so `seal` copies the ciphertext it returns once, behind the header; that copy is the
 * only work beyond a bare createCipheriv/createDecipheriv pair (see bench/index.ts). `sealParts` skips
 * it (the caller writes the parts with writev). Decrypt reads the record in place (subarrays) and
 * returns the buffer node:crypto produced, without copying.
 */
class NativeDirectionKey implements DirectionKey {
  private readonly keyObject: nodeCrypto.KeyObject
  private readonly nonce = Buffer.alloc(12)
  constructor(readonly epoch: number, readonly key: Uint8Array) {
    this.keyObject = nodeCrypto.createSecretKey(key)
  }
  seal(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
    const nonce = this.nonce
    const n = plaintext.length
    const out = Buffer.allocUnsafe(8 + n + 16)
    for (let i = 0; i < 8; i++) { const b = header[i] as number; nonce[4 + i] = b; out[i] = b }
    const c = nodeCrypto.createCipheriv('aes-256-gcm', this.keyObject, nonce)
    if (aad !== undefined && aad.length > 0) c.setAAD(aad)
    out.set(c.update(plaintext), 8)
    c.final() // GCM is a stream mode: final() adds no bytes, it computes the tag
    out.set(c.getAuthTag(), 8 + n)
    // a plain Uint8Array view: Buffer#slice would share memory, Uint8Array#slice copies
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
  }
  sealParts(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): [Uint8Array, Uint8Array, Uint8Array] {
    const nonce = this.nonce
    const head = new Uint8Array(8)
    for (let i = 0; i < 8; i++) { const b = header[i] as number; nonce[4 + i] = b; head[i] = b }
    const c = nodeCrypto.createCipheriv('aes-256-gcm', this.keyObject, nonce)
    if (aad !== undefined && aad.length > 0) c.setAAD(aad)
    const ct = c.update(plaintext)
    c.final()
    const tag = c.getAuthTag()
    return [head, new Uint8Array(ct.buffer, ct.byteOffset, ct.byteLength), new Uint8Array(tag.buffer, tag.byteOffset, tag.byteLength)]
  }
  open(record: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
    const nonce = this.nonce
    for (let i = 0; i < 8; i++) nonce[4 + i] = record[i] as number
    const end = record.length - 16
    // the tag passed is always exactly the last 16 bytes, so no authTagLength option is needed
    const d = nodeCrypto.createDecipheriv('aes-256-gcm', this.keyObject, nonce)
    d.setAuthTag(record.subarray(end))
    if (aad !== undefined && aad.length > 0) d.setAAD(aad)
    const body = d.update(record.subarray(8, end))
    try { d.final() } catch (err) { throw new DecryptionError('record authentication failed', { cause: err }) }
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  }
}

class GenericDirectionKey implements DirectionKey {
  private readonly aead: AeadKey
  private readonly nonce = new Uint8Array(12)
  constructor(readonly epoch: number, readonly key: Uint8Array, crypto: CryptoBackend) {
    this.aead = crypto.aead(key)
  }
  seal(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
    this.nonce.set(header, 4)
    const ct = this.aead.seal(this.nonce, plaintext, aad ?? EMPTY)
    const out = new Uint8Array(8 + ct.length)
    out.set(header, 0); out.set(ct, 8)
    return out
  }
  sealParts(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): [Uint8Array, Uint8Array, Uint8Array] {
    this.nonce.set(header, 4)
    const sealed = this.aead.seal(this.nonce, plaintext, aad ?? EMPTY)
    const end = sealed.length - 16
    return [header.slice(0, 8), sealed.subarray(0, end), sealed.subarray(end)]
  }
  open(record: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
    for (let i = 0; i < 8; i++) this.nonce[4 + i] = record[i] as number
    return this.aead.open(this.nonce, record.subarray(8), aad ?? EMPTY)
  }
}

function makeKey(crypto: CryptoBackend, epoch: number, key: Uint8Array): DirectionKey {
  return crypto.name === 'native' ? new NativeDirectionKey(epoch, key) : new GenericDirectionKey(epoch, key, crypto)
}

function nextKey(crypto: CryptoBackend, k: DirectionKey): DirectionKey {
  if (k.epoch >= MAX_EPOCH) throw new SessionExpiredError(`expected fewer than ${MAX_EPOCH} rekeys, the session used them all`)
  return makeKey(crypto, k.epoch + 1, crypto.hkdfSha256(k.key, EMPTY, INFO_REKEY, 32))
}

/** Sliding window over sequence numbers of one epoch (size 1 = strict order). */
class SeqWindow {
  top = -1
  private readonly ring: Float64Array
  constructor(readonly size: number) { this.ring = new Float64Array(Math.max(size, 1)).fill(-1) }
  /** 0 = acceptable, 1 = replay (old or seen), 2 = gap (strict mode only). */
  check(seq: number, strict: boolean): 0 | 1 | 2 {
    if (strict) return seq === this.top + 1 ? 0 : seq <= this.top ? 1 : 2
    if (seq > this.top) return 0
    if (this.top - seq >= this.size) return 1
    return this.ring[seq % this.size] === seq ? 1 : 0
  }
  accept(seq: number): void {
    if (seq > this.top) this.top = seq
    this.ring[seq % this.ring.length] = seq
  }
}

class Session implements SecureSession {
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

// ------------------------------------------------------------------ handshake state machine

/**
 * What one step of the handshake state machine produced: a message to send and, once finished, the session.
 */
export interface HandshakeStep {
  /** Message to send to the peer, if any. */
  reply?: Uint8Array
  /** Set once this side has finished. */
  session?: SecureSession
}

/** Sans-I/O handshake. The caller moves whole messages; see performHandshake for the I/O loop. */
export interface Handshake {
  readonly role: HandshakeRole
  /** The initiator's first message; `undefined` for the responder. Call once. */
  start(): Uint8Array | undefined
  /** Feeds one message from the peer. Throws HandshakeError, PeerMismatchError, TruncatedRecordError... */
  receive(message: Uint8Array, options?: AbortOptions): Promise<HandshakeStep>
  readonly done: boolean
}

function sha(crypto: CryptoBackend, ...parts: Uint8Array[]): Uint8Array {
  return crypto.sha256(concatBytes(...parts))
}

class HandshakeImpl implements Handshake {
  readonly role: HandshakeRole
  done = false
  private state: 'new' | 'wait-m1' | 'wait-m2' | 'wait-m3' | 'done' | 'failed'
  private readonly crypto: CryptoBackend
  private readonly ePair: X25519KeyPair
  private readonly ePublic: Uint8Array
  private h: Uint8Array
  private kR: Uint8Array | undefined
  private kI: Uint8Array | undefined
  private ck: Uint8Array | undefined
  private remoteDid: string | undefined

  constructor(private readonly options: HandshakeOptions) {
    if (options.role !== 'initiator' && options.role !== 'responder') throw new HandshakeError(`expected role initiator or responder, got ${String(options.role)}`)
    this.role = options.role
    this.crypto = getBackend(options.backend ?? options.identity.backend)
    this.ePair = this.crypto.x25519KeyPair()
    this.ePublic = this.ePair.publicKey
    this.h = this.crypto.sha256(utf8.encode(CHANNEL_PROTOCOL))
    this.state = this.role === 'initiator' ? 'new' : 'wait-m1'
  }

  start(): Uint8Array | undefined {
    if (this.role === 'responder') return undefined
    if (this.state !== 'new') throw new HandshakeError('expected start() to be called once, before any message')
    const m1 = new Uint8Array(34)
    m1[0] = VERSION; m1[1] = M1; m1.set(this.ePublic, 2)
    this.h = sha(this.crypto, this.h, m1)
    this.state = 'wait-m2'
    return m1
  }

  async receive(message: Uint8Array, options: AbortOptions = {}): Promise<HandshakeStep> {
    try {
      return await this.step(message, options)
    } catch (err) {
      this.state = 'failed'
      throw err
    }
  }

  private header(message: Uint8Array, type: number, min: number): void {
    if (!(message instanceof Uint8Array)) throw new HandshakeError(`expected a Uint8Array handshake message, got ${typeof message}`)
    if (message.length > MAX_HANDSHAKE_MESSAGE) throw new RecordTooLargeError(`expected a handshake message of at most ${MAX_HANDSHAKE_MESSAGE} bytes, got ${message.length}`)
    if (message.length < min) throw new TruncatedRecordError(`expected a handshake message of at least ${min} bytes, got ${message.length}`)
    if (message[0] !== VERSION) throw new HandshakeError(`expected channel version ${VERSION}, got ${message[0] ?? 'nothing'}`)
    if (message[1] !== type) throw new HandshakeError(`expected handshake message type ${type}, got ${message[1] ?? 'nothing'}`)
  }

  private deriveHandshakeKeys(remoteEphemeral: Uint8Array): void {
    let dh: Uint8Array
    try { dh = checkedAgree(this.ePair, remoteEphemeral) } catch (err) {
      throw new HandshakeError('the peer sent an invalid ephemeral key', { cause: err })
    }
    const okm = this.crypto.hkdfSha256(dh, this.h, INFO_HS, 96)
    this.kR = okm.subarray(0, 32); this.kI = okm.subarray(32, 64); this.ck = okm.subarray(64, 96)
  }

  private identityPayload(label: Uint8Array): Uint8Array {
    const did = utf8.encode(this.options.identity.did)
    const sig = this.options.identity.sign(concatBytes(label, this.h, did))
    const p = new Uint8Array(2 + did.length + 64)
    p[0] = did.length >>> 8; p[1] = did.length & 0xff
    p.set(did, 2); p.set(sig, 2 + did.length)
    return p
  }

  private async checkIdentityPayload(payload: Uint8Array, label: Uint8Array, signedHash: Uint8Array, options: AbortOptions): Promise<string> {
    if (payload.length < 2 + 64) throw new HandshakeError('expected an identity payload with a DID and a signature')
    const len = ((payload[0] as number) << 8) | (payload[1] as number)
    if (len === 0 || len > MAX_DID_LENGTH || payload.length !== 2 + len + 64) throw new HandshakeError(`expected an identity payload of ${2 + len + 64} bytes, got ${payload.length}`)
    const didBytes = payload.subarray(2, 2 + len)
    let did: string
    try { did = FATAL_UTF8.decode(didBytes) } catch (err) {
      throw new HandshakeError('expected the peer DID to be UTF-8, got invalid bytes', { cause: err })
    }
    const sig = payload.subarray(2 + len)
    const expected = this.options.expectedRemoteDid
    if (expected !== undefined && expected !== did) {
      throw new PeerMismatchError(`expected the peer to be ${expected}, got ${did}`)
    }
    let publicKey: Uint8Array
    if (did.startsWith('did:key:')) {
      try { publicKey = publicKeyFromDidKey(did) } catch (err) { throw new HandshakeError('the peer sent an invalid did:key', { cause: err }) }
    } else if (this.options.resolver !== undefined) {
      publicKey = await this.options.resolver.resolveKey(did, options)
    } else {
      throw new HandshakeError(`expected a did:key peer (no resolver configured), got ${did.slice(0, 32)}`)
    }
    if (!ed25519Verify(publicKey, concatBytes(label, signedHash, didBytes), sig, { backend: this.crypto.name })) {
      throw new HandshakeError('the peer signature over the handshake transcript is invalid (wrong key or man in the middle)')
    }
    return did
  }

  private finish(): SecureSession {
    const okm = this.crypto.hkdfSha256(this.ck as Uint8Array, this.h, INFO_SESSION, 64)
    const i2r = okm.slice(0, 32)
    const r2i = okm.slice(32, 64)
    this.state = 'done'
    this.done = true
    const initiator = this.role === 'initiator'
    return new Session(this.options.identity.did, this.remoteDid as string, this.role, this.h,
      initiator ? i2r : r2i, initiator ? r2i : i2r, this.crypto, this.options)
  }

  private async step(message: Uint8Array, options: AbortOptions): Promise<HandshakeStep> {
    switch (this.state) {
      case 'wait-m1': {
        this.header(message, M1, 34)
        if (message.length !== 34) throw new HandshakeError(`expected a first message of 34 bytes, got ${message.length}`)
        this.h = sha(this.crypto, this.h, message)
        const eI = message.slice(2, 34)
        const head = new Uint8Array(34)
        head[0] = VERSION; head[1] = M2; head.set(this.ePublic, 2)
        this.h = sha(this.crypto, this.h, head)
        this.deriveHandshakeKeys(eI)
        const payload = this.identityPayload(LABEL_R)
        const body = this.crypto.aead(this.kR as Uint8Array).seal(ZERO_NONCE, payload, this.h)
        this.h = sha(this.crypto, this.h, body)
        this.state = 'wait-m3'
        return { reply: concatBytes(head, body) }
      }
      case 'wait-m2': {
        this.header(message, M2, 34 + 2 + 64 + 16)
        const head = message.subarray(0, 34)
        this.h = sha(this.crypto, this.h, head)
        this.deriveHandshakeKeys(message.slice(2, 34))
        const h2 = this.h
        const body = message.subarray(34)
        let payload: Uint8Array
        try { payload = this.crypto.aead(this.kR as Uint8Array).open(ZERO_NONCE, body, h2) } catch (err) {
          throw new HandshakeError('could not decrypt the responder identity (man in the middle?)', { cause: err })
        }
        this.remoteDid = await this.checkIdentityPayload(payload, LABEL_R, h2, options)
        this.h = sha(this.crypto, this.h, body)
        const mine = this.identityPayload(LABEL_I)
        const m3head = Uint8Array.of(VERSION, M3)
        const m3body = this.crypto.aead(this.kI as Uint8Array).seal(ZERO_NONCE, mine, this.h)
        this.h = sha(this.crypto, this.h, m3head, m3body)
        return { reply: concatBytes(m3head, m3body), session: this.finish() }
      }
      case 'wait-m3': {
        this.header(message, M3, 2 + 2 + 64 + 16)
        const h3 = this.h
        const body = message.subarray(2)
        let payload: Uint8Array
        try { payload = this.crypto.aead(this.kI as Uint8Array).open(ZERO_NONCE, body, h3) } catch (err) {
          throw new HandshakeError('could not decrypt the initiator identity (man in the middle?)', { cause: err })
        }
        this.remoteDid = await this.checkIdentityPayload(payload, LABEL_I, h3, options)
        this.h = sha(this.crypto, this.h, message.subarray(0, 2), body)
        return { session: this.finish() }
      }
      default:
        throw new HandshakeError(`expected no more handshake messages in state ${this.state}`)
    }
  }
}

/** Creates the sans-I/O handshake state machine. */
export function createHandshake(options: HandshakeOptions): Handshake {
  return new HandshakeImpl(options)
}

/** What performHandshake needs from a transport: whole handshake messages in and out. */
export interface HandshakeIO {
  /** Sends one handshake message to the peer. */
  write(msg: Uint8Array): Promise<void> | void
  /** Resolves with the next handshake message from the peer. */
  read(options?: { signal?: AbortSignal }): Promise<Uint8Array>
}

/**
 * Runs the handshake over `io` (the caller frames messages). Resolves with the session; rejects with
 * HandshakeTimeoutError after `timeoutMs` (default 10 s), AbortError on `signal`, PeerMismatchError,
 * HandshakeError, TruncatedRecordError or RecordTooLargeError.
 */
export async function performHandshake(io: HandshakeIO, options: HandshakeOptions): Promise<SecureSession> {
  const timeoutMs = options.timeoutMs ?? 10_000
  const ac = new AbortController()
  const outer = options.signal
  if (outer?.aborted === true) throw new AbortError(undefined, { cause: outer.reason })
  const clock = options.clock ?? systemClock
  const timer = clock.setTimeout(() => { ac.abort(new HandshakeTimeoutError(`the handshake did not finish within ${timeoutMs} ms`)) }, timeoutMs)
  const onAbort = (): void => { ac.abort(new AbortError(undefined, { cause: outer?.reason })) }
  outer?.addEventListener('abort', onAbort, { once: true })
  const aborted = new Promise<never>((_resolve, reject) => {
    ac.signal.addEventListener('abort', () => { reject(ac.signal.reason as Error) }, { once: true })
  })
  aborted.catch(() => {})
  const guard = <T>(p: Promise<T> | T): Promise<T> => Promise.race([Promise.resolve(p), aborted])
  try {
    const hs = createHandshake(options)
    const first = hs.start()
    if (first !== undefined) await guard(io.write(first))
    for (;;) {
      const msg = await guard(io.read({ signal: ac.signal }))
      const step = await guard(hs.receive(msg, { signal: ac.signal }))
      if (step.reply !== undefined) await guard(io.write(step.reply))
      if (step.session !== undefined) return step.session
    }
  } finally {
    clock.clearTimeout(timer)
    outer?.removeEventListener('abort', onAbort)
    if (!ac.signal.aborted) ac.abort(new AbortError('handshake finished'))
  }
}
