import { describe, expect, it } from 'vitest'
import { appendAudit, auditHead, verifyAuditTrail } from '../src/audit.js'
import { signObject } from '../src/cose.js'
import { checkDelegationChain, signDelegation, type DelegationInit } from '../src/delegation.js'
import { checkFingerprint, computeFingerprint } from '../src/fingerprint.js'
import { grantPermissions, resolvePolicy } from '../src/policy.js'
import { runInSandbox } from '../src/sandbox.js'
import { openSecrets, sealSecrets } from '../src/seal.js'
import type { KLPValue } from '@kos-mesh/interface'
import type { AuditTrail } from '../src/index.js'
import { ident, PERMS, rejectsWith, sampleAgent } from './helpers.js'

const owner = ident('owner')
const nodeA = ident('A')
const nodeB = ident('B')
const nodeC = ident('C')
const mallory = ident('mallory')
const NOW = 1_000_000

const deleg = (over: Partial<DelegationInit> = {}): DelegationInit => ({ issuer: owner.did, delegate: nodeA.did, agent_id: 'agent-1', actions: ['move', 'copy'], targets: [], redelegate: true, issued_at: NOW - 10, expires_at: NOW + 60_000, ...over })
const check = { owner: owner.did, actor: nodeA.did, agentId: 'agent-1', action: 'move' as const, target: nodeB.did, now: NOW }

describe('ownership and delegation chains', () => {
  it('the owner needs no delegation; a node needs one from the owner', async () => {
    expect(checkDelegationChain([], { ...check, actor: owner.did })).toEqual([])
    await rejectsWith(() => checkDelegationChain([], check), 'OwnershipError')
    expect(checkDelegationChain([await signDelegation(deleg(), owner.signer)], check)).toHaveLength(1)
  })

  it('refuses a wrong owner, an expired or future link, an uncovered action, agent or target', async () => {
    await rejectsWith(async () => checkDelegationChain([await signDelegation(deleg({ issuer: mallory.did }), mallory.signer)], check), 'OwnershipError')
    await rejectsWith(async () => checkDelegationChain([await signDelegation(deleg({ expires_at: NOW }), owner.signer)], check), 'MigrationExpiredError')
    await rejectsWith(async () => checkDelegationChain([await signDelegation(deleg({ issued_at: NOW + 3_600_000, expires_at: NOW + 7_200_000 }), owner.signer)], check), 'MigrationExpiredError')
    await rejectsWith(async () => checkDelegationChain([await signDelegation(deleg({ actions: ['copy'] }), owner.signer)], check), 'DelegationError')
    await rejectsWith(async () => checkDelegationChain([await signDelegation(deleg({ agent_id: 'agent-2' }), owner.signer)], check), 'DelegationError')
    await rejectsWith(async () => checkDelegationChain([await signDelegation(deleg({ targets: [nodeC.did] }), owner.signer)], check), 'DelegationError')
    await rejectsWith(async () => checkDelegationChain([await signDelegation(deleg({ delegate: nodeC.did }), owner.signer)], check), 'OwnershipError')
  })

  it('checks chains: redelegation allowed, and only narrower', async () => {
    const root = await signDelegation(deleg({ delegate: nodeC.did }), owner.signer)
    const ok = await signDelegation(deleg({ issuer: nodeC.did, delegate: nodeA.did, actions: ['move'], targets: [nodeB.did], expires_at: NOW + 1000 }), nodeC.signer)
    expect(checkDelegationChain([root, ok], check)).toHaveLength(2)
    const wider = await signDelegation(deleg({ issuer: nodeC.did, delegate: nodeA.did, actions: ['move', 'clone'] }), nodeC.signer)
    await rejectsWith(() => checkDelegationChain([root, wider], check), 'DelegationError')
    const later = await signDelegation(deleg({ issuer: nodeC.did, delegate: nodeA.did, expires_at: NOW + 120_000 }), nodeC.signer)
    await rejectsWith(() => checkDelegationChain([root, later], check), 'DelegationError')
    const noRedeleg = await signDelegation(deleg({ delegate: nodeC.did, redelegate: false }), owner.signer)
    await rejectsWith(() => checkDelegationChain([noRedeleg, ok], check), 'DelegationError')
    const skip = await signDelegation(deleg({ issuer: nodeB.did, delegate: nodeA.did }), nodeB.signer)
    await rejectsWith(() => checkDelegationChain([root, skip], check), 'DelegationError')
  })

  it('a tampered or forged delegation is refused', async () => {
    const d = await signDelegation(deleg(), owner.signer)
    const t = d.slice()
    t[t.length - 70] = (t[t.length - 70] as number) ^ 1
    expect(() => checkDelegationChain([t], check)).toThrow()
    // mallory signs a delegation in the owner's name: the kid is mallory's, the issuer the owner
    await rejectsWith(signObject({ v: 1, kind: 'delegation', ...deleg() } as unknown as KLPValue, mallory.signer, owner.did), 'MigrationSignatureError')
  })
})

