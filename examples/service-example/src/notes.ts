/**
 * notes: a small protocol service written only against the interface's `MessageRouter` contract.
 *
 * Each node keeps short notes by key. A note belongs to the DID that wrote it first; only that DID
 * may change it. Peers read and write a node's notes with request/response on
 * `klp://<authority>/notes`; every change is announced with a broadcast, and each node remembers
 * the latest version it heard of per (authority, key). When a peer identifies, the service asks it
 * for its list (a catch-up), so a node that joins late learns what it missed.
 *
 * It imports nothing but `@kos-mesh/interface`: it runs on klp-router, on a test double, over any
 * transport, and in the simulator's virtual time (all time comes from the injected Clock).
 */
import {
  KLPMessageType,
  ProcessingStatus,
  every,
  systemClock,
  type AbortOptions,
  type Clock,
  type KLPMessage,
  type KLPValue,
  type Logger,
  type MessageContext,
  type MessageRouter,
  type PeerInfo,
  type ProcessingResult,
  type Startable,
} from '@kos-mesh/interface'
import { InvalidNoteError, NoteRejectedError, NotesFullError, NotOwnerError } from './errors.js'

/** The path the service answers on, for requests and broadcasts: `klp://<authority>/notes`. */
export const NOTES_PATH = '/notes'

/** Wire codes of refused requests (`payload.data.error.code`, `RemoteRejectedError.reason`). */
export const NotesRejectReason = {
  INVALID_REQUEST: 'invalid_request',
  NOT_OWNER: 'not_owner',
  NOTES_FULL: 'notes_full',
} as const

/** A note as stored and sent. */
export interface Note {
  key: string
  text: string
  /** The DID that wrote it first; only it may change it. */
  owner: string
  /** 1 for the first write, +1 for every change. */
  version: number
  /** Clock time of the last write, ms since the epoch. */
  updated_at: number
}

/** What this node heard of another node's note (from a broadcast or a catch-up). */
export interface HeardNote {
  authority: string
  key: string
  version: number
  owner: string
}

export interface NotesInit {
  /** Notes this node stores. Default 256. */
  maxNotes?: number
  /** Longest text, characters. Default 1024. */
  maxTextLength?: number
  /** A note not written for this long expires, ms. Default 3,600,000 (one hour). */
  ttlMs?: number
  /** How often expired notes are swept from memory, ms. Default 60,000. */
  sweepMs?: number
  /** Remote notes remembered; the one heard of longest ago is forgotten first. Default 1,024. */
  maxHeard?: number
  /** Catch-ups running at once; peers identifying beyond it are not asked. Default 4. */
  maxCatchUps?: number
  /** Time a request to a peer may take, ms. Default 5,000. */
  requestTimeoutMs?: number
}

/** What the service needs: a router, and optionally a clock and a logger. */
export interface NotesComponents {
  router: MessageRouter
  /** Default `systemClock`. */
  clock?: Clock
  /** Default: silent. */
  logger?: Logger
}

export interface NotesEvents {
  /** A remote note was heard of, from a broadcast or a catch-up. */
  heard: CustomEvent<HeardNote>
}

export interface NotesService extends Startable {
  /** Writes a note on this node (owned by this node's DID) and announces it. */
  put(key: string, text: string, options?: AbortOptions): Promise<Note>
  /** A note of this node, undefined when there is none (or it expired). */
  get(key: string): Note | undefined
  /** This node's notes. */
  list(): Note[]
  /** Writes a note on another node; this node's DID owns it there. */
  putOn(authority: string, key: string, text: string, options?: AbortOptions): Promise<Note>
  /** Reads a note of another node; undefined when it has none. */
  fetch(authority: string, key: string, options?: AbortOptions): Promise<Note | undefined>
  /** Remote notes heard of, oldest first. */
  heard(): HeardNote[]
  addEventListener<K extends keyof NotesEvents>(type: K, listener: (evt: NotesEvents[K]) => void, options?: { once?: boolean; signal?: AbortSignal }): void
  removeEventListener<K extends keyof NotesEvents>(type: K, listener: (evt: NotesEvents[K]) => void): void
}

// ------------------------------------------------------------------ validation (never trust input)

const KEY_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/
const DID_MAX = 512

type NotesRequest = { op: 'get'; key: string } | { op: 'list' } | { op: 'put'; key: string; text: string }

function isMap(v: unknown): v is Record<string, KLPValue> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? `${JSON.stringify(v.slice(0, 40))}` : typeof v
}

function checkKey(key: unknown): string {
  if (typeof key !== 'string' || !KEY_RE.test(key)) throw new InvalidNoteError(`expected a key matching ${KEY_RE.source}, got ${describe(key)}`)
  return key
}

