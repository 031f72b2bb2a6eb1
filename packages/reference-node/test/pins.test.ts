/**
 * Authority pins (issue 8, point 4, node side): pins that an attacker cannot take over by filling
 * the table, restored with their firmness, saved one key per pin.
 *
 * Most nodes here run without the discovery service so that only what a test does (a task answered,
 * `trust()`) makes a pin firm: the router also makes a pin firm when the authority answers one of
 * the node's own peer-table requests.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { AbortOptions } from '@kos-mesh/interface'
import { generateIdentity, type Identity } from '@kos-mesh/did-security'
import type { PeerInfo } from '@kos-mesh/klp-router'
import { createMemoryNetwork, type MemoryNetwork } from '@kos-mesh/transport-memory'
import {
  createNode,
  jsonLogger,
  levelStore,
  mathAgent,
  memory,
  memoryStore,
  persistentTrustStore,
  PIN_PREFIX,
  type KosMeshNode,
  type NodeInit,
  type NodeStore,
} from '../src/index.js'
import { loadPins, PinWriter, type PinChange } from '../src/pins.js'

const nodes: KosMeshNode[] = []
let dir = ''
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kos-pins-'))
})
afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

const noDiscovery = { services: { discovery: false as const } }

function node(network: MemoryNetwork, name: string, init: NodeInit = {}): KosMeshNode {
  const n = createNode({ authority: `${name}.mesh.kai`, transports: [memory({ network })], listen: [`memory://${name}`], ...noDiscovery, ...init })
  nodes.push(n)
  return n
}

/** Starts a peer named `name` (identity `id`, if given) and has `a` dial it. */
async function peer(network: MemoryNetwork, a: KosMeshNode, name: string, init: NodeInit = {}): Promise<KosMeshNode> {
  const p = node(network, name, init)
  await p.start()
  await a.connect(p.addrs()[0] as string)
  return p
}

/** Stops `p` and resolves once `a` has seen it disconnect (pins of connected DIDs are never evicted). */
async function goOffline(a: KosMeshNode, p: KosMeshNode): Promise<void> {
  const did = p.did
  const gone = new Promise<void>((resolve) => {
    if (!a.router.peers().some((x) => x.did === did)) return resolve()
    const on = (e: CustomEvent<PeerInfo>): void => {
      if (e.detail.did !== did) return
      a.router.removeEventListener('peer:disconnect', on)
      resolve()
    }
    a.router.addEventListener('peer:disconnect', on)
  })
  await p.stop()
  await gone
}

function pinOf(a: KosMeshNode, authority: string): { did: string; firm: boolean } | undefined {
  const e = a.router.routingTable.pinEntries().find((p) => p.authority === authority)
  return e === undefined ? undefined : { did: e.did, firm: e.firm }
}

function sortedPins(a: KosMeshNode): Array<{ authority: string; did: string; firm: boolean }> {
  return a.router.routingTable.pinEntries().sort((x, y) => (x.authority < y.authority ? -1 : 1))
}

/** The pins stored in the LevelDB at `path` (the node using it must be stopped). */
async function storedPins(path: string): Promise<Record<string, string>> {
  const db = levelStore({ path })
  await db.start()
  const out: Record<string, string> = {}
  try {
    for await (const { key, value } of db.query(PIN_PREFIX)) out[key.slice(PIN_PREFIX.length)] = new TextDecoder().decode(value)
  } finally {
    await db.stop()
  }
  return out
}

const math = (to: string) => ({ target: `klp://${to}/agents/math`, request: { capability: 'math', input: '6 * 7' } })