describe('the audit trail', () => {
  async function trail(): Promise<AuditTrail> {
    let t: AuditTrail = []
    t = await appendAudit(t, { agent_id: 'agent-1', node: owner.did, event: 'created', epoch: 0, at: 1, migration_id: '', peer: nodeA.did, checksum: 'c0' }, owner.signer)
    t = await appendAudit(t, { agent_id: 'agent-1', node: nodeA.did, event: 'migrated_out', epoch: 1, at: 2, migration_id: 'm1', peer: nodeB.did, checksum: 'c1' }, nodeA.signer)
    t = await appendAudit(t, { agent_id: 'agent-1', node: nodeB.did, event: 'migrated_in', epoch: 1, at: 3, migration_id: 'm1', peer: nodeA.did, checksum: 'c1' }, nodeB.signer)
    t = await appendAudit(t, { agent_id: 'agent-1', node: nodeB.did, event: 'migrated_out', epoch: 2, at: 4, migration_id: 'm2', peer: nodeC.did, checksum: 'c2' }, nodeB.signer)
    return t
  }
  const want = (t: AuditTrail) => ({ agentId: 'agent-1', length: t.length, head: auditHead(t), lastNode: nodeB.did, owner: owner.did, last: { event: 'migrated_out' as const, migrationId: 'm2', peer: nodeC.did } })

  it('verifies an intact trail', async () => {
    const t = await trail()
    expect(verifyAuditTrail(t.map((e) => e.bytes), want(t))).toHaveLength(4)
  })

  it('detects a cut (head or tail), a reorder, an edit, and a splice by another node', async () => {
    const t = await trail()
    const b = t.map((e) => e.bytes)
    await rejectsWith(() => verifyAuditTrail(b.slice(0, 3), want(t)), 'AuditTrailError')
    await rejectsWith(() => verifyAuditTrail(b.slice(0, 3), { ...want(t), length: 3, head: auditHead(t.slice(0, 3)) }), 'AuditTrailError')
    await rejectsWith(() => verifyAuditTrail(b.slice(1), { ...want(t), length: 3 }), 'AuditTrailError')
    await rejectsWith(() => verifyAuditTrail([b[0]!, b[2]!, b[1]!, b[3]!], want(t)), 'AuditTrailError')
    // an edited entry re-signed by its node: the next entry's prev no longer matches
    let e: AuditTrail = t.slice(0, 1)
    e = await appendAudit(e, { agent_id: 'agent-1', node: nodeA.did, event: 'migrated_out', epoch: 1, at: 2, migration_id: 'm1', peer: mallory.did, checksum: 'c1' }, nodeA.signer)
    await rejectsWith(() => verifyAuditTrail([e[0]!.bytes, e[1]!.bytes, b[2]!, b[3]!], want(t)), 'AuditTrailError')
    // a node that never held the agent appends an entry
    // a holder that forges a fresh history without the owner
    let f: AuditTrail = await appendAudit([], { agent_id: 'agent-1', node: nodeB.did, event: 'created', epoch: 0, at: 1, migration_id: '', peer: nodeB.did, checksum: 'c0' }, nodeB.signer)
    f = await appendAudit(f, { agent_id: 'agent-1', node: nodeB.did, event: 'migrated_out', epoch: 2, at: 4, migration_id: 'm2', peer: nodeC.did, checksum: 'c2' }, nodeB.signer)
    await rejectsWith(() => verifyAuditTrail(f.map((x) => x.bytes), { ...want(f) }), 'AuditTrailError')
    const s = await appendAudit(t.slice(0, 3), { agent_id: 'agent-1', node: mallory.did, event: 'migrated_out', epoch: 2, at: 4, migration_id: 'm2', peer: nodeC.did, checksum: 'c2' }, mallory.signer)
    await rejectsWith(() => verifyAuditTrail(s.map((x) => x.bytes), { ...want(s), lastNode: mallory.did }), 'AuditTrailError')
  })
})

