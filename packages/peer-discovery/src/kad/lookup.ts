/**
 * The iterative lookup (sans-I/O state machine) and its async driver.
 *
 * `Lookup` keeps `d` disjoint paths (S/Kademlia; d = 1 is plain Kademlia). The starting contacts
 * (the local table's closest) are dealt round-robin to the paths. Each path queries up to `alpha`
 * of its closest unqueried candidates at a time. A global "seen" set spans the paths: a contact
 * first reported on one path belongs to that path only, so no node is queried on two paths and a
 * liar on one path cannot steer the others. A path ends when its `k` closest live candidates have
 * all answered (no closer node can be found), when it has none left, or at `maxQueriesPerPath`.
 * The result merges the paths: the `k` closest contacts that answered.
 *
 * Hops: a starting contact has depth 0; a contact reported by a depth-h responder has depth h + 1.
 * A contact's depth is the number of sequential requests it took to learn it.
 */
import type { Clock } from '@kos-mesh/interface'
import { AbortError } from '@kos-mesh/interface'
import type { Contact, KadId, KadRequest, KadResponse, KadRpc } from './types.js'
import { compareDistance, idKey, isKadId } from './id.js'
import { KadRequestTimeoutError, UnexpectedKadResponseError } from './errors.js'

/** Options of a lookup: the target, its starting contacts and its parallelism. */
export interface LookupInit {
  target: KadId
  /** Starting contacts (e.g. the local table's k closest). */
  seeds: readonly Contact[]
  /** Default 20. */
  k?: number
  /** Default 3. */
  alpha?: number
  /** Disjoint paths. Default 1. */
  paths?: number
  /** Never queried (the local node). */
  self?: KadId
  /** Requests per path at most. Default 10 x k. */
  maxQueriesPerPath?: number
}

type CandState = 'new' | 'inflight' | 'answered' | 'failed'

interface Candidate {
  readonly contact: Contact
  readonly key: string
  readonly path: number
  readonly depth: number
  state: CandState
}

interface PathState {
  /** Live candidates (not failed), closest first, at most `cap`. */
  list: Candidate[]
  inflight: number
  queries: number
  done: boolean
}

/** A query the lookup wants sent: the contact, and the path it belongs to. */
export interface LookupQuery {
  readonly contact: Contact
  readonly path: number
  readonly depth: number
}

/** The result of a lookup. */
export interface LookupResult {
  readonly target: KadId
  /** The k closest contacts that answered, merged over the paths, closest first. */
  readonly closest: Contact[]
  /** Depth at which each returned contact was learned (by id key). */
  readonly depthOf: ReadonlyMap<string, number>
  /** Requests sent, answered, failed. */
  readonly queried: number
  readonly answered: number
  readonly failed: number
  /** Paths used. */
  readonly paths: number
}

/**
 * One iterative Kademlia lookup as a sans-I/O state machine, over `paths` disjoint paths with `alpha`
 * queries in flight per path: it says whom to query next and takes the answers.
 */
export class Lookup {
  readonly target: KadId
  readonly k: number
  readonly alpha: number
  readonly pathCount: number
  private readonly maxQueries: number
  private readonly cap: number
  private readonly paths: PathState[] = []
  private readonly seen = new Map<string, Candidate>()
  private readonly answeredList: Candidate[] = []
  private queried = 0
  private answered = 0
  private failed = 0
  private stopped = false

  constructor(init: LookupInit) {
    this.target = init.target
    this.k = init.k ?? 20
    this.alpha = init.alpha ?? 3
    this.pathCount = Math.max(1, Math.floor(init.paths ?? 1))
    this.maxQueries = init.maxQueriesPerPath ?? 10 * this.k
    this.cap = 4 * this.k
    for (let p = 0; p < this.pathCount; p++) this.paths.push({ list: [], inflight: 0, queries: 0, done: false })
    if (init.self !== undefined) this.seen.set(idKey(init.self), { contact: { id: init.self, did: '', addrs: [] }, key: idKey(init.self), path: -1, depth: 0, state: 'answered' })
    const seeds = [...init.seeds].sort((a, b) => compareDistance(a.id, b.id, this.target))
    let p = 0
    for (const c of seeds) {
      if (this.offer(c, p % this.pathCount, 0)) p++
    }
  }

