/**
 * The handshake seam: the shape of the channel handshake run on every socket. It is the contract of
 * `performHandshake` / `SecureSession` in @kos-mesh/did-security (the default); `init.handshake` may
 * supply another implementation of the same contract (tests use this to inject stalls or faults).
 */
import type { AbortOptions } from '@kos-mesh/interface'

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
  /** Must not keep a reference to `plaintext` (the transport reuses that buffer). */
  encrypt(plaintext: Uint8Array): Uint8Array
  /** Throws (ReplayError for a replayed record, DecryptionError otherwise) when the record is bad. */
  decrypt(record: Uint8Array): Uint8Array
  /** Forgets the keys (called when the connection closes). */
  close?(): void
}

export interface HandshakeOptions<Identity = unknown> {
  identity: Identity
  role: 'initiator' | 'responder'
  expectedRemoteDid?: string
  timeoutMs?: number
  signal?: AbortSignal
  /** Largest plaintext per record the session must accept. */
  maxRecordSize?: number
}

export type HandshakeFn<Identity = unknown> = (io: HandshakeIo, options: HandshakeOptions<Identity>) => Promise<SecureSession>
