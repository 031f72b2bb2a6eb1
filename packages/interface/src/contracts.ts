/**
 * Contracts between kos-mesh packages. Implementations live in other packages; this file holds
 * only types so that any package (or a third party) can implement them without pulling code in.
 */
import type { KLPMessage, KLPMessageType, ProcessingResult, TrustObservation, TrustRequirements } from './model.js'

/** Options for any cancellable async call. */
export interface AbortOptions {
  signal?: AbortSignal
}

/** A component with a lifecycle. No I/O may happen before `start()`. */
export interface Startable {
  /** Starts the component (its I/O and timers begin here, not at construction). */
  start(): void | Promise<void>
  /** Stops the component and releases what it holds. */
  stop(): void | Promise<void>
  /** Whether the component is started. */
  isStarted?(): boolean
}

/** An opaque handle of a timer set on a `Clock`. */
export interface TimerHandle {
  /** The clock time (ms) the timer is due at. */
  readonly at: number
}

/** Options of `Clock.setTimeout`. */
export interface TimerOptions {
  /**
   * The timer alone does not keep the process alive (Node's `unref`). Default false. Meaningless
   * for virtual clocks.
   */
  unref?: boolean
}

/**
 * Injected time: every package takes the time and sets its timers only through a Clock, so a
 * simulator can run whole meshes in virtual time, deterministically. `systemClock` (this package)
 * is the real one; the memory transport's network clock is the virtual one.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number
  /** Runs `fn` once after `ms` of this clock's time. */
  setTimeout(fn: () => void, ms: number, options?: TimerOptions): TimerHandle
  /** Cancels a timer (a handle of another clock, or one that already ran, is ignored). */
  clearTimeout(handle: TimerHandle | undefined): void
  /** Resolves after `ms` of this clock's time; rejects with AbortError when the signal fires. */
  sleep(ms: number, options?: AbortOptions): Promise<void>
}

/** Injected structured logger. Every method must be cheap when the level is disabled. */
export interface Logger {
  /** Logs a debug line: detail for developers. */
  debug(msg: string, fields?: Record<string, unknown>): void
  /** Logs an info line: what an operator wants to know happened. */
  info(msg: string, fields?: Record<string, unknown>): void
  /** Logs a warning: something went wrong and was handled. */
  warn(msg: string, fields?: Record<string, unknown>): void
  /** Logs an error: something failed that needs attention. */
  error(msg: string, fields?: Record<string, unknown>): void
}

// ---------------------------------------------------------------- signatures

/** Signature algorithms a Signer or Verifier may use (only Ed25519). */
export type SignatureAlgorithm = 'Ed25519'

/** Produces signatures for one identity. */
export interface Signer {
  readonly algorithm: SignatureAlgorithm
  /** Key id put in `KLPMessage.signer`: a DID URL such as `did:key:z6Mk...#z6Mk...`, or a DID. */
  readonly keyId: string
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array
  /** Signs `data` with this identity's private key; returns (or resolves to) the raw signature. */
  sign(data: Uint8Array): Uint8Array | Promise<Uint8Array>
}

/** Verifies raw signatures under one rule (see did-security for the rule). */
export interface Verifier {
  readonly algorithm: SignatureAlgorithm
  /** Whether `signature` is a valid signature of `data` by `publicKey` (under the one verification rule). */
  verify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean | Promise<boolean>
}

/** Resolves a key id (DID URL or DID) to the raw public key that may sign for it. */
export interface KeyResolver {
  /** Resolves a key id (`did:key:z6Mk...#z6Mk...`) to its raw Ed25519 public key; rejects when it cannot. */
  resolveKey(keyId: string, options?: AbortOptions): Promise<Uint8Array>
}

/** Signature checking as the codec and router use it: a key resolver and a verifier together. */
export interface SignatureVerifier {
  /** Returns true only when `signature` is valid for `data` under the key named by `keyId`. */
  verifySignature(keyId: string, data: Uint8Array, signature: Uint8Array, options?: AbortOptions): Promise<boolean>
}

/** A minimal DID document view: what the mesh needs from resolution. */
export interface DidDocumentView {
  id: string
  /** Ed25519 verification keys by key id. */
  verificationKeys: ReadonlyArray<{ id: string; publicKey: Uint8Array }>
  /** X25519 key agreement keys by key id. */
  keyAgreementKeys: ReadonlyArray<{ id: string; publicKey: Uint8Array }>
}

/** Resolves DIDs to their documents. */
export interface DidResolver {
  /**
   * Resolves a DID to the view of its DID document this project uses (its verification and key agreement
   * keys).
   */
  resolveDid(did: string, options?: AbortOptions): Promise<DidDocumentView>
}

// ---------------------------------------------------------------- transports

/**
 * A transport address, as a URL-like string: `tcp://127.0.0.1:4001`, `memory://node-a`.
 * A peer address may append the expected DID: `tcp://127.0.0.1:4001/did:key:z6Mk...`.
 */
export type TransportAddress = string

/** Who opened a connection: the remote (`inbound`) or this node (`outbound`). */
export type ConnectionDirection = 'inbound' | 'outbound'
/** The state of a connection. */
export type ConnectionStatus = 'open' | 'closing' | 'closed'

/**
 * A message-oriented, authenticated, ordered connection to one peer. Frames are opaque byte
 * arrays (KLP frames); the transport keeps their boundaries.
 *
 * Inbound frames are read with `for await (const frame of connection)`; the transport buffers
 * at most a bounded number of bytes and applies backpressure (or closes the connection) beyond.
 */
