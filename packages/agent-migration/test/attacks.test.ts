/**
 * Attacks: each refused with a typed error (a reason code on the wire) and nothing changed on
 * either node: the target's whole store, and the source's agent records, are byte-identical.
 */
import { KLPMessageType, type KeyValueStore } from '@kos-mesh/interface'
import type { BulkSource } from '@kos-mesh/klp-router'
import { createTrustEngine } from '@kos-mesh/trust'
import { afterEach, describe, expect, it } from 'vitest'
import { appendAudit } from '../src/audit.js'
import { signDelegation } from '../src/delegation.js'
import { codeHash, computeFingerprint } from '../src/fingerprint.js'
import { buildRequest } from '../src/request.js'
import type { CreateAgentInit } from '../src/protocol/host.js'
import type { BehavioralFingerprint, SerializedAgent } from '../src/types.js'
import { COUNTER_CODE, PERMS, ident, rejectsWith, sampleAgent } from './helpers.js'
import { migrationNet, type MNet } from './net.js'

let m: MNet | undefined
afterEach(async () => { await m?.stop(); m = undefined })

async function snapshot(store: KeyValueStore, prefix = '/'): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for await (const { key, value } of store.query(prefix)) out.set(key, Buffer.from(value).toString('hex'))
  return out
}

const def = (over: Partial<CreateAgentInit> = {}): CreateAgentInit => ({ agent_id: 'agent-1', name: 'counter', code: COUNTER_CODE, capabilities: ['count'], permissions: PERMS, data: { count: 0 }, params: { greeting: 'hi' }, probes: [1], ...over })

/** Runs `attack` and checks nothing changed: b's whole store, a's agent records. Returns the refusal reason. */
async function refused(attack: () => Promise<unknown>, name = 'MigrationRefusedError'): Promise<string | undefined> {
  const [a, b] = m!.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
  const beforeA = await snapshot(a.store, '/agent-migration/agents/')
  const beforeB = await snapshot(b.store)
  const err = await rejectsWith(m!.drive(attack()), name)
  await m!.drive(m!.net.network.clock.sleep(3000))
  expect(await snapshot(a.store, '/agent-migration/agents/')).toEqual(beforeA)
  expect(await snapshot(b.store)).toEqual(beforeB)
  return err.reason
}

/** Sends a prepare with these bundle bytes from node `from` to node 1; rejects with the router's RemoteRejectedError. */
function sendPrepare(from: number, mid: string, bundle: Uint8Array): Promise<unknown> {
  const b = m!.nodes[1]!
  return m!.net.nodes[from]!.router.request({ type: KLPMessageType.AGENT_MIGRATION, target: `klp://${b.authority}/agent-migration`, data: { op: 'prepare', migration_id: mid, bundle } }, { expectedSigner: b.did, timeoutMs: 2000 })
}

interface Forge { agent?: SerializedAgent; fingerprint?: BehavioralFingerprint; signerIndex?: number; sourceIndex?: number; delegations?: Uint8Array[]; expiresIn?: number; mid?: string }

/** A MOVE request from node 0 (or as told) to node 1 built by hand, valid unless told otherwise. */
async function forge(f: Forge = {}): Promise<{ mid: string; bytes: Uint8Array }> {
  const src = m!.net.nodes[f.sourceIndex ?? 0]!.identity
  const signer = m!.net.nodes[f.signerIndex ?? f.sourceIndex ?? 0]!.identity
  const now = m!.net.network.clock.now()
  const agent = f.agent ?? sampleAgent({ owner: src.did })
  const owner = agent.agent_metadata.owner
  const ownerId = owner === src.did ? src : ident('owner')
  let trail = await appendAudit([], { agent_id: 'agent-1', node: owner, event: 'created', epoch: 0, at: now, migration_id: '', peer: src.did, checksum: agent.checksum }, ownerId.signer)
  const mid = f.mid ?? 'forged-migration-0001'
  trail = await appendAudit(trail, { agent_id: 'agent-1', node: src.did, event: 'migrated_out', epoch: 1, at: now, migration_id: mid, peer: m!.nodes[1]!.did, checksum: agent.checksum }, src.signer)
  const { bytes } = await buildRequest({ migration_id: mid, agent_id: 'agent-1', owner, source_node: src.did, target_node: m!.nodes[1]!.did, migration_type: 'move', epoch: 1, created_at: now, expires_at: now + (f.expiresIn ?? 60_000), fingerprint: f.fingerprint ?? (await computeFingerprint(agent)), delegations: f.delegations ?? [], restore_epoch: -1 }, agent, trail, signer.signer, null)
  return { mid, bytes }
}

