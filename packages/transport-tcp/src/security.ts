/**
 * The handshake seam: the shape of the channel handshake run on every socket. It is the contract of
 * `performHandshake` / `SecureSession` in @kos-mesh/did-security (the default); `init.handshake` may
 * supply another implementation of the same contract (tests use this to inject stalls or faults).
 */
import type { AbortOptions, Clock } from '@kos-mesh/interface'

/** Message-oriented I/O the handshake runs over (one call = one framed handshake message). */
export interface HandshakeIo {
  write(msg: Uint8Array): Promise<void> | void
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

export interface HandshakeOptions<Identity = unknown> {
  identity: Identity
  role: 'initiator' | 'responder'
  expectedRemoteDid?: string
  timeoutMs?: number
  /** The transport's clock: the handshake's timers and the session's lifetime use it. */
  clock?: Clock
  signal?: AbortSignal
  /** Largest plaintext per record the session must accept. */
  maxRecordSize?: number
}

export type HandshakeFn<Identity = unknown> = (io: HandshakeIo, options: HandshakeOptions<Identity>) => Promise<SecureSession>