describe('the attack: filling the pin table to take over a relied-on authority', () => {
  it('a worker whose answer the node relied on keeps its authority: attackers filling the table are refused it, tasks still reach the worker, the store still names it', async () => {
    const network = createMemoryNetwork()
    const db = join(dir, 'db')
    const aId = generateIdentity()
    const workerId = generateIdentity()
    const makeA = () => node(network, 'a', { identity: aId, storage: levelStore({ path: db }), router: { maxPinnedAuthorities: 8 } })
    const makeWorker = () => node(network, 'worker', { identity: workerId, agents: [mathAgent()] })
    const a = makeA()
    await a.start()
    const worker = await peer(network, a, 'worker', { identity: workerId, agents: [mathAgent()] })
    expect(pinOf(a, 'worker.mesh.kai')).toEqual({ did: workerId.did, firm: false })
    // the node relies on the worker: it sent a task that the worker answered
    const t = math('worker.mesh.kai')
    await expect(a.task(t.target, t.request)).resolves.toMatchObject({ result: { value: 42 } })
    expect(pinOf(a, 'worker.mesh.kai')).toEqual({ did: workerId.did, firm: true })
    // a bystander pinned on first use that nothing relied on: the table really evicts
    const bystander = await peer(network, a, 'bystander')
    const bystanderDid = bystander.did
    await goOffline(a, worker)
    await goOffline(a, bystander)

    // attackers: fresh DIDs fill the table, disconnect, reconnect (two rounds)
    const attackers: Identity[] = Array.from({ length: 10 }, () => generateIdentity())
    for (let round = 0; round < 2; round++) {
      for (const [i, id] of attackers.entries()) {
        const x = await peer(network, a, `attacker${i}`, { identity: id })
        await goOffline(a, x)
      }
    }
    expect(a.router.routingTable.pinEntries()).toHaveLength(8)
    expect(a.router.metrics().pinEvictions).toBeGreaterThan(0)
    expect(a.router.routingTable.didOf('bystander.mesh.kai')).toBeUndefined()
    expect(pinOf(a, 'worker.mesh.kai')).toEqual({ did: workerId.did, firm: true })

    // a new attacker claims the worker's authority: refused, the pin is unchanged
    const impostor = node(network, 'impostor', { authority: 'worker.mesh.kai' })
    await impostor.start()
    await expect(a.connect(impostor.addrs()[0] as string)).rejects.toMatchObject({ name: 'AuthorityConflictError' })
    expect(a.router.routingTable.didOf('worker.mesh.kai')).toBe(workerId.did)
    await impostor.stop()

    // the real worker comes back: tasks to its authority reach it (answers must be signed by the pinned DID)
    const worker2 = makeWorker()
    await worker2.start()
    await a.connect(worker2.addrs()[0] as string)
    await expect(a.task(t.target, t.request)).resolves.toMatchObject({ status: 'completed', result: { value: 42 } })
    expect(a.router.routingTable.lookup('worker.mesh.kai')).toMatchObject({ nextHop: workerId.did, kind: 'direct' })
    const before = sortedPins(a)
    await a.stop()

    // the store: one key per pin, the same as the table; the worker's pin names the worker, firm
    const stored = await storedPins(db)
    expect(JSON.parse(stored['worker.mesh.kai'] as string)).toEqual({ did: workerId.did, firm: true })
    expect(stored['bystander.mesh.kai']).toBeUndefined()
    expect(Object.values(stored).some((v) => v.includes(bystanderDid))).toBe(false)
    expect(Object.entries(stored).map(([authority, v]) => ({ authority, ...JSON.parse(v) })).sort((x, y) => (x.authority < y.authority ? -1 : 1))).toEqual(before)

    // after a restart the impostor is still refused
    const a2 = makeA()
    await a2.start()
    expect(sortedPins(a2)).toEqual(before)
    const impostor2 = node(network, 'impostor2', { authority: 'worker.mesh.kai' })
    await impostor2.start()
    await expect(a2.connect(impostor2.addrs()[0] as string)).rejects.toMatchObject({ name: 'AuthorityConflictError' })
    expect(a2.router.routingTable.didOf('worker.mesh.kai')).toBe(workerId.did)
  })

  it('the operator trusting a DID makes its pin firm: trust by address, and a trusted DID that connects later', async () => {
    const network = createMemoryNetwork()
    const a = node(network, 'a', { router: { maxPinnedAuthorities: 5 } })
    await a.start()
    const worker = await peer(network, a, 'worker')
    const byDid = await peer(network, a, 'by-did')
    const late = node(network, 'late')
    await late.start()
    const untrusted = await peer(network, a, 'untrusted')
    expect(pinOf(a, 'worker.mesh.kai')?.firm).toBe(false)
    await a.trust('klp://worker.mesh.kai/agents/math', 6)
    expect(pinOf(a, 'worker.mesh.kai')).toEqual({ did: worker.did, firm: true })
    expect(pinOf(a, 'by-did.mesh.kai')?.firm).toBe(false)
    await a.trust(byDid.did, 3)
    expect(pinOf(a, 'by-did.mesh.kai')).toEqual({ did: byDid.did, firm: true })
    // trusted before it was ever pinned: its pin is firm as soon as its hello is accepted
    await a.trust(late.did, 6)
    expect(pinOf(a, 'late.mesh.kai')).toBeUndefined()
    await a.connect(late.addrs()[0] as string)
    expect(pinOf(a, 'late.mesh.kai')).toEqual({ did: late.did, firm: true })
    // level 0 is no trust: nothing relies on that pin
    await a.trust(untrusted.did, 0)
    expect(pinOf(a, 'untrusted.mesh.kai')).toEqual({ did: untrusted.did, firm: false })

    for (const p of [worker, byDid, late, untrusted]) await goOffline(a, p)
    for (let i = 0; i < 6; i++) await goOffline(a, await peer(network, a, `attacker${i}`))
    // only the untrusted pin could go
    expect(pinOf(a, 'untrusted.mesh.kai')).toBeUndefined()
    const impostor = node(network, 'impostor', { authority: 'worker.mesh.kai' })
    await impostor.start()
    await expect(a.connect(impostor.addrs()[0] as string)).rejects.toMatchObject({ name: 'AuthorityConflictError' })
    const impostor2 = node(network, 'impostor2', { authority: 'late.mesh.kai' })
    await impostor2.start()
    await expect(a.connect(impostor2.addrs()[0] as string)).rejects.toMatchObject({ name: 'AuthorityConflictError' })
    expect(pinOf(a, 'worker.mesh.kai')).toEqual({ did: worker.did, firm: true })
    expect(pinOf(a, 'late.mesh.kai')).toEqual({ did: late.did, firm: true })
    expect(pinOf(a, 'by-did.mesh.kai')).toEqual({ did: byDid.did, firm: true })
  })
})