describe('sealed secrets', () => {
  it('open only for the recipient and the agent they were sealed for', async () => {
    const box = sealSecrets({ api_key: 's3cret' }, nodeB.did, 'agent-1')
    expect(Buffer.from(box.ct).includes(Buffer.from('s3cret'))).toBe(false)
    expect(openSecrets(box, nodeB, 'agent-1')).toEqual({ api_key: 's3cret' })
    await rejectsWith(() => openSecrets(box, nodeC, 'agent-1'), 'SealError')
    await rejectsWith(() => openSecrets(box, nodeB, 'agent-2'), 'SealError')
    const t = { ...box, ct: box.ct.slice() }
    t.ct[0] = (t.ct[0] as number) ^ 1
    await rejectsWith(() => openSecrets(t, nodeB, 'agent-1'), 'SealError')
    await rejectsWith(() => sealSecrets({ k: 1 as unknown as string }, nodeB.did, 'a'), 'SealError')
  })
})

describe('the sandbox', () => {
  const host = { granted: new Set(['log']) }
  const lim = { memoryBytes: 4 * 1024 * 1024, cpuBudget: 1000 }
  const call = (code: string) => ({ code, input: { x: 2 }, state: { n: 1 }, params: {} })

  it('runs handle(input, state, params) and returns { output, state }', async () => {
    const logs: string[] = []
    const r = await runInSandbox(call('function handle(i, s) { host.log("x=" + i.x); return { output: i.x * 2, state: { n: s.n + 1 } } }'), lim, { ...host, log: (t) => logs.push(t) })
    expect(r).toEqual({ output: 4, state: { n: 2 } })
    expect(logs).toEqual(['x=2'])
  })

  it('stops an endless loop (instruction budget), a memory hog and a deep recursion with SandboxLimitError', async () => {
    await rejectsWith(runInSandbox(call('function handle() { for (;;) {} }'), lim, host), 'SandboxLimitError')
    await rejectsWith(runInSandbox(call('function handle() { const a = []; for (;;) a.push("xxxxxxxxxxxxxxxx" + a.length) }'), { memoryBytes: 1024 * 1024, cpuBudget: 1e9 }, host), 'SandboxLimitError')
    await rejectsWith(runInSandbox(call('function f(n) { return f(n + 1) + 1 } function handle() { return f(0) }'), lim, host), 'SandboxLimitError')
  })

  it('refuses a capability not granted, even when the code catches the throw', async () => {
    await rejectsWith(runInSandbox(call('function handle() { try { host.now() } catch (e) {} return { output: 1, state: {} } }'), lim, host), 'CapabilityNotGrantedError')
    expect(await runInSandbox(call('function handle() { return { output: host.now(), state: {} } }'), lim, { granted: new Set(['clock']), now: () => 42 })).toEqual({ output: 42, state: {} })
  })

  it('has no ambient authority: no require, process or fetch', async () => {
    const r = await runInSandbox(call('function handle() { return { output: [typeof require, typeof process, typeof fetch, typeof globalThis.host.log], state: {} } }'), lim, host)
    expect(r.output).toEqual(['undefined', 'undefined', 'undefined', 'function'])
  })

  it('types bad code and bad results as AgentCodeError', async () => {
    await rejectsWith(runInSandbox(call('function handle() { throw new Error("boom") }'), lim, host), 'AgentCodeError')
    await rejectsWith(runInSandbox(call('var x = 1'), lim, host), 'AgentCodeError')
    await rejectsWith(runInSandbox(call('function handle() { return 5 }'), lim, host), 'AgentCodeError')
  })
})

describe('the behavioural fingerprint', () => {
  it('is deterministic and detects other code or other behaviour', async () => {
    const a = sampleAgent({ owner: owner.did })
    const f1 = await computeFingerprint(a)
    expect(await computeFingerprint(a)).toEqual(f1)
    await checkFingerprint(f1, a)
    const other = sampleAgent({ owner: owner.did, code: 'function handle(i, s) { return { output: 0, state: s } }' })
    await rejectsWith(checkFingerprint(f1, other), 'FingerprintMismatchError')
    // same code, a different answer to a probe (claimed answers forged)
    const forged = { ...f1, answers: [f1.answers[1]!, f1.answers[0]!] }
    await rejectsWith(checkFingerprint(forged, a), 'FingerprintMismatchError')
  })
})

describe('permissions against the node policy', () => {
  it('grants the intersection and refuses unmet needs with every reason', async () => {
    const policy = resolvePolicy({ capabilities: ['log', 'clock'], tools: ['search'] })
    expect(grantPermissions(PERMS, policy, []).capabilities).toEqual(['log'])
    const err = await rejectsWith(() => grantPermissions({ ...PERMS, required: ['log', 'random'], tools: ['shell'], agents: ['helper'], memory_bytes: 2 ** 30 }, policy, []), 'PermissionRefusedError')
    for (const w of ['random', 'shell', 'helper', 'heap']) expect(err.message).toContain(w)
    expect(resolvePolicy({}, true).accept.has('backup')).toBe(true)
    expect(resolvePolicy({}).accept.has('backup')).toBe(false)
  })
})
