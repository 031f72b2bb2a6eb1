import { describe, expect, it } from 'vitest'
import { mulberry32, type Clock } from '@kos-mesh/interface'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { compareDistance, idKey, Lookup, runLookup } from '../src/kad/index.js'
import type { Contact, KadId, KadResponse, KadRpc } from '../src/kad/index.js'
import { contactWithId, randomId } from './kad-helpers.js'

/** An ideal network: every node answers with the true k closest of `all` (never itself). */
function oracle(all: Contact[], k: number): (to: Contact, target: KadId) => Contact[] {
  return (to, target) => all.filter((c) => c !== to).sort((a, b) => compareDistance(a.id, b.id, target)).slice(0, k)
}

/** Drives a Lookup synchronously: answers come from `answer` (undefined = failure), in FIFO order. */
function drive(l: Lookup, answer: (to: Contact) => Contact[] | undefined, log: Array<{ key: string; path: number }> = []): void {
  const queue: Array<{ contact: Contact; path: number }> = []
  for (let guard = 0; guard < 100_000; guard++) {
    queue.push(...l.next())
    const q = queue.shift()
    if (q === undefined) break
    log.push({ key: idKey(q.contact.id), path: q.path })
    const a = answer(q.contact)
    if (a === undefined) l.onFailure(q.contact)
    else l.onResponse(q.contact, a)
  }
}

const rnd = mulberry32(5)
const all = Array.from({ length: 400 }, (_, i) => contactWithId(randomId(rnd), `n${i}`, `10.1.${i >> 8}.${i & 255}`))

describe('Lookup (state machine)', () => {
  it('finds the exact k closest on an ideal network and terminates', () => {
    const target = randomId(rnd)
    const answer = oracle(all, 20)
    const l = new Lookup({ target, seeds: all.slice(0, 20), k: 20, alpha: 3 })
    drive(l, (c) => answer(c, target))
    expect(l.done).toBe(true)
    const expected = [...all].sort((a, b) => compareDistance(a.id, b.id, target)).slice(0, 20)
    expect(l.result().closest.map((c) => idKey(c.id))).toEqual(expected.map((c) => idKey(c.id)))
    expect(l.result().queried).toBeLessThan(100)
  })

  it('stops when no closer node can be found: only the seeds are queried', () => {
    const target = randomId(rnd)
    const l = new Lookup({ target, seeds: all.slice(0, 5), k: 20, alpha: 3 })
    const log: Array<{ key: string; path: number }> = []
    drive(l, () => [], log)
    expect(l.done).toBe(true)
    expect(log).toHaveLength(5)
    expect(l.result().closest).toHaveLength(5)
  })

  it('terminates when every request fails, with an empty result', () => {
    const l = new Lookup({ target: randomId(rnd), seeds: all.slice(0, 30), k: 20, alpha: 3 })
    drive(l, () => undefined)
    expect(l.done).toBe(true)
    const r = l.result()
    expect(r).toMatchObject({ queried: 30, failed: 30, answered: 0 })
    expect(r.closest).toEqual([])
  })

  it('keeps alpha requests in flight per path', () => {
    const l = new Lookup({ target: randomId(rnd), seeds: all.slice(0, 20), k: 20, alpha: 3, paths: 2 })
    const first = l.next()
    expect(first).toHaveLength(6)
    expect(first.filter((q) => q.path === 0)).toHaveLength(3)
    expect(l.next()).toHaveLength(0)
    l.onResponse(first[0]!.contact, [])
    expect(l.next()).toHaveLength(1)
  })

  it('bounds the requests of a path even when answers never run dry', () => {
    const target = randomId(rnd)
    let fresh = 0
    const l = new Lookup({ target, seeds: all.slice(0, 3), k: 5, alpha: 3, maxQueriesPerPath: 40 })
    // an adversary that always returns 5 new, ever closer contacts
    drive(l, () => Array.from({ length: 5 }, () => {
      const dist = 65_535 - fresh++
      const id = Uint8Array.from(target)
      id[30] = (id[30] ?? 0) ^ (dist >> 8)
      id[31] = (id[31] ?? 0) ^ (dist & 255)
      return contactWithId(id, `adv${fresh}`, '10.9.9.9')
    }))
    expect(l.done).toBe(true)
    expect(l.result().queried).toBe(40)
  })

  it('records depth: a chain network needs one hop per link', () => {
    const chain = all.slice(0, 6)
    const target = chain[5]!.id
    const l = new Lookup({ target, seeds: [chain[0]!], k: 3, alpha: 1 })
    drive(l, (c) => {
      const i = chain.indexOf(c)
      return i >= 0 && i < 5 ? [chain[i + 1]!] : []
    })
    expect(l.depthOf(target)).toBe(5)
    expect(l.result().closest[0]).toBe(chain[5])
  })
})