  /** All paths finished (or `stop()` was called). */
  get done(): boolean {
    if (this.stopped) return true
    for (let p = 0; p < this.paths.length; p++) if (!this.pathDone(p)) return false
    return true
  }

  /** Ends the lookup now (e.g. the target was found); in-flight answers are ignored. */
  stop(): void { this.stopped = true }

  /** The depth at which a contact was learned, if seen. */
  depthOf(id: KadId): number | undefined { return this.seen.get(idKey(id))?.depth }

  /** Requests to send now; each is marked in flight. */
  next(): LookupQuery[] {
    const out: LookupQuery[] = []
    if (this.stopped) return out
    for (let p = 0; p < this.paths.length; p++) {
      const path = this.paths[p] as PathState
      if (this.pathDone(p)) continue
      const top = Math.min(this.k, path.list.length)
      for (let i = 0; i < top && path.inflight < this.alpha && path.queries < this.maxQueries; i++) {
        const c = path.list[i] as Candidate
        if (c.state !== 'new') continue
        c.state = 'inflight'
        path.inflight++
        path.queries++
        this.queried++
        out.push({ contact: c.contact, path: p, depth: c.depth })
      }
    }
    return out
  }

  /** `from` answered with `closer` contacts (only the first k count). Returns the contacts new to the lookup. */
  onResponse(from: Contact, closer: readonly Contact[]): Contact[] {
    const c = this.seen.get(idKey(from.id))
    if (c === undefined || c.state !== 'inflight') return []
    c.state = 'answered'
    this.answered++
    this.answeredList.push(c)
    const path = this.paths[c.path] as PathState
    path.inflight--
    const fresh: Contact[] = []
    const n = Math.min(closer.length, this.k)
    for (let i = 0; i < n; i++) {
      const x = closer[i] as Contact
      if (isKadId(x.id) && this.offer(x, c.path, c.depth + 1)) fresh.push(x)
    }
    return fresh
  }

  /** A request failed (timeout, error, unexpected answer): the contact leaves its path. */
  onFailure(from: Contact): void {
    const c = this.seen.get(idKey(from.id))
    if (c === undefined || c.state !== 'inflight') return
    c.state = 'failed'
    this.failed++
    const path = this.paths[c.path] as PathState
    path.inflight--
    const i = path.list.indexOf(c)
    if (i >= 0) path.list.splice(i, 1)
  }

  /** The lookup's result so far: the k closest contacts that answered, and its counters. */
  result(): LookupResult {
    const closest = this.answeredList
      .slice()
      .sort((a, b) => compareDistance(a.contact.id, b.contact.id, this.target))
      .slice(0, this.k)
    const depthOf = new Map<string, number>()
    for (const c of closest) depthOf.set(c.key, c.depth)
    return { target: this.target, closest: closest.map((c) => c.contact), depthOf, queried: this.queried, answered: this.answered, failed: this.failed, paths: this.pathCount }
  }

  private pathDone(p: number): boolean {
    const path = this.paths[p] as PathState
    if (path.done) return true
    const top = Math.min(this.k, path.list.length)
    let pending = false
    for (let i = 0; i < top; i++) {
      const s = (path.list[i] as Candidate).state
      if (s === 'new' || s === 'inflight') { pending = true; break }
    }
    if (!pending || (path.queries >= this.maxQueries && path.inflight === 0)) {
      // The k closest live candidates all answered: no closer node can be found on this path.
      path.done = true
      return true
    }
    return false
  }

  private offer(contact: Contact, p: number, depth: number): boolean {
    const key = idKey(contact.id)
    if (this.seen.has(key)) return false
    const path = this.paths[p] as PathState
    const c: Candidate = { contact, key, path: p, depth, state: 'new' }
    this.seen.set(key, c)
    // insert sorted (binary search), keep at most `cap`
    const list = path.list
    let lo = 0
    let hi = list.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (compareDistance((list[mid] as Candidate).contact.id, contact.id, this.target) < 0) lo = mid + 1
      else hi = mid
    }
    if (lo >= this.cap) return true // seen, but too far to keep
    list.splice(lo, 0, c)
    if (list.length > this.cap) {
      // drop the farthest candidate not in flight (in-flight ones stay until they settle)
      for (let i = list.length - 1; i >= 0; i--) {
        if ((list[i] as Candidate).state !== 'inflight') { list.splice(i, 1); break }
      }
    }
    return true
  }
}

