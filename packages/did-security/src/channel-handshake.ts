/**
 * The sans-I/O handshake of the secure channel: its messages, transcript hash and key schedule, and
 * the state machine that authenticates the peer and hands over a Session (channel-session.ts).
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
 */
import { PeerMismatchError, type AbortOptions, type KeyResolver } from '@kos-mesh/interface'
import { getBackend, type BackendName, type CryptoBackend, type X25519KeyPair } from './backend.js'
import type { Identity } from './identity.js'
import { checkedAgree } from './identity.js'
import { concatBytes, utf8 } from './bytes.js'
import { publicKeyFromDidKey, MAX_DID_LENGTH } from './did-key.js'
import { ed25519Verify } from './verifier.js'
import { HandshakeError, RecordTooLargeError, TruncatedRecordError } from './errors.js'
import { Session, type HandshakeRole, type SecureSession, type SessionOptions } from './channel-session.js'

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
const FATAL_UTF8 = new TextDecoder('utf-8', { fatal: true })
const ZERO_NONCE = new Uint8Array(12)
/** Largest handshake message accepted (DIDs of other methods may be long). */
export const MAX_HANDSHAKE_MESSAGE = 2 + 32 + 2 + MAX_DID_LENGTH + 64 + 16

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

  /** Decrypts the peer's identity payload (AEAD under `key`, aad = `signedHash`) and checks it. */
  private openIdentityPayload(key: Uint8Array, body: Uint8Array, label: Uint8Array, signedHash: Uint8Array, peer: HandshakeRole, options: AbortOptions): Promise<string> {
    let payload: Uint8Array
    try { payload = this.crypto.aead(key).open(ZERO_NONCE, body, signedHash) } catch (err) {
      throw new HandshakeError(`could not decrypt the ${peer} identity (man in the middle?)`, { cause: err })
    }
    return this.checkIdentityPayload(payload, label, signedHash, options)
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
        this.remoteDid = await this.openIdentityPayload(this.kR as Uint8Array, body, LABEL_R, h2, 'responder', options)
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
        this.remoteDid = await this.openIdentityPayload(this.kI as Uint8Array, body, LABEL_I, h3, 'initiator', options)
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