export interface Connection extends AsyncIterable<Uint8Array> {
  readonly id: string
  /** The DID the transport authenticated for the remote side. */
  readonly remotePeer: string
  readonly remoteAddr: TransportAddress
  readonly direction: ConnectionDirection
  readonly status: ConnectionStatus
  /**
   * Resolves once the frame is accepted by the transport's bounded send buffer. Transports that
   * bound their outbound bytes reject at once (e.g. `SendBufferFullError`) instead of queuing past
   * the bound, and abort a connection whose peer stops draining it (e.g. `SlowPeerError`).
   */
  send(frame: Uint8Array, options?: AbortOptions): Promise<void>
  /**
   * Optional: bytes this connection currently holds on the way out (frames waiting for their turn
   * plus the transport's own write buffer), i.e. what the transport's outbound bound counts.
   */
  readonly outboundBufferedBytes?: number
  /** Graceful close: pending frames are flushed. */
  close(options?: AbortOptions): Promise<void>
  /** Immediate close with an error; pending frames are dropped. */
  abort(err: Error): void
  /** Resolves when the connection is fully closed (for any reason). */
  readonly closed: Promise<void>
}

export interface DialOptions extends AbortOptions {
  /** Expected remote DID; a transport that authenticates must refuse a different peer. */
  remotePeer?: string
}

/** A listening endpoint of a transport. */
export interface Listener {
  /** The addresses actually bound (with the real port when 0 was asked). */
  addrs(): TransportAddress[]
  /** Stops accepting new connections (dials to it then fail with UnreachableError). */
  close(): Promise<void>
}

/** Called with each connection a listener accepts. */
export type ConnectionHandler = (connection: Connection) => void

/**
 * A way to reach other nodes: dials and listens for authenticated, message-oriented connections (memory,
 * TCP, libp2p).
 */
export interface Transport {
  /** Short name: `memory`, `tcp`. */
  readonly name: string
  /** True when this transport can dial the address. */
  canDial(addr: TransportAddress): boolean
  /** Opens an authenticated connection to `addr`; with `remotePeer` in the options, refuses anybody else. */
  dial(addr: TransportAddress, options?: DialOptions): Promise<Connection>
  /** Listens on `addr` and hands each accepted, authenticated connection to `onConnection`. */
  listen(addr: TransportAddress, onConnection: ConnectionHandler, options?: AbortOptions): Promise<Listener>
  /** Closes every listener and connection. */
  close(): Promise<void>
}

// ---------------------------------------------------------------- trust

/**
 * The answer of a trust check: passed or not, the subject's score and endorsements, and the reason when it
 * did not pass.
 */
export interface TrustCheck {
  passed: boolean
  /** 0..10 */
  score: number
  endorsements: number
  reason?: string
}

/** Decides whether a sender meets a message's trust requirements. */
export interface TrustEngine {
  /** Whether `subject` (a DID) meets `requirements`, with its score and endorsements, and why not. */
  check(subject: string, requirements: TrustRequirements, options?: AbortOptions): TrustCheck | Promise<TrustCheck>
  /**
   * Optional, synchronous and cheap: the subject's current trust score (0..10), or undefined when
   * the engine knows nothing of it. The router uses it on its hot path to tell *known* peers and
   * signers (score > 0) from strangers, which share bounded slices of the node (queue turns,
   * replay-window pool) instead of each getting a full one. Engines without it make everybody a
   * stranger.
   */
  peerScore?(subject: string): number | undefined
  /**
   * Optional, synchronous and cheap: true when the DID is revoked (its key holder withdrew it, or a
   * validator this node trusts enough did). The router rejects such a DID's messages with reason
   * `revoked` before anything else runs, does not relay them, and closes its connections.
   */
  isRevoked?(subject: string): boolean
  /**
   * Optional: reports an outcome this node observed of a DID (a task answered well or failed, an
   * invalid or forged message, a timeout). Engines turn these into reputation deltas. Must be cheap
   * and never throw.
   */
  observe?(subject: string, outcome: TrustObservation): void
}

// ---------------------------------------------------------------- handlers

/**
 * What a handler knows of a message besides its content: who sent it over which connection, who signed it,
 * when it arrived.
 */
export interface MessageContext {
  /** The DID authenticated by the connection the message arrived on. */
  readonly fromPeer: string
  /** The DID that signed the message (from its key id). */
  readonly signerDid: string
  readonly receivedAt: number
  readonly signal?: AbortSignal
}

/** Handles one message that passed the pipeline; returns (or resolves to) the processing result. */
export type MessageHandler = (message: KLPMessage, context: MessageContext) => ProcessingResult | Promise<ProcessingResult>

/** Handlers of messages by type. */
export interface HandlerRegistry {
  /** Sets the handler of a message type (replacing any). */
  handle(type: KLPMessageType, handler: MessageHandler): void
  /** Removes the handler of a message type. */
  unhandle(type: KLPMessageType): void
}

// ---------------------------------------------------------------- storage

/** A byte-keyed ordered store (LevelDB-like). Keys are `/`-separated strings. */
export interface KeyValueStore {
  /** The value stored under `key`, or undefined. */
  get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined>
  /** Stores `value` under `key`, replacing any. */
  put(key: string, value: Uint8Array, options?: AbortOptions): Promise<void>
  /** Removes `key` (nothing happens when it is absent). */
  delete(key: string, options?: AbortOptions): Promise<void>
  /** Whether a value is stored under `key`. */
  has(key: string, options?: AbortOptions): Promise<boolean>
  /** Entries whose key starts with `prefix`, in key order. */
  query(prefix: string, options?: AbortOptions & { limit?: number }): AsyncIterable<{ key: string; value: Uint8Array }>
}

/** Remembers message ids for replay suppression within a window. */
export interface ReplayCache {
  /** Returns true when the id was not seen (and records it until `expiresAt`), false when it is a replay. */
  checkAndRecord(id: string, expiresAt: number): boolean
  readonly size: number
}