function checkText(text: unknown, max: number): string {
  if (typeof text !== 'string' || text.length > max) {
    throw new InvalidNoteError(`expected a text of at most ${max} characters, got ${typeof text === 'string' ? `${text.length} characters` : describe(text)}`)
  }
  return text
}

function parseRequest(data: unknown, maxText: number): NotesRequest {
  if (!isMap(data)) throw new InvalidNoteError(`expected a request map { op, ... }, got ${describe(data)}`)
  if (data.op === 'list') return { op: 'list' }
  if (data.op === 'get') return { op: 'get', key: checkKey(data.key) }
  if (data.op === 'put') return { op: 'put', key: checkKey(data.key), text: checkText(data.text, maxText) }
  throw new InvalidNoteError(`expected op "get", "put" or "list", got ${describe(data.op)}`)
}

function parseNote(v: unknown, maxText: number): Note {
  if (!isMap(v)) throw new InvalidNoteError(`expected a note map, got ${describe(v)}`)
  const { owner, version, updated_at: at } = v
  if (typeof owner !== 'string' || owner.length > DID_MAX) throw new InvalidNoteError(`expected an owner DID, got ${describe(owner)}`)
  if (!Number.isSafeInteger(version) || (version as number) < 1) throw new InvalidNoteError(`expected a version >= 1, got ${describe(version)}`)
  if (!Number.isSafeInteger(at)) throw new InvalidNoteError(`expected updated_at in ms, got ${describe(at)}`)
  return { key: checkKey(v.key), text: checkText(v.text, maxText), owner, version: version as number, updated_at: at as number }
}

/** A heard entry (broadcast payload or a list item): `{ key, version, owner }`. */
function parseHeard(v: unknown): Omit<HeardNote, 'authority'> {
  if (!isMap(v)) throw new InvalidNoteError(`expected { key, version, owner }, got ${describe(v)}`)
  const { version, owner } = v
  if (!Number.isSafeInteger(version) || (version as number) < 1) throw new InvalidNoteError(`expected a version >= 1, got ${describe(version)}`)
  if (typeof owner !== 'string' || owner.length > DID_MAX) throw new InvalidNoteError(`expected an owner DID, got ${describe(owner)}`)
  return { key: checkKey(v.key), version: version as number, owner }
}

function positive(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt
  if (!(Number.isSafeInteger(x) && x > 0)) throw new InvalidNoteError(`expected ${name} to be a positive integer, got ${String(v)}`)
  return x
}

const silent: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} }

// ------------------------------------------------------------------ the service

class Notes implements NotesService {
  private readonly router: MessageRouter
  private readonly clock: Clock
  private readonly log: Logger
  private readonly maxNotes: number
  private readonly maxText: number
  private readonly ttlMs: number
  private readonly sweepMs: number
  private readonly maxHeard: number
  private readonly maxCatchUps: number
  private readonly requestTimeoutMs: number
  /** This node's notes (bounded by maxNotes). */
  private readonly notes = new Map<string, Note>()
  /** `authority key` -> what was heard; insertion order = recency, bounded by maxHeard. */
  private readonly heardOf = new Map<string, HeardNote>()
  /** Authorities being caught up with (bounded by maxCatchUps). */
  private readonly catchingUp = new Set<string>()
  /** Aborted at stop(): cancels this service's requests. */
  private controller = new AbortController()
  private stopSweep: (() => void) | undefined
  private started = false
  private readonly events = new EventTarget()

  constructor(init: NotesInit, components: NotesComponents) {
    this.router = components.router
    this.clock = components.clock ?? systemClock
    this.log = components.logger ?? silent
    this.maxNotes = positive('maxNotes', init.maxNotes, 256)
    this.maxText = positive('maxTextLength', init.maxTextLength, 1024)
    this.ttlMs = positive('ttlMs', init.ttlMs, 3_600_000)
    this.sweepMs = positive('sweepMs', init.sweepMs, 60_000)
    this.maxHeard = positive('maxHeard', init.maxHeard, 1024)
    this.maxCatchUps = positive('maxCatchUps', init.maxCatchUps, 4)
    this.requestTimeoutMs = positive('requestTimeoutMs', init.requestTimeoutMs, 5000)
  }

  // -------------------------------------------------------------- lifecycle

  start(): void {
    if (this.started) return
    this.controller = new AbortController()
    // one message type, one path: other services keep TASK_REQUEST for their own paths
    this.router.handle(KLPMessageType.TASK_REQUEST, this.onRequest, { path: NOTES_PATH })
    try {
      this.router.handle(KLPMessageType.BROADCAST_ANNOUNCE, this.onAnnounce, { path: NOTES_PATH })
    } catch (err) {
      this.router.unhandle(KLPMessageType.TASK_REQUEST, { path: NOTES_PATH }) // all or nothing
      throw err
    }
    this.router.addEventListener('peer:identify', this.onIdentify)
    // a timer of the injected clock; unref: it alone does not keep the process alive
    this.stopSweep = every(this.clock, this.sweepMs, () => this.sweep(), { unref: true })
    this.started = true
  }