describe('Lookup over disjoint paths', () => {
  it('never queries a node on two paths, and deals the seeds round-robin', () => {
    const target = randomId(rnd)
    const answer = oracle(all, 20)
    const l = new Lookup({ target, seeds: all.slice(0, 20), k: 20, alpha: 3, paths: 4 })
    const seeds = [...all.slice(0, 20)].sort((a, b) => compareDistance(a.id, b.id, target))
    // the seeds are dealt round-robin: each path starts with its alpha closest
    const first = l.next()
    for (let p = 0; p < 4; p++) expect(first.filter((q) => q.path === p).map((q) => q.contact)).toEqual([seeds[p], seeds[p + 4], seeds[p + 8]])
    const log: Array<{ key: string; path: number }> = first.map((q) => ({ key: idKey(q.contact.id), path: q.path }))
    for (const q of first) l.onResponse(q.contact, answer(q.contact, target))
    drive(l, (c) => answer(c, target), log)
    const pathOf = new Map<string, number>()
    for (const q of log) {
      expect(pathOf.has(q.key)).toBe(false)
      pathOf.set(q.key, q.path)
    }
    expect(new Set(log.map((q) => q.path))).toEqual(new Set([0, 1, 2, 3]))
    seeds.forEach((s, i) => { if (pathOf.has(idKey(s.id))) expect(pathOf.get(idKey(s.id))).toBe(i % 4) })
    // the merged result still holds the true closest
    const best = [...all].sort((a, b) => compareDistance(a.id, b.id, target))[0]!
    expect(idKey(l.result().closest[0]!.id)).toBe(idKey(best.id))
  })

  it('a liar that captures the one path of plain Kademlia cannot capture all disjoint paths', () => {
    const target = randomId(rnd)
    const near = (bits: number, tag: number): KadId => {
      const id = Uint8Array.from(target)
      // flip bit `bits` (from the top) so cpl(target, id) = bits, then vary the tail
      id[bits >> 3] = (id[bits >> 3] ?? 0) ^ (0x80 >> (bits & 7))
      id[31] = tag
      return id
    }
    const real = contactWithId(target, 'target', '10.5.5.5')
    const honest = [10, 11, 12].map((b, i) => contactWithId(near(b, i), `h${i}`, `10.6.${i}.1`))
    const liar = contactWithId(near(40, 99), 'liar', '10.7.0.1')
    const colluders = Array.from({ length: 10 }, (_, i) => contactWithId(near(30 + i, 100 + i), `c${i}`, `10.8.${i}.1`))
    const bad = new Set([liar, ...colluders])
    const answer = (c: Contact): Contact[] => (bad.has(c) ? colluders : c === honest[2] ? [real] : [honest[2]!])
    const run = (paths: number): boolean => {
      const l = new Lookup({ target, seeds: [liar, ...honest.slice(0, 2)], k: 3, alpha: 1, paths })
      drive(l, answer)
      return l.result().closest.some((c) => c === real)
    }
    expect(run(1)).toBe(false)
    expect(run(2)).toBe(true)
  })
})

describe('runLookup (async driver)', () => {
  const vnet = () => createMemoryNetwork({ time: 'virtual', seed: 1 })

  it('times requests out on the injected clock and finishes with the answers it got', async () => {
    const net = vnet()
    const clock: Clock = net.clock
    const target = randomId(rnd)
    const signals: AbortSignal[] = []
    const silent = new Set(all.slice(0, 10))
    const rpc: KadRpc = (to, _req, { signal }) => {
      signals.push(signal)
      if (silent.has(to)) return new Promise<KadResponse>(() => {})
      return new Promise<KadResponse>((resolve) => clock.setTimeout(() => resolve({ type: 'nodes', closer: [] }), 20))
    }
    const l = new Lookup({ target, seeds: all.slice(0, 20), k: 20, alpha: 3 })
    let result: Awaited<ReturnType<typeof runLookup>> | undefined
    void runLookup(l, { rpc, clock, request: { type: 'find_node', target }, timeoutMs: 500 }).then((r) => { result = r })
    await net.runFor(499)
    expect(result).toBeUndefined()
    await net.runFor(10_000)
    expect(result).toBeDefined()
    expect(result!.failed).toBe(silent.size)
    expect(result!.answered).toBe(10)
    expect(result!.closest).toHaveLength(10)
    expect(signals.filter((s) => s.aborted).map((s) => (s.reason as Error).name)).toEqual(Array(10).fill('KadRequestTimeoutError'))
  })

  it('rejects with AbortError when the signal fires, aborting the requests in flight', async () => {
    const net = vnet()
    const signals: AbortSignal[] = []
    const rpc: KadRpc = (_to, _req, { signal }) => { signals.push(signal); return new Promise<KadResponse>(() => {}) }
    const ac = new AbortController()
    const target = randomId(rnd)
    const p = runLookup(new Lookup({ target, seeds: all.slice(0, 5), k: 20, alpha: 3 }), { rpc, clock: net.clock, request: { type: 'find_node', target }, signal: ac.signal })
    const caught = p.catch((e: unknown) => e)
    await net.runFor(100)
    ac.abort()
    expect(await caught).toMatchObject({ name: 'AbortError' })
    expect(signals).toHaveLength(3)
    expect(signals.every((s) => s.aborted)).toBe(true)
  })

  it('stops early when onResponse says so and treats a wrong answer type as a failure', async () => {
    const net = vnet()
    const target = randomId(rnd)
    let calls = 0
    const rpc: KadRpc = async (to) => {
      calls++
      if (to === all[0]) return { type: 'pong' }
      await net.clock.sleep(5)
      return { type: 'nodes', closer: all.slice(20, 40) }
    }
    const l = new Lookup({ target, seeds: all.slice(0, 3), k: 20, alpha: 3 })
    const done = runLookup(l, { rpc, clock: net.clock, request: { type: 'find_node', target }, onResponse: (_f, res) => res.type === 'nodes' && res.closer.length > 0 })
    await net.runFor(10)
    const r = await done
    expect(r.stoppedEarly).toBe(true)
    expect(r.failed).toBe(1)
    expect(calls).toBe(3)
  })
})

describe('Lookup input bounds', () => {
  it('takes at most k contacts of one answer and ignores malformed ids', () => {
    const target = randomId(rnd)
    const l = new Lookup({ target, seeds: all.slice(0, 1), k: 5, alpha: 1 })
    const [q] = l.next()
    const bad = { id: new Uint8Array(7), did: 'did:key:zBad', addrs: [] }
    const fresh = l.onResponse(q!.contact, [bad, ...all.slice(100, 200)])
    expect(fresh).toHaveLength(4)
    expect(fresh).not.toContain(bad)
  })
})
