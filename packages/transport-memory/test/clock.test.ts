import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { AbortError, every, systemClock, type Clock, type Connection, type TimerHandle } from '@kos-mesh/interface'
import { describe, expect, it } from 'vitest'
import { createMemoryNetwork, memoryTransport, seededRandom, type MemoryNetwork, type MemoryTransport } from '../src/index.js'

/**
 * A few "services" on a lossy virtual network, each taking every timer from `network.clock`:
 * a heartbeat (`every`), a sleep loop with seeded jitter, and requests whose timeout timers are
 * cleared by the replies that arrive in time. Returns the log of everything that happened.
 */
async function servicesScenario(seed: string, stepMs = 0): Promise<string[]> {
  const network = createMemoryNetwork({ seed, time: 'virtual', startTime: 0, defaults: { latencyMs: 20, jitterMs: 15, loss: 0.15, duplicate: 0.05, reorder: 0.1 } })
  const clock: Clock = network.clock
  const n = 4
  const log: string[] = []
  const note = (who: number, what: string): void => { log.push(`${clock.now()} s${who} ${what}`) }
  const ts: MemoryTransport[] = Array.from({ length: n }, (_, i) => memoryTransport({ peerId: `did:key:s${i}`, network }))
  /** Request timeout timers by request id; a reply clears its timer. */
  const pending = new Map<string, TimerHandle>()

  const serve = (i: number, conn: Connection): void => {
    void (async () => {
      try {
        for await (const f of conn) {
          const text = new TextDecoder().decode(f)
          note(i, `got ${text} from ${conn.remotePeer}`)
          if (text.startsWith('req ')) {
            // answer after a service-side delay taken from the clock
            const id = text.slice(4)
            clock.setTimeout(() => { void conn.send(new TextEncoder().encode(`rep ${id}`)).catch(() => {}) }, 5 + (id.length % 7))
          } else if (text.startsWith('rep ')) {
            const id = text.slice(4)
            const timer = pending.get(id)
            if (timer !== undefined) {
              clock.clearTimeout(timer)
              pending.delete(id)
              note(i, `answered ${id}`)
            }
          }
        }
      } catch { /* reset */ }
    })()
  }

  for (const [i, t] of ts.entries()) await t.listen(`memory://s${i}`, (c) => serve(i, c))
  const conns: Connection[][] = ts.map(() => [])
  const dials: Array<Promise<void>> = []
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue
      dials.push((ts[i] as MemoryTransport).dial(`memory://s${j}`).then((c) => { (conns[i] as Connection[]).push(c); serve(i, c) }))
    }
  }
  await network.runFor(100)
  await Promise.all(dials)

  const stops: Array<() => void> = []
  const abort = new AbortController()
  const loops: Array<Promise<void>> = []
  for (let i = 0; i < n; i++) {
    const random = seededRandom(`${seed}/s${i}`)
    const mine = conns[i] as Connection[]
    let k = 0
    // heartbeat: a request to a random neighbour every 50 + 10 i ms, with a 120 ms timeout
    stops.push(every(clock, 50 + 10 * i, () => {
      const id = `${i}.${k++}`
      const conn = mine[Math.floor(random() * mine.length)] as Connection
      pending.set(id, clock.setTimeout(() => { pending.delete(id); note(i, `timeout ${id}`) }, 120))
      void conn.send(new TextEncoder().encode(`req ${id}`)).catch(() => {})
    }))
    // a sleep loop with seeded jitter that gossips to everyone
    loops.push((async () => {
      try {
        for (;;) {
          await clock.sleep(30 + Math.floor(random() * 40), { signal: abort.signal })
          note(i, 'tick')
          for (const c of mine) void c.send(new TextEncoder().encode(`tick ${i}`)).catch(() => {})
        }
      } catch (err) {
        if (!(err instanceof AbortError)) throw err
      }
    })())
  }
  await network.runFor(2_000, { stepMs })
  for (const stop of stops) stop()
  abort.abort()
  await Promise.all(loops)
  for (const t of ts) await t.close()
  await network.runUntilIdle()
  return log
}

