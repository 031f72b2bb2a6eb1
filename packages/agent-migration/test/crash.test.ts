/**
 * Crash tests: a MOVE with a crash injected at every durable step of each side (the process dies
 * just before or just after its k-th write: nothing more is written, and its connections are cut
 * at once), then the node restarts from what its store kept, and both recover. Afterwards exactly
 * one node has the agent live, with the last committed state, every time: exhaustively over every
 * step, and under fast-check generated plans that also schedule the network (the simulator's seed,
 * link loss, jitter, duplication and reordering) and the restart delay.
 */
import type { KeyValueStore } from '@kos-mesh/interface'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { memoryKeyValueStore } from '../src/store.js'
import type { CreateAgentInit } from '../src/protocol/host.js'
import { COUNTER_CODE, PERMS } from './helpers.js'
import { migrationNet, type MNet } from './net.js'

class Crash extends Error { override name = 'CrashError' }

interface Plan { side: 0 | 1; step: number; when: 'before' | 'after'; loss: number; restartMs: number; seed: number; jitterMs?: number; duplicate?: number; reorder?: number }

/** A store that dies at its `step`-th put (counted from arm()); `onCrash` runs synchronously then. */
function crashable(inner: KeyValueStore, onCrash: () => void) {
  let armed: { step: number; when: 'before' | 'after' } | undefined
  let puts = 0
  let dead = false
  const die = (): never => { throw new Crash('crashed') }
  const store: KeyValueStore = {
    get: async (k, o) => (dead ? die() : inner.get(k, o)),
    has: async (k, o) => (dead ? die() : inner.has(k, o)),
    delete: async (k, o) => (dead ? die() : inner.delete(k, o)),
    put: async (k, v, o) => {
      if (dead) die()
      if (armed !== undefined && ++puts === armed.step) {
        if (armed.when === 'after') await inner.put(k, v, o)
        dead = true
        onCrash()
        die()
      }
      return inner.put(k, v, o)
    },
    async *query(p, o) { if (dead) die(); yield* inner.query(p, o) },
  }
  return { store, arm: (step: number, when: 'before' | 'after') => { armed = { step, when }; puts = 0 }, disarm: () => { armed = undefined }, get crashed() { return dead } }
}

const def: CreateAgentInit = { agent_id: 'agent-1', name: 'counter', code: COUNTER_CODE, capabilities: ['count'], permissions: PERMS, data: { count: 0 }, params: { greeting: 'hi' }, probes: [1] }

let m: MNet | undefined
afterEach(async () => { await m?.stop(); m = undefined })

async function live(n: MNet['nodes'][number]): Promise<boolean> {
  return (await n.svc.list()).some((a) => a.agent_id === 'agent-1' && a.status === 'active')
}

/** Runs one MOVE under `plan`; returns what happened. */
async function runPlan(plan: Plan): Promise<{ crashed: boolean; liveOn: number[]; n: number }> {
  m = await migrationNet(2, () => ({}), plan.seed)
  const net = m.net.network
  const inner = [memoryKeyValueStore(), memoryKeyValueStore()]
  const wrappers = m.nodes.map((node, i) => crashable(inner[i]!, () => net.isolate(node.did)))
  for (const [i, node] of m.nodes.entries()) await node.restart(wrappers[i]!.store)
  const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
  await m.drive(a.svc.create(def))
  await m.drive(a.svc.run('agent-1', 'one'))
  await m.drive(a.svc.run('agent-1', 'two'))
  net.setDefaults({ loss: plan.loss, jitterMs: plan.jitterMs ?? 0, duplicate: plan.duplicate ?? 0, reorder: plan.reorder ?? 0 })
  wrappers[plan.side]!.arm(plan.step, plan.when)
  await m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did }).catch((e: unknown) => e))
  const crashed = wrappers[plan.side]!.crashed
  wrappers[plan.side]!.disarm()
  if (crashed) {
    // the process is gone; it comes back after restartMs with what its store kept
    await m.drive(m.net.network.clock.sleep(plan.restartMs))
    net.heal()
    await m.nodes[plan.side]!.restart(inner[plan.side]!)
  }
  net.setDefaults({ loss: 0, jitterMs: 0, duplicate: 0, reorder: 0 })
  // recovery: the loops run every second; give them time, then one explicit pass each
  await m.drive(m.net.network.clock.sleep(15_000))
  for (const x of m.nodes) await m.drive(x.svc.recover())
  const liveOn = [] as number[]
  for (const [i, x] of m.nodes.entries()) if (await live(x)) liveOn.push(i)
  let n = -1
  if (liveOn.length === 1) n = ((await m.drive(m.nodes[liveOn[0]!]!.svc.run('agent-1', 'after'))) as { n: number }).n
  return { crashed, liveOn, n }
}

const SOURCE_PUTS = 4 // out: preparing, committed; agent: gone; out: done
const TARGET_PUTS = 4 // in: prepared; bundle; agent: active; in: committed

describe('MOVE under crashes', () => {
  const cases: Plan[] = []
  for (const when of ['before', 'after'] as const) {
    for (let s = 1; s <= SOURCE_PUTS; s++) cases.push({ side: 0, step: s, when, loss: 0, restartMs: 3000, seed: s })
    for (let s = 1; s <= TARGET_PUTS; s++) cases.push({ side: 1, step: s, when, loss: 0, restartMs: 3000, seed: 10 + s })
  }

  it.each(cases.map((c) => [`${c.side === 0 ? 'source' : 'target'} crashes ${c.when} write ${c.step}`, c] as const))('%s: exactly one live agent with the last state', async (_, plan) => {
    const r = await runPlan(plan)
    expect(r.crashed).toBe(true)
    expect(r.liveOn).toHaveLength(1)
    expect(r.n).toBe(3)
  })

  it('no crash: the agent ends on the target', async () => {
    const r = await runPlan({ side: 0, step: 99, when: 'before', loss: 0, restartMs: 0, seed: 5 })
    expect(r).toEqual({ crashed: false, liveOn: [1], n: 3 })
  })

  it('fast-check plans (side, step, before/after, loss, jitter, duplication, reordering, restart delay, network seed): always exactly one live agent', async () => {
    await fc.assert(fc.asyncProperty(
      fc.record({ side: fc.constantFrom(0 as const, 1 as const), step: fc.integer({ min: 1, max: 6 }), when: fc.constantFrom('before' as const, 'after' as const), loss: fc.constantFrom(0, 0.05, 0.2), jitterMs: fc.integer({ min: 0, max: 40 }), duplicate: fc.constantFrom(0, 0.1), reorder: fc.constantFrom(0, 0.2), restartMs: fc.integer({ min: 0, max: 20_000 }), seed: fc.integer({ min: 0, max: 1e6 }) }),
      async (plan) => {
        try {
          const r = await runPlan(plan)
          expect(r.liveOn).toHaveLength(1)
          expect(r.n).toBe(3)
        } finally {
          await m?.stop()
          m = undefined
        }
      },
    ), { numRuns: 40, seed: 20261207 })
  }, 300_000)
})