/**
 * Options of `runLookup`: the RPC, the clock, the request sent to each contact, the per-request timeout,
 * and callbacks that may stop the lookup early.
 */
export interface RunLookupOptions {
  rpc: KadRpc
  clock: Clock
  /** The request sent to each contact (find_node or get_providers). */
  request: KadRequest
  /** Per-request timeout, ms. Default 2,000. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Filters the contacts of an answer (e.g. id = sha256(did)); default: keep all. */
  accept?: (contact: Contact) => boolean
  /** Each answer, after the lookup took its contacts. Return true to stop the lookup. */
  onResponse?: (from: Contact, response: KadResponse, query: LookupQuery) => boolean | void
  /** Each failed request. */
  onFailure?: (to: Contact, error: unknown) => void
}

/** The result of `runLookup`. */
export interface RunLookupResult extends LookupResult {
  /** Whether `onResponse` stopped the lookup early. */
  readonly stoppedEarly: boolean
}

/**
 * Drives a Lookup with a KadRpc: keeps each path's alpha requests in flight, times each out on
 * the injected clock, stops on the signal. Resolves with the merged result; rejects only with an
 * AbortError when the signal fires.
 */
export function runLookup(lookup: Lookup, options: RunLookupOptions): Promise<RunLookupResult> {
  const { rpc, clock, request, signal } = options
  const timeoutMs = options.timeoutMs ?? 2_000
  return new Promise<RunLookupResult>((resolve, reject) => {
    const inflight = new Set<AbortController>()
    let finished = false
    let stoppedEarly = false
    const finish = (error?: unknown): void => {
      if (finished) return
      finished = true
      signal?.removeEventListener('abort', onAbort)
      for (const ac of inflight) ac.abort(new AbortError('lookup finished'))
      inflight.clear()
      if (error !== undefined) reject(error)
      else resolve({ ...lookup.result(), stoppedEarly })
    }
    const onAbort = (): void => finish(new AbortError(undefined, { cause: signal?.reason }))
    const pump = (): void => {
      if (finished) return
      if (!lookup.done) for (const q of lookup.next()) send(q)
      if (lookup.done) finish()
    }
    const send = (q: LookupQuery): void => {
      const ac = new AbortController()
      inflight.add(ac)
      let settled = false
      const settle = (): boolean => {
        if (settled || finished) return false
        settled = true
        clock.clearTimeout(timer)
        inflight.delete(ac)
        return true
      }
      const fail = (error: unknown): void => {
        if (!settle()) return
        lookup.onFailure(q.contact)
        options.onFailure?.(q.contact, error)
        pump()
      }
      const timer = clock.setTimeout(() => {
        const err = new KadRequestTimeoutError(`expected an answer within ${timeoutMs} ms, got none`)
        ac.abort(err)
        fail(err)
      }, timeoutMs)
      let p: Promise<KadResponse>
      try {
        p = rpc(q.contact, request, { signal: ac.signal })
      } catch (err) {
        p = Promise.reject(err)
      }
      p.then((res) => {
        if (settled || finished) return
        const closer = res.type === 'nodes' || res.type === 'providers' ? res.closer : undefined
        if (closer === undefined) { fail(new UnexpectedKadResponseError(`expected nodes or providers, got ${String(res.type)}`)); return }
        settle()
        const accepted = options.accept === undefined ? closer : closer.filter(options.accept)
        lookup.onResponse(q.contact, accepted)
        if (options.onResponse?.(q.contact, res, q) === true) {
          stoppedEarly = true
          lookup.stop()
        }
        pump()
      }, fail)
    }
    if (signal?.aborted === true) { onAbort(); return }
    signal?.addEventListener('abort', onAbort, { once: true })
    pump()
  })
}