  stop(): void {
    if (!this.started) return
    this.started = false
    this.stopSweep?.()
    this.controller.abort()
    this.router.removeEventListener('peer:identify', this.onIdentify)
    this.router.unhandle(KLPMessageType.BROADCAST_ANNOUNCE, { path: NOTES_PATH })
    this.router.unhandle(KLPMessageType.TASK_REQUEST, { path: NOTES_PATH })
  }

  isStarted(): boolean {
    return this.started
  }

  // -------------------------------------------------------------- local notes

  private expired(note: Note): boolean {
    return this.clock.now() >= note.updated_at + this.ttlMs
  }

  get(key: string): Note | undefined {
    const note = this.notes.get(key)
    return note === undefined || this.expired(note) ? undefined : note
  }

  list(): Note[] {
    return [...this.notes.values()].filter((n) => !this.expired(n))
  }

  /** Stores a write by `author` (an authenticated DID). Throws NotOwnerError / NotesFullError. */
  private write(key: string, text: string, author: string): Note {
    const cur = this.get(key)
    if (cur !== undefined && cur.owner !== author) throw new NotOwnerError(`expected the owner of "${key}" (${cur.owner}), got ${author}`)
    if (cur === undefined) {
      this.notes.delete(key) // an expired one
      if (this.notes.size >= this.maxNotes) this.sweep()
      if (this.notes.size >= this.maxNotes) throw new NotesFullError(`expected at most ${this.maxNotes} notes, got one more`)
    }
    const note: Note = { key, text, owner: author, version: (cur?.version ?? 0) + 1, updated_at: Math.floor(this.clock.now()) }
    this.notes.set(key, note)
    return note
  }

  async put(key: string, text: string, options: AbortOptions = {}): Promise<Note> {
    const note = this.write(checkKey(key), checkText(text, this.maxText), this.router.did)
    await this.announce(note, options)
    return note
  }

  private sweep(): void {
    for (const [key, note] of this.notes) if (this.expired(note)) this.notes.delete(key)
  }

  /** Tells the mesh that a note changed. A failed broadcast is logged, not thrown: the note is stored. */
  private async announce(note: Note, options: AbortOptions = {}): Promise<void> {
    try {
      await this.router.broadcast(
        { target: `klp://${this.router.authority}${NOTES_PATH}`, data: { key: note.key, version: note.version, owner: note.owner } },
        { signal: AbortSignal.any([this.controller.signal, ...(options.signal === undefined ? [] : [options.signal])]) },
      )
    } catch (err) {
      this.log.warn('notes: broadcast failed', { key: note.key, err: (err as Error)?.name })
    }
  }

  // -------------------------------------------------------------- handlers

  /** Requests on `/notes`: get, put, list. Arrow functions: `this` stays bound when registered. */
  private readonly onRequest = async (message: KLPMessage, context: MessageContext): Promise<ProcessingResult> => {
    let req: NotesRequest
    try {
      req = parseRequest(message.payload.data, this.maxText)
    } catch (err) {
      return this.refuse(message, NotesRejectReason.INVALID_REQUEST, (err as Error).message)
    }
    if (req.op === 'get') return this.answer(message, { note: (this.get(req.key) ?? null) as unknown as KLPValue })
    if (req.op === 'list') return this.answer(message, { notes: this.list().map((n) => ({ key: n.key, version: n.version, owner: n.owner })) })
    let note: Note
    try {
      // the author is the DID that signed the request (the router checked the signature),
      // never a field of the payload
      note = this.write(req.key, req.text, context.signerDid)
    } catch (err) {
      if (err instanceof NotOwnerError) return this.refuse(message, NotesRejectReason.NOT_OWNER, err.message)
      if (err instanceof NotesFullError) return this.refuse(message, NotesRejectReason.NOTES_FULL, err.message)
      throw err // a bug: the router answers `handler_error`
    }
    void this.announce(note) // does not delay the answer
    return this.answer(message, { note: note as unknown as KLPValue })
  }

  /** Broadcasts on `/notes` from other nodes. */
  private readonly onAnnounce = (message: KLPMessage): ProcessingResult => {
    // the router checked that the source authority is bound to the signer's DID before calling us
    const authority = message.source.authority
    if (authority === this.router.authority) return { status: ProcessingStatus.PROCESSED }
    try {
      this.hear({ authority, ...parseHeard(message.payload.data) })
    } catch (err) {
      this.log.debug('notes: bad announcement', { authority, err: (err as Error).name })
    }
    return { status: ProcessingStatus.PROCESSED }
  }