describe('firmness survives a restart', () => {
  it('a full table of firm pins refuses a new peer and says so; after a restart it is the same table; a provisional pin is still evictable', async () => {
    const network = createMemoryNetwork()
    const db = join(dir, 'db')
    const aId = generateIdentity()
    const lines: string[] = []
    const makeA = (maxPinnedAuthorities: number) =>
      node(network, 'a', { identity: aId, storage: levelStore({ path: db }), router: { maxPinnedAuthorities }, logger: jsonLogger('info', (l) => lines.push(l)) })
    const warnings = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 'warn')

    const a = makeA(3)
    await a.start()
    const workers: KosMeshNode[] = []
    for (let i = 0; i < 3; i++) {
      const w = await peer(network, a, `w${i}`, { agents: [mathAgent()] })
      const t = math(`w${i}.mesh.kai`)
      await a.task(t.target, t.request) // answered: the pin is relied on (firm)
      workers.push(w)
    }
    expect(sortedPins(a).map((p) => p.firm)).toEqual([true, true, true])
    for (const w of workers) await goOffline(a, w) // disconnected does not make them evictable
    const newcomerId = generateIdentity()
    const newcomer = node(network, 'newcomer', { identity: newcomerId })
    await newcomer.start()
    await expect(a.connect(newcomer.addrs()[0] as string)).rejects.toMatchObject({ name: 'AuthorityConflictError' })
    // (a refused peer may send its hello more than once: each is refused)
    expect(a.router.metrics()).toMatchObject({ pinRefusals: expect.any(Number), pinEvictions: 0, pinnedAuthorities: 3 })
    expect(a.router.metrics().pinRefusals).toBeGreaterThanOrEqual(1)
    expect(warnings()).toContainEqual(expect.objectContaining({ msg: 'hello refused: authority conflict', authority: 'newcomer.mesh.kai', reason: 'pins_full' }))
    const table = sortedPins(a)
    await a.stop()

    // restart: the same pins, still firm, still full
    const a2 = makeA(3)
    await a2.start()
    expect(sortedPins(a2)).toEqual(table)
    expect(lines.some((l) => l.includes('"msg":"authority pins restored"') && l.includes('"restored":3') && l.includes('"firm":3'))).toBe(true)
    await expect(a2.connect(newcomer.addrs()[0] as string)).rejects.toMatchObject({ name: 'AuthorityConflictError' })
    expect(a2.router.metrics()).toMatchObject({ pinEvictions: 0, pinnedAuthorities: 3 })
    expect(a2.router.metrics().pinRefusals).toBeGreaterThanOrEqual(1)
    await a2.stop()

    // one more slot: the newcomer gets a provisional pin, which a restart keeps provisional
    const a3 = makeA(4)
    await a3.start()
    await a3.connect(newcomer.addrs()[0] as string)
    expect(pinOf(a3, 'newcomer.mesh.kai')).toEqual({ did: newcomerId.did, firm: false })
    await goOffline(a3, newcomer)
    await a3.stop()
    expect(JSON.parse((await storedPins(db))['newcomer.mesh.kai'] as string)).toEqual({ did: newcomerId.did, firm: false })

    const a4 = makeA(4)
    await a4.start()
    expect(pinOf(a4, 'newcomer.mesh.kai')).toEqual({ did: newcomerId.did, firm: false })
    // full again (3 firm + 1 provisional of a disconnected DID): the next peer evicts the provisional one
    const next = await peer(network, a4, 'next')
    expect(pinOf(a4, 'next.mesh.kai')).toEqual({ did: next.did, firm: false })
    expect(pinOf(a4, 'newcomer.mesh.kai')).toBeUndefined()
    expect(a4.router.metrics()).toMatchObject({ pinEvictions: 1, pinRefusals: 0 })
    expect(warnings()).toContainEqual(expect.objectContaining({ msg: 'authority pin evicted (provisional, disconnected, least recently seen)', authority: 'newcomer.mesh.kai' }))
    for (const p of table) expect(pinOf(a4, p.authority)).toEqual({ did: p.did, firm: true })
    await a4.stop()
    const stored = await storedPins(db)
    expect(stored['newcomer.mesh.kai']).toBeUndefined()
    expect(JSON.parse(stored['next.mesh.kai'] as string)).toEqual({ did: next.did, firm: false })
    expect(Object.keys(stored)).toHaveLength(4)
  })
})

