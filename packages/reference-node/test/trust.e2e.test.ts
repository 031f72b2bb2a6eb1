/**
 * The web of trust end to end, on real `kos-mesh` processes on loopback TCP: node C trusts node A
 * (`kos-mesh trust <A> 8`) and asks one endorsement for tasks (`init --task-min-endorsements 1`,
 * trustPolicy.TASK_REQUEST.required_endorsements in config.json). B's task to C is refused
 * (insufficient_trust); `kos-mesh attest <B>` on A floods to C and the same task is accepted;
 * `kos-mesh revoke <B>` on A makes it refused again; and C, stopped and started again, still holds
 * A's anchor, the attestation and the revocation. Every wait polls with a deadline.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, connectedDids, control, eventually, freePorts, json, startNode, stopAll, type Running } from './e2e-helpers.js'

let root: string
const running: Running[] = []
const dir = (name: string): string => join(root, name)

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-trust-e2e-'))
})

afterAll(async () => {
  await stopAll(running)
  if (root !== undefined) await rm(root, { recursive: true, force: true })
}, 30_000)

interface Report {
  endorsements: number
  endorsers: string[]
  revoked: boolean
}

async function reputation(node: string, did: string): Promise<Report | undefined> {
  const r = await control(dir(node), 'GET', `/v1/reputation?subject=${encodeURIComponent(did)}`)
  return r.status === 200 ? (JSON.parse(r.text) as { reputation: Report }).reputation : undefined
}

const connected = async (node: string, did: string): Promise<boolean> => (await connectedDids(dir(node))).includes(did)

describe('trust across three processes: anchor, attestation flood, revocation, restart', () => {
  it('a task from B to C follows A\'s attestation and revocation of B, and C keeps the state across a restart', async () => {
    const [pA, pB, pC] = await freePorts(3)
    const inits = await Promise.all([
      cli(['init', '--json', '--data-dir', dir('a'), '--name', 'a', '--agents', '', '--listen', `tcp://127.0.0.1:${pA}`]),
      cli(['init', '--json', '--data-dir', dir('b'), '--name', 'b', '--agents', '', '--listen', `tcp://127.0.0.1:${pB}`]),
      cli(['init', '--json', '--data-dir', dir('c'), '--name', 'c', '--agents', 'math', '--listen', `tcp://127.0.0.1:${pC}`, '--task-min-endorsements', '1']),
    ])
    for (const r of inits) expect(r.code, r.stderr).toBe(0)
    const saved = JSON.parse(await readFile(join(dir('c'), 'config.json'), 'utf8')) as { trustPolicy: unknown }
    expect(saved.trustPolicy).toEqual({ TASK_REQUEST: { minimum_trust_score: 0, required_endorsements: 1, verification_level: 'none' } })

    const c = await startNode(dir('c'), [], running)
    const cAddr = c.started.addrs[0] as string
    const [a, b] = await Promise.all([startNode(dir('a'), ['--seed', cAddr], running), startNode(dir('b'), ['--seed', cAddr], running)])
    const [A, B, C] = [a.started.did, b.started.did, c.started.did]
    await eventually('A and B are connected to C', async () => (await connected('c', A)) && (await connected('c', B)))

    // C trusts A at 8 (an anchor: A's endorsements count at C)
    const t = await cli(['trust', '--json', '--data-dir', dir('c'), A, '8'])
    expect(t.code, t.stderr).toBe(0)
    expect(json(t)).toMatchObject({ did: A, trust_score: 8, score: 8 })

    const task = (): Promise<{ code: number | null; doc: Record<string, any> }> =>
      cli(['task', '--json', '--data-dir', dir('b'), 'klp://c.mesh.kai/agents/math', '6 * 7']).then((r) => ({ code: r.code, doc: json(r) }))
    const refused = await task()
    expect(refused.code).toBe(4)
    expect(refused.doc).toMatchObject({ exitCode: 4, error: { reason: 'insufficient_trust' } })

    // A endorses B: the attestation floods to C
    const at = await cli(['attest', '--json', '--data-dir', dir('a'), B])
    expect(at.code, at.stderr).toBe(0)
    const attestation = json<{ id: string; issuer: string; subject: string; claim: string }>(at)
    expect(attestation).toMatchObject({ issuer: A, subject: B, claim: 'endorse' })
    await eventually('C counts A\'s endorsement of B', async () => (await reputation('c', B))?.endorsements === 1)
    const accepted = await task()
    expect(accepted.code, JSON.stringify(accepted.doc)).toBe(0)
    expect(accepted.doc).toMatchObject({ status: 'completed', result: { value: 42 } })

    // A revokes its attestations about B: refused again
    const rv = await cli(['revoke', '--json', '--data-dir', dir('a'), B])
    expect(rv.code, rv.stderr).toBe(0)
    const revocation = json<{ id: string; scope: string }>(rv)
    expect(revocation.scope).toBe('attestations')
    await eventually('C applies A\'s revocation', async () => (await reputation('c', B))?.endorsements === 0)
    const refusedAgain = await task()
    expect(refusedAgain.code).toBe(4)
    expect(refusedAgain.doc).toMatchObject({ error: { reason: 'insufficient_trust' } })

    // C stops and starts again: its anchor and both statements are back from db/
    const stop = await cli(['stop', '--json', '--data-dir', dir('c')])
    expect(stop.code, stop.stderr).toBe(0)
    const c2 = await startNode(dir('c'), [], running)
    expect(c2.started.did).toBe(C)
    const list = await cli(['trust', '--json', '--data-dir', dir('c')])
    expect(json<unknown[]>(list)).toEqual([expect.objectContaining({ did: A, trust_score: 8, score: 8 })])
    const held = JSON.parse((await control(dir('c'), 'GET', `/v1/statements?subject=${encodeURIComponent(B)}`)).text) as { statements: Array<{ id: string }> }
    expect(held.statements.map((s) => s.id)).toEqual(expect.arrayContaining([attestation.id, revocation.id]))
    expect(await reputation('c', B)).toMatchObject({ endorsements: 0, revoked: false })
    const status = await cli(['status', '--data-dir', dir('c')])
    expect(status.stdout).toMatch(/^trust: +1 anchor, [2-9]\d* statements held/m)
    await eventually('B is connected to C again (redialled)', async () => connected('b', C))
    const afterRestart = await task()
    expect(afterRestart.code).toBe(4)
    expect(afterRestart.doc).toMatchObject({ error: { reason: 'insufficient_trust' } })

    // and the restarted C still weighs A's word: a new endorsement (after the revocation) counts
    await eventually('A is connected to C again (redialled)', async () => connected('a', C))
    const again = await cli(['attest', '--json', '--data-dir', dir('a'), B])
    expect(again.code, again.stderr).toBe(0)
    await eventually('C counts the new endorsement', async () => (await reputation('c', B))?.endorsements === 1)
    const acceptedAgain = await task()
    expect(acceptedAgain.code, JSON.stringify(acceptedAgain.doc)).toBe(0)
  }, 60_000)
})