  private async answer(request: KLPMessage, data: KLPValue): Promise<ProcessingResult> {
    return { status: ProcessingStatus.PROCESSED, response: await this.router.createResponse(request, data) }
  }

  private async refuse(request: KLPMessage, code: string, message: string): Promise<ProcessingResult> {
    return {
      status: ProcessingStatus.REJECTED,
      reason: code,
      response: await this.router.createResponse(request, { status: 'rejected', error: { code, message } }),
    }
  }

  // -------------------------------------------------------------- what other nodes have

  private hear(h: HeardNote): void {
    const id = `${h.authority} ${h.key}`
    const cur = this.heardOf.get(id)
    if (cur !== undefined && cur.version >= h.version) return // old news (broadcasts may arrive late)
    this.heardOf.delete(id) // re-insert: most recent last
    this.heardOf.set(id, h)
    if (this.heardOf.size > this.maxHeard) this.heardOf.delete(this.heardOf.keys().next().value as string)
    this.events.dispatchEvent(new CustomEvent('heard', { detail: h }))
  }

  addEventListener<K extends keyof NotesEvents>(type: K, listener: (evt: NotesEvents[K]) => void, options?: { once?: boolean; signal?: AbortSignal }): void {
    this.events.addEventListener(type, listener as (evt: Event) => void, options)
  }

  removeEventListener<K extends keyof NotesEvents>(type: K, listener: (evt: NotesEvents[K]) => void): void {
    this.events.removeEventListener(type, listener as (evt: Event) => void)
  }

  heard(): HeardNote[] {
    return [...this.heardOf.values()]
  }

  /** A peer's hello arrived (its authority is known now): ask it what it has. */
  private readonly onIdentify = (evt: CustomEvent<PeerInfo>): void => {
    const authority = evt.detail.authority
    if (authority === undefined || authority === this.router.authority) return
    if (this.catchingUp.has(authority) || this.catchingUp.size >= this.maxCatchUps) return
    this.catchingUp.add(authority)
    void this.catchUp(authority).finally(() => this.catchingUp.delete(authority))
  }

  private async catchUp(authority: string): Promise<void> {
    try {
      const response = await this.request(authority, { op: 'list' })
      const list = isMap(response.payload.data) ? response.payload.data.notes : undefined
      if (!Array.isArray(list)) throw new InvalidNoteError(`expected { notes: [...] }, got ${describe(response.payload.data)}`)
      for (const item of list.slice(0, this.maxHeard)) this.hear({ authority, ...parseHeard(item) })
    } catch (err) {
      // a peer without the notes service refuses (`unsupported_message_type`); that is fine
      this.log.debug('notes: catch-up failed', { authority, err: (err as Error)?.name })
    }
  }

  // -------------------------------------------------------------- requests to other nodes

  private async request(authority: string, data: KLPValue, options: AbortOptions = {}): Promise<KLPMessage> {
    // cancelled by the caller's signal or by stop(); the router's timeout bounds it otherwise
    const signal = AbortSignal.any([this.controller.signal, ...(options.signal === undefined ? [] : [options.signal])])
    try {
      // the answer must be signed by the DID the authority is pinned to (the router's default)
      return await this.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${authority}${NOTES_PATH}`, data }, { signal, timeoutMs: this.requestTimeoutMs })
    } catch (err) {
      // the router's rejection, by name (this service does not import the router)
      const e = err as { name?: unknown; reason?: unknown }
      if (e?.name === 'RemoteRejectedError' && typeof e.reason === 'string') throw new NoteRejectedError(`${authority} refused: ${e.reason}`, e.reason, { cause: err })
      throw err
    }
  }

  async putOn(authority: string, key: string, text: string, options: AbortOptions = {}): Promise<Note> {
    const response = await this.request(authority, { op: 'put', key: checkKey(key), text: checkText(text, this.maxText) }, options)
    const data = response.payload.data
    return parseNote(isMap(data) ? data.note : data, this.maxText)
  }

  async fetch(authority: string, key: string, options: AbortOptions = {}): Promise<Note | undefined> {
    const response = await this.request(authority, { op: 'get', key: checkKey(key) }, options)
    const data = response.payload.data
    const note = isMap(data) ? data.note : data
    return note === null ? undefined : parseNote(note, this.maxText)
  }
}

/**
 * The notes service in the module shape: `notes(init)(components)`. `start()` registers its
 * handlers and listeners, `stop()` removes them and cancels its requests.
 */
export function notes(init: NotesInit = {}): (components: NotesComponents) => NotesService {
  return (components) => new Notes(init, components)
}