/** A store that counts writes per key prefix. */
function countingStore(inner: NodeStore): NodeStore & { puts: Map<string, number>; deletes: Map<string, number> } {
  const puts = new Map<string, number>()
  const deletes = new Map<string, number>()
  const prefix = (k: string) => k.slice(0, k.indexOf('/') + 1)
  return {
    kind: inner.kind,
    puts,
    deletes,
    start: () => inner.start(),
    stop: () => inner.stop(),
    get: (k, o) => inner.get(k, o),
    has: (k, o) => inner.has(k, o),
    query: (p, o) => inner.query(p, o),
    put: (k, v, o) => {
      puts.set(prefix(k), (puts.get(prefix(k)) ?? 0) + 1)
      return inner.put(k, v, o)
    },
    delete: (k, o) => {
      deletes.set(prefix(k), (deletes.get(prefix(k)) ?? 0) + 1)
      return inner.delete(k, o)
    },
  }
}

describe('pins are saved incrementally', () => {
  it('N new peers cost N store writes, each one small; no key holds the whole table', async () => {
    const network = createMemoryNetwork()
    const store = countingStore(levelStore({ path: join(dir, 'db') }))
    const a = node(network, 'a', { storage: store })
    await a.start()
    const N = 12
    const dids: string[] = []
    for (let i = 0; i < N; i++) dids.push((await peer(network, a, `p${i}`, i === 0 ? { agents: [mathAgent()] } : {})).did)
    // one more change: p0 answers a task, its pin becomes firm (one more write)
    const t = math('p0.mesh.kai')
    await a.task(t.target, t.request)
    await a.stop() // flushes the pin writes
    expect(store.puts.get(PIN_PREFIX)).toBe(N + 1)
    expect(store.deletes.get(PIN_PREFIX) ?? 0).toBe(0)
    await store.start()
    try {
      let pinKeys = 0
      for await (const { key, value } of store.query('')) {
        const text = new TextDecoder().decode(value)
        expect(dids.filter((d) => text.includes(d)).length, key).toBeLessThanOrEqual(1)
        if (!key.startsWith(PIN_PREFIX)) continue
        pinKeys++
        expect(value.byteLength).toBeLessThan(200)
      }
      expect(pinKeys).toBe(N)
      expect(JSON.parse(new TextDecoder().decode(await store.get(`${PIN_PREFIX}p0.mesh.kai`)))).toEqual({ did: dids[0], firm: true })
    } finally {
      await store.stop()
    }
  })

  it('persistPins: false writes no pin and restores none', async () => {
    const network = createMemoryNetwork()
    const store = countingStore(memoryStore())
    const a = node(network, 'a', { storage: store, persistPins: false })
    await a.start()
    await peer(network, a, 'p')
    await a.stop()
    expect(store.puts.get(PIN_PREFIX) ?? 0).toBe(0)
  })
})