describe('network.clock is the interface Clock', () => {
  it('drives timers of several services deterministically: two runs of a seeded scenario log the same events in the same order', async () => {
    const a = await servicesScenario('clock-1')
    const b = await servicesScenario('clock-1')
    expect(b).toEqual(a)
    // the scenario exercised every kind of timer: heartbeats answered (cleared timeouts), timeouts, sleeps
    expect(a.some((l) => l.includes(' answered '))).toBe(true)
    expect(a.some((l) => l.includes(' timeout '))).toBe(true)
    expect(a.some((l) => l.endsWith(' tick'))).toBe(true)
    // and is sensitive to the seed, so equality above is not vacuous
    const c = await servicesScenario('clock-2')
    expect(c).not.toEqual(a)
  })

  it('stays deterministic when runFor batches events with stepMs', async () => {
    const a = await servicesScenario('clock-3', 10)
    const b = await servicesScenario('clock-3', 10)
    expect(b).toEqual(a)
    expect(a.length).toBeGreaterThan(100)
  })

  it('runs timers due at the same time in the order they were set, across services', () => {
    const network = createMemoryNetwork({ time: 'virtual', startTime: 0 })
    const order: string[] = []
    const clocks: Clock[] = [network.clock, network.clock, network.clock]
    for (const [i, c] of clocks.entries()) c.setTimeout(() => order.push(`late${i}`), 10)
    for (const [i, c] of clocks.entries()) c.setTimeout(() => order.push(`early${i}`), 5, { unref: true })
    network.advance(10)
    expect(order).toEqual(['early0', 'early1', 'early2', 'late0', 'late1', 'late2'])
  })

  it('clearTimeout ignores undefined, handles of other clocks and timers that already ran', () => {
    const network = createMemoryNetwork({ time: 'virtual', startTime: 0 })
    const other = createMemoryNetwork({ time: 'virtual', startTime: 0 })
    let ran = 0
    const h = network.clock.setTimeout(() => { ran++ }, 10)
    const foreign = other.clock.setTimeout(() => { ran += 100 }, 10)
    const sys = systemClock.setTimeout(() => {}, 1_000, { unref: true })
    network.clock.clearTimeout(undefined)
    network.clock.clearTimeout(foreign)
    network.clock.clearTimeout(sys)
    systemClock.clearTimeout(sys)
    expect(network.pendingEvents).toBe(1)
    expect(other.pendingEvents).toBe(1)
    network.advance(10)
    network.clock.clearTimeout(h)
    expect(network.pendingEvents).toBe(0)
    other.advance(10)
    expect(ran).toBe(101)
  })

  it('sleep rejects with AbortError when its signal fires, and the timer is gone', async () => {
    const network: MemoryNetwork = createMemoryNetwork({ time: 'virtual', startTime: 0 })
    const ac = new AbortController()
    const sleeping = network.clock.sleep(1_000, { signal: ac.signal })
    expect(network.pendingEvents).toBe(1)
    ac.abort()
    await expect(sleeping).rejects.toMatchObject({ name: 'AbortError' })
    expect(network.pendingEvents).toBe(0)
  })
})

describe('real-time network clock and unref', () => {
  const script = fileURLToPath(new URL('./fixtures/unref-child.ts', import.meta.url))
  const run = (mode: string): { status: number | null; stdout: string; signal: NodeJS.Signals | null } => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, mode], { encoding: 'utf8', timeout: 20_000 })
    return { status: r.status, stdout: r.stdout, signal: r.signal }
  }

  it('an unref timer alone does not keep the process alive; a ref timer does until it fires', () => {
    const unref = run('unref')
    expect(unref.signal).toBeNull()
    expect(unref.status).toBe(0)
    expect(unref.stdout).toBe('end\n')
    const ref = run('ref')
    expect(ref.status).toBe(0)
    expect(ref.stdout).toBe('end\nfired\n')
    // an unref timer behind a ref one: the process lives until the ref one ran, then exits
    const mixed = run('mixed')
    expect(mixed.status).toBe(0)
    expect(mixed.stdout).toBe('end\nunref early fired\nref fired\n')
  })
})
