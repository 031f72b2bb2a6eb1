/**
 * Security seam: the shape of the channel handshake this transport runs on every socket. It matches
 * `performHandshake` / `SecureSession` of @kos-mesh/did-security, so that function can be passed
 * (and is the default); tests may pass another implementation with the same contract.
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
  /** Epoch ms after which the session must not be used any more (optional). */
  readonly expiresAt?: number
  encrypt(plaintext: Uint8Array): Uint8Array
  /** Throws (ReplayError for a replayed record, DecryptionError otherwise) when the record is bad. */
  decrypt(record: Uint8Array): Uint8Array
}

export interface HandshakeOptions<Identity = unknown> {
  identity: Identity
  role: 'initiator' | 'responder'
  expectedRemoteDid?: string
  timeoutMs?: number
  signal?: AbortSignal
}

export type HandshakeFn<Identity = unknown> = (io: HandshakeIo, options: HandshakeOptions<Identity>) => Promise<SecureSession>
