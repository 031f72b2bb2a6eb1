/**
 * The handshake seam: the shape of the channel handshake run on every socket. It is the contract of
 * `performHandshake` / `SecureSession` in @kos-mesh/did-security (the default); `init.handshake` may
 * supply another implementation of the same contract (tests use this to inject stalls or faults).
 */
import type { AbortOptions, Clock } from '@kos-mesh/interface'

/** Message-oriented I/O the handshake runs over (one call = one framed handshake message). */
export interface HandshakeIo {
  /**
   * Sends one handshake message as one handshake frame (kind 0x80). Throws `FrameTooLargeError` when
   * `msg` is larger than `maxHandshakeFrameSize` (default 4 KiB), or the error that already ended the
   * connection.
   */
  write(msg: Uint8Array): Promise<void> | void
  /**
   * Resolves with the next handshake message from the peer (at most 4 are queued unread). Only one
   * read may be pending at a time (a second rejects with `InvalidParametersError`); rejects with
   * `AbortError` when `options.signal` fires, or with the error that ended the connection (EOF, bad
   * or oversized frame).
   */
  read(options?: AbortOptions): Promise<Uint8Array>
}

/** An established, authenticated channel: one encrypted record per call. */
export interface SecureSession {
  readonly localDid: string
  /** The DID the remote side proved it controls. */
  readonly remoteDid: string
  /** Epoch ms after which the session must not be used any more. */
  readonly expiresAt?: number
  /**
   * Seals one record; `aad` (the 1-byte record kind) must be authenticated, it is sent outside the
   * record. Must not keep a reference to `plaintext` (the caller may reuse that buffer).
   */
  encrypt(plaintext: Uint8Array, aad?: Uint8Array): Uint8Array
  /**
   * Optional: the same record as separate buffers (concatenated they equal `encrypt`'s result), written
   * with one writev and no copy of the payload. did-security's session has it.
   */
  encryptParts?(plaintext: Uint8Array, aad?: Uint8Array): Uint8Array[]
  /**
   * Opens one record with the same `aad`. `record` may be a view into a socket buffer: read it
   * synchronously, do not keep it. Throws (ReplayError for a replayed record, DecryptionError
   * otherwise) when the record is bad.
   */
  decrypt(record: Uint8Array, aad?: Uint8Array): Uint8Array
  /** Forgets the keys (called when the connection closes). */
  close?(): void
}

/**
 * What the transport passes to the handshake of each socket (did-security's `HandshakeOptions` shape).
 *
 * @typeParam Identity - the local identity type (a did-security `Identity` for the default handshake).
 */
export interface HandshakeOptions<Identity = unknown> {
  /** The local identity to prove (`TcpComponents.identity`). */
  identity: Identity
  /** `'initiator'` on the dialing side, `'responder'` on the listening side. */
  role: 'initiator' | 'responder'
  /**
   * The DID the remote must prove (the dial's `remotePeer` or the address DID); absent on inbound
   * sockets. The transport checks it again after the handshake (`PeerMismatchError`).
   */
  expectedRemoteDid?: string
  /**
   * Deadline of the whole handshake in ms (the transport passes `handshakeTimeoutMs`, default 5000);
   * the transport enforces it too, so a handshake that ignores it still fails with `HandshakeTimeoutError`.
   */
  timeoutMs?: number
  /** The transport's clock: the handshake's timers and the session's lifetime use it. */
  clock?: Clock
  /** Fires when the dial's signal fires, the listener closes or the transport's handshake deadline passes. */
  signal?: AbortSignal
  /** Largest plaintext per record the session must accept. */
  maxRecordSize?: number
}

/**
 * The channel handshake `TcpInit.handshake` may replace (a test seam; default did-security's
 * `performHandshake`). It runs the handshake messages over `io` and resolves with the established
 * session, whose `remoteDid` the peer proved; it should reject (e.g. `HandshakeError`) on any bad
 * message. A session without `remoteDid`, `encrypt` or `decrypt` makes the transport fail the
 * connection with `HandshakeError`.
 *
 * @typeParam Identity - the local identity type (a did-security `Identity` for the default handshake).
 */
export type HandshakeFn<Identity = unknown> = (io: HandshakeIo, options: HandshakeOptions<Identity>) => Promise<SecureSession>