/** A memory store whose writes wait for `open()`; records the operations in the order they ran. */
function gatedStore() {
  const inner = memoryStore()
  const ops: string[] = []
  let open: () => void = () => {}
  let gate = new Promise<void>((r) => (open = r))
  let failOn: string | undefined
  const store: NodeStore = {
    kind: 'gated',
    start: () => inner.start(),
    stop: () => inner.stop(),
    get: (k, o) => inner.get(k, o),
    has: (k, o) => inner.has(k, o),
    query: (p, o) => inner.query(p, o),
    put: async (k: string, v: Uint8Array, o?: AbortOptions) => {
      await gate
      ops.push(`put ${k} ${new TextDecoder().decode(v)}`)
      if (k === failOn) {
        failOn = undefined
        throw Object.assign(new Error('disk full'), { name: 'DiskFullError' })
      }
      return inner.put(k, v, o)
    },
    delete: async (k: string, o?: AbortOptions) => {
      await gate
      ops.push(`delete ${k}`)
      return inner.delete(k, o)
    },
  }
  return {
    store,
    ops,
    open: () => open(),
    close: () => (gate = new Promise<void>((r) => (open = r))),
    failNext: (k: string) => (failOn = k),
  }
}

const D1 = generateIdentity().did
const D2 = generateIdentity().did
const D3 = generateIdentity().did
const change = (kind: PinChange['kind'], authority: string, did: string, firm = kind === 'firm'): PinChange => ({ kind, pin: { authority, did, firm } })

describe('PinWriter', () => {
  it('writes a burst of changes in order: a delete never lands before its put, the last change of a key wins', async () => {
    const g = gatedStore()
    const w = new PinWriter(g.store, jsonLogger('silent'))
    w.change(change('pinned', 'x.mesh.kai', D1))
    while (w.backlog > 0) await Promise.resolve() // the first write is now in flight, waiting on the store
    w.change(change('evicted', 'x.mesh.kai', D1))
    w.change(change('pinned', 'x.mesh.kai', D2))
    w.change(change('pinned', 'y.mesh.kai', D3))
    w.change(change('firm', 'y.mesh.kai', D3))
    w.change(change('evicted', 'y.mesh.kai', D3))
    w.change(change('pinned', 'z.mesh.kai', D1))
    w.change(change('evicted', 'z.mesh.kai', D1))
    expect(w.backlog).toBe(3)
    g.open()
    await w.flush()
    expect(g.ops).toEqual([
      `put pin/x.mesh.kai {"did":"${D1}","firm":false}`,
      `put pin/x.mesh.kai {"did":"${D2}","firm":false}`,
      'delete pin/y.mesh.kai',
      'delete pin/z.mesh.kai',
    ])
    expect(new TextDecoder().decode(await g.store.get('pin/x.mesh.kai'))).toBe(`{"did":"${D2}","firm":false}`)
    expect(await g.store.has('pin/y.mesh.kai')).toBe(false)
    expect(w.writes).toBe(4)
  })

  it('a failed write is logged, not thrown; the others go on; flush({ retry }) writes it again', async () => {
    const g = gatedStore()
    const lines: string[] = []
    const w = new PinWriter(g.store, jsonLogger('warn', (l) => lines.push(l)))
    g.open()
    g.failNext('pin/x.mesh.kai')
    w.change(change('pinned', 'x.mesh.kai', D1))
    w.change(change('pinned', 'y.mesh.kai', D2))
    await w.flush()
    expect(w.failures).toBe(1)
    expect(await g.store.has('pin/x.mesh.kai')).toBe(false)
    expect(await g.store.has('pin/y.mesh.kai')).toBe(true)
    expect(JSON.parse(lines[0] as string)).toMatchObject({ level: 'warn', msg: 'could not persist authority pin', authority: 'x.mesh.kai', op: 'put', err: 'DiskFullError' })
    await w.flush({ retry: true })
    expect(JSON.parse(new TextDecoder().decode(await g.store.get('pin/x.mesh.kai')))).toEqual({ did: D1, firm: false })
    expect(w.failures).toBe(1)
  })
})