describe('attacks on the target', () => {
  it('a request signed by someone else than the source it names is refused', async () => {
    m = await migrationNet(3)
    const { mid, bytes } = await forge({ sourceIndex: 0 })
    // node 2 relays node 0's request as its own
    expect(await refused(() => sendPrepare(2, mid, bytes), 'RemoteRejectedError')).toBe('not_sender')
    // a header whose signature is not the source's key (a flipped signature byte)
    const t = bytes.slice()
    const sigAt = Buffer.from(bytes).indexOf(Buffer.from([0x58, 0x40])) + 2 // the first 64-byte byte string: the header's signature
    t[sigAt + 5] = (t[sigAt + 5] as number) ^ 1
    expect(await refused(() => sendPrepare(0, mid, t), 'RemoteRejectedError')).toBe('bad_signature')
  })

  it('a replayed request is refused after the migration, and by a third party', async () => {
    m = await migrationNet(3)
    const { mid, bytes } = await forge()
    await m.drive(sendPrepare(0, mid, bytes))
    await m.drive(m.net.nodes[0]!.router.request({ type: KLPMessageType.AGENT_MIGRATION, target: `klp://${m.nodes[1]!.authority}/agent-migration`, data: { op: 'commit', migration_id: mid } }, { expectedSigner: m.nodes[1]!.did }))
    expect((await m.nodes[1]!.svc.list())[0]!.status).toBe('active')
    expect(await refused(() => sendPrepare(0, mid, bytes), 'RemoteRejectedError')).toBe('stale')
    // the same bundle under a new message: same id, refused; an older epoch of the agent: refused
    const older = await forge({ mid: 'forged-migration-0002' })
    expect(await refused(() => sendPrepare(0, older.mid, older.bytes), 'RemoteRejectedError')).toBe('stale')
  })

  it('an expired request is refused', async () => {
    m = await migrationNet(2)
    const { mid, bytes } = await forge({ expiresIn: 1000 })
    await m.drive(m.net.network.clock.sleep(2000))
    expect(await refused(() => sendPrepare(0, mid, bytes), 'RemoteRejectedError')).toBe('expired')
  })

  it('a wrong owner: the source neither owns the agent nor holds a delegation', async () => {
    m = await migrationNet(2)
    const owner = ident('owner')
    const agent = sampleAgent({ owner: owner.did })
    const { mid, bytes } = await forge({ agent })
    expect(await refused(() => sendPrepare(0, mid, bytes), 'RemoteRejectedError')).toBe('ownership')
    // a delegation signed by someone who is not the owner
    const mallory = ident('mallory')
    const now = m.net.network.clock.now()
    const fake = await signDelegation({ issuer: mallory.did, delegate: m.nodes[0]!.did, agent_id: 'agent-1', actions: ['move'], targets: [], redelegate: false, issued_at: now, expires_at: now + 60_000 }, mallory.signer)
    const f2 = await forge({ agent, delegations: [fake], mid: 'forged-migration-0003' })
    expect(await refused(() => sendPrepare(0, f2.mid, f2.bytes), 'RemoteRejectedError')).toBe('ownership')
  })

  it('an expired delegation: refused at the target, the source keeps its agent live', async () => {
    m = await migrationNet(2)
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    const owner = ident('owner')
    const now = m.net.network.clock.now()
    const d = await signDelegation({ issuer: owner.did, delegate: a.did, agent_id: 'agent-1', actions: ['move'], targets: [], redelegate: true, issued_at: now, expires_at: now + 1000 }, owner.signer)
    await m.drive(a.svc.create(def({ owner: owner.did, ownerSigner: owner.signer, delegations: [d] })))
    await m.drive(m.net.network.clock.sleep(2000))
    const err = await rejectsWith(m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did })), 'MigrationRefusedError')
    expect(err.reason).toBe('expired')
    expect((await a.svc.list())[0]!.status).toBe('active')
    expect(await m.drive(a.svc.run('agent-1', 1))).toMatchObject({ n: 1 })
    expect((await b.svc.list())).toEqual([])
  })

  it('a tampered bundle is refused (checksum)', async () => {
    m = await migrationNet(2)
    const agent = sampleAgent({ owner: m.nodes[0]!.did, memory: [{ key: 'm', value: new Uint8Array(256).fill(7) }] })
    const { mid, bytes } = await forge({ agent })
    const t = bytes.slice()
    const at = Buffer.from(t).indexOf(Buffer.from(new Uint8Array(32).fill(7)))
    t[at] = 8
    expect(await refused(() => sendPrepare(0, mid, t), 'RemoteRejectedError')).toBe('checksum_mismatch')
  })

  it('a fingerprint that does not match the agent is refused', async () => {
    m = await migrationNet(2)
    const agent = sampleAgent({ owner: m.nodes[0]!.did })
    const other = await computeFingerprint(sampleAgent({ owner: m.nodes[0]!.did, data: { count: 41 } }))
    const { mid, bytes } = await forge({ agent, fingerprint: other })
    expect(await refused(() => sendPrepare(0, mid, bytes), 'RemoteRejectedError')).toBe('fingerprint_mismatch')
  })

  it('an agent that exceeds its sandbox limits, or calls a capability it was not granted, is refused', async () => {
    m = await migrationNet(2)
    const fp = { v: 1, code_hash: new Uint8Array(32), answers: [] } as BehavioralFingerprint
    const loop = sampleAgent({ owner: m.nodes[0]!.did, code: 'function handle() { for (;;) {} }' })
    const f1 = await forge({ agent: loop, fingerprint: { ...fp, code_hash: codeHash(loop) } })
    expect(await refused(() => sendPrepare(0, f1.mid, f1.bytes), 'RemoteRejectedError')).toBe('sandbox_limit')
    const sneaky = sampleAgent({ owner: m.nodes[0]!.did, code: 'function handle(i, s) { return { output: host.now(), state: s } }' })
    const f2 = await forge({ agent: sneaky, fingerprint: { ...fp, code_hash: codeHash(sneaky) }, mid: 'forged-migration-0004' })
    expect(await refused(() => sendPrepare(0, f2.mid, f2.bytes), 'RemoteRejectedError')).toBe('capability_not_granted')
  })

  it('needs the target cannot meet are refused before anything is transferred', async () => {
    m = await migrationNet(2, (i) => (i === 1 ? { policy: { capabilities: ['log'] } } : {}))
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    await m.drive(a.svc.create(def({ permissions: { ...PERMS, capabilities: ['log', 'clock'], required: ['log', 'clock'] } })))
    const stats = b.bulk.stats().transfers
    const err = await rejectsWith(m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did })), 'MigrationRefusedError')
    expect(err.reason).toBe('permission_refused')
    expect(err.message).toContain('permission_refused')
    expect(b.svc.stats().refused).toEqual({ permission_refused: 1 })
    expect(a.svc.stats()).toMatchObject({ started: 1, failed: 1, completed: 0 })
    expect(b.bulk.stats().transfers).toBe(stats)
    expect((await a.svc.list())[0]!.status).toBe('active')
  })

  it('a tampered chunk of a bulk transfer is refused; the source keeps its agent', async () => {
    m = await migrationNet(2, () => ({ inlineMaxBytes: 16 * 1024 }))
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    await m.drive(a.svc.create(def({ memory: [{ key: 'blob', value: new Uint8Array(600 * 1024).fill(1) }] })))
    // the source's bulk sender serves other bytes than it hashed (a corrupted or malicious sender)
    const real = a.bulk
    let reads = 0
    const tampering = (src: BulkSource): BulkSource => ({ size: src.size, read: async (off, len) => { const c = new Uint8Array(await src.read(off, len)); if (++reads > 3 && c.length > 0) c[0] = (c[0] as number) ^ 0xff; return c } })
    const orig = real.offer.bind(real)
    ;(real as { offer: typeof real.offer }).offer = (src, o) => orig(tampering(src), o)
    const err = await rejectsWith(m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did })), 'MigrationRefusedError')
    expect(err.reason).toBe('transfer_failed')
    expect((await a.svc.list())[0]!.status).toBe('active')
    expect(await b.svc.list()).toEqual([])
  })
})

describe('the trust engine hears the outcome', () => {
  it('a forged request becomes a forged_message delta, a completed migration a task_ok one (@kos-mesh/trust)', async () => {
    m = await migrationNet(2)
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    const clock = m.net.network.clock
    const engineA = createTrustEngine({ self: a.did }, { clock })
    const engineB = createTrustEngine({ self: b.did }, { clock })
    await a.restartWith({ trust: engineA })
    await b.restartWith({ trust: engineB })
    const { mid, bytes } = await forge()
    const t = bytes.slice()
    const sigAt = Buffer.from(bytes).indexOf(Buffer.from([0x58, 0x40])) + 2
    t[sigAt] = (t[sigAt] as number) ^ 1
    await rejectsWith(m.drive(sendPrepare(0, mid, t)), 'RemoteRejectedError')
    await m.drive(a.svc.create(def()))
    await m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did }))
    const deltasB = engineB.takeOwnDeltas()
    expect(deltasB.find((d) => d.subject === a.did)?.counts).toMatchObject({ forged_message: 1, task_ok: 1 })
    expect(engineA.takeOwnDeltas().find((d) => d.subject === b.did)?.counts).toMatchObject({ task_ok: 1 })
  })
})