describe('restoring pins', () => {
  it('migrates bare-DID values (0.1) to { did, firm }: provisional unless the operator trusts the DID; drops corrupt, own and contradicted pins', async () => {
    const network = createMemoryNetwork()
    const db = join(dir, 'db')
    const aId = generateIdentity()
    const [old, trusted, own, stale, configured] = [0, 1, 2, 3, 4].map(() => generateIdentity().did) as [string, string, string, string, string]
    const s = levelStore({ path: db })
    await s.start()
    const put = (k: string, v: string) => s.put(PIN_PREFIX + k, new TextEncoder().encode(v))
    await put('old.mesh.kai', old)
    await put('trusted.mesh.kai', trusted)
    await put('junk.mesh.kai', 'not a did')
    await put('a.mesh.kai', own) // this node's own authority
    await put('self.mesh.kai', aId.did) // this node's own DID
    await put('conf.mesh.kai', JSON.stringify({ did: stale, firm: true }))
    await put('BAD AUTHORITY', old)
    await persistentTrustStore(s).trust(trusted, 6)
    await s.stop()

    const lines: string[] = []
    const a = node(network, 'a', {
      identity: aId,
      storage: levelStore({ path: db }),
      router: { pinnedAuthorities: { 'conf.mesh.kai': configured } },
      logger: jsonLogger('info', (l) => lines.push(l)),
    })
    await a.start()
    expect(sortedPins(a)).toEqual([
      { authority: 'conf.mesh.kai', did: configured, firm: true },
      { authority: 'old.mesh.kai', did: old, firm: false },
      { authority: 'trusted.mesh.kai', did: trusted, firm: true },
    ])
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'authority pins restored')).toMatchObject({ restored: 2, firm: 1, migrated: 2, dropped: 5 })
    await a.stop()
    // configured pins are the configuration's: not written to the store
    expect(Object.fromEntries(Object.entries(await storedPins(db)).map(([k, v]) => [k, JSON.parse(v)]))).toEqual({
      'old.mesh.kai': { did: old, firm: false },
      'trusted.mesh.kai': { did: trusted, firm: true },
    })
  })

  it('restores every firm pin and provisional ones only as far as the table has room', async () => {
    const store = memoryStore()
    const enc = (did: string, firm: boolean) => new TextEncoder().encode(JSON.stringify({ did, firm }))
    await store.put(`${PIN_PREFIX}f1.mesh.kai`, enc(D1, true))
    await store.put(`${PIN_PREFIX}f2.mesh.kai`, enc(D2, true))
    const provisional = Array.from({ length: 4 }, () => generateIdentity().did)
    for (const [i, d] of provisional.entries()) await store.put(`${PIN_PREFIX}p${i}.mesh.kai`, enc(d, false))
    const writer = new PinWriter(store, jsonLogger('silent'))
    const r = await loadPins(store, { authority: 'a.mesh.kai', did: D3, configured: { 'c.mesh.kai': generateIdentity().did }, maxPins: 5, trusted: () => false, writer })
    await writer.flush()
    expect(r).toMatchObject({ restored: 4, firm: 2, dropped: 2 })
    expect(Object.keys(r.pinned).sort()).toEqual(['c.mesh.kai', 'f1.mesh.kai', 'f2.mesh.kai', 'p0.mesh.kai', 'p1.mesh.kai'])
    expect(r.pinned['f1.mesh.kai']).toEqual({ did: D1, firm: true })
    expect(r.pinned['p0.mesh.kai']).toEqual({ did: provisional[0], firm: false })
    expect(await store.has(`${PIN_PREFIX}p2.mesh.kai`)).toBe(false)
    expect(await store.has(`${PIN_PREFIX}p3.mesh.kai`)).toBe(false)
  })
})
