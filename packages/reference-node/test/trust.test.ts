/**
 * The trust engine and service wired into the node, driven in-process through the CLI
 * (`runCli`) and the control API: anchors (`trust`), attestations flooding from node to node
 * (`attest`), revocations (`revoke`, of attestations, a statement, a key, the node's own DID),
 * reputation reports, statements, status counters and metrics. Every wait is polled with a
 * deadline.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { ExitCode, runCli, type CliIo } from '../src/cli-app.js'
import { connectControl, startControlServer, writeControlFiles, type ControlServer } from '../src/control.js'
import { createNode, mathAgent, memory, type KosMeshNode } from '../src/index.js'
import { eventually } from './e2e-helpers.js'

let root: string
const network = createMemoryNetwork()
let a: KosMeshNode
let b: KosMeshNode
let c: KosMeshNode
const servers: ControlServer[] = []
const dirOf = new Map<KosMeshNode, string>()

async function serve(node: KosMeshNode, name: string): Promise<void> {
  const server = await startControlServer({ node })
  servers.push(server)
  const dir = join(root, name)
  await mkdir(dir, { mode: 0o700 })
  const s = node.status()
  await writeControlFiles(dir, { pid: 999_999, host: '127.0.0.1', port: server.port, did: s.did, authority: s.authority, addrs: s.addrs, startedAt: 0 }, server.token)
  dirOf.set(node, dir)
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-trust-'))
  const make = (name: string, extra: Parameters<typeof createNode>[0] = {}): KosMeshNode =>
    createNode({ authority: `${name}.mesh.kai`, transports: [memory({ network })], listen: [`memory://trust-${name}`], ...extra })
  a = make('a')
  b = make('b')
  // c runs tasks only for DIDs with one endorsement
  c = make('c', { agents: [mathAgent()], router: { trustPolicy: { TASK_REQUEST: { minimum_trust_score: 0, required_endorsements: 1, verification_level: 'none' } } } })
  await Promise.all([a.start(), b.start(), c.start()])
  await a.connect(c.addrs()[0] as string)
  await b.connect(c.addrs()[0] as string)
  await serve(a, 'a')
  await serve(b, 'b')
  await serve(c, 'c')
})

afterAll(async () => {
  await Promise.allSettled(servers.map((s) => s.close()))
  await Promise.allSettled([a?.stop(), b?.stop(), c?.stop()])
  await rm(root, { recursive: true, force: true })
})

interface Run {
  code: number
  out: string
  err: string
}

async function run(node: KosMeshNode, args: string[], io: Partial<CliIo> = {}): Promise<Run> {
  let out = ''
  let err = ''
  const code = await runCli([...args, '--data-dir', dirOf.get(node) as string], { stdout: (s) => (out += s), stderr: (s) => (err += s), env: {}, ...io })
  return { code, out, err }
}

function doc(r: Run): Record<string, any> {
  const lines = r.out.split('\n').filter((l) => l.length > 0)
  expect(lines, r.out + r.err).toHaveLength(1)
  return JSON.parse(lines[0] as string) as Record<string, any>
}

const math = async (from: KosMeshNode): Promise<string> => {
  try {
    await from.task('klp://c.mesh.kai/agents/math', { capability: 'math', input: '1+1' })
    return 'accepted'
  } catch (err) {
    return (err as { reason?: string }).reason ?? (err as Error).name
  }
}

describe('trust, attest, revoke, reputation (CLI and control API on in-process nodes)', () => {
  it('trust <did> <level> sets an anchor; `trust` lists it with the computed score', async () => {
    const t = await run(c, ['trust', a.did, '8', '--json'])
    expect(t.code, t.err).toBe(0)
    expect(doc(t)).toMatchObject({ did: a.did, trust_score: 8, score: 8, validator: false, revoked: false })
    expect(c.trustEngine.anchors()).toEqual([expect.objectContaining({ did: a.did, level: 8 })])
    expect(c.trustEngine.anchors()[0]?.validator ?? false).toBe(false)
    const list = await run(c, ['trust'])
    expect(list.code, list.err).toBe(0)
    const [head, row] = list.out.trimEnd().split('\n')
    expect(head).toMatch(/^DID +LEVEL +SCORE +VALIDATOR +UPDATED +NAMED AS$/)
    expect(row).toMatch(new RegExp(`^${a.did} +8 +8 +no +\\d{4}-`))
    expect(doc(await run(c, ['trust', 'list', '--json']))).toEqual(expect.anything())
  })

  it('a task needing an endorsement is refused, accepted once a trusted node attests the sender, refused after the revocation', async () => {
    expect(await math(b)).toBe('insufficient_trust')
    const at = await run(a, ['attest', b.did, '--json'])
    expect(at.code, at.err).toBe(0)
    const s = doc(at)
    expect(s).toMatchObject({ kind: 'attestation', issuer: a.did, subject: b.did, claim: 'endorse', level: 7, context: '*', id: expect.stringMatching(/^b[a-z2-7]+$/) })
    expect(s.expires_at - s.issued_at).toBe(90 * 86_400_000)
    await eventually('c counts the endorsement of b', async () => c.trustEngine.profile(b.did).endorsements === 1, 5000)
    expect(await math(b)).toBe('accepted')

    const rep = await run(c, ['reputation', b.did])
    expect(rep.code, rep.err).toBe(0)
    expect(rep.out).toContain(`endorsements:  1 (${a.did})`)
    expect(rep.out).toContain(`path:          ${a.did} -> ${b.did}`)
    expect(rep.out).toMatch(/^ {2}KIND +ISSUER +ISSUER SCORE +CLAIM +LEVEL +EFFECT +DECAY +DETAIL$/m)
    expect(rep.out).toMatch(new RegExp(`^ {2}attestation +${a.did} +8 +endorse +7 +\\+5\\.\\d\\d +1\\.00 +${s.id}; best chain`, 'm'))
    const repJson = doc(await run(c, ['reputation', b.did, '--json']))
    expect(repJson).toMatchObject({ did: b.did, endorsements: 1, endorsers: [a.did], revoked: false, path: [a.did, b.did] })
    expect(repJson.evidence).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'attestation', statement: s.id, issuer: a.did })]))

    const rv = await run(a, ['revoke', b.did, '--json'])
    expect(rv.code, rv.err).toBe(0)
    expect(doc(rv)).toMatchObject({ kind: 'revocation', issuer: a.did, subject: b.did, scope: 'attestations' })
    await eventually('c applies the revocation', async () => c.trustEngine.profile(b.did).endorsements === 0, 5000)
    expect(await math(b)).toBe('insufficient_trust')
    const human = await run(b, ['task', 'klp://c.mesh.kai/agents/math', '1+1'])
    expect(human.code).toBe(ExitCode.REJECTED)
    expect(human.err).toMatch(/hint: .*kos-mesh attest/)
  })

  it('revoke --statement withdraws one statement; an unknown id is refused (exit 2)', async () => {
    const s = doc(await run(a, ['attest', b.did, '--claim', 'capability', '--value', 'gpu', '--ttl', '12h', '--json']))
    expect(s).toMatchObject({ claim: 'capability', value: 'gpu' })
    expect(s.expires_at - s.issued_at).toBe(12 * 3600_000)
    await eventually('c holds the capability attestation', async () => c.reputation(b.did).capabilities.includes('gpu'), 5000)
    const r = await run(a, ['revoke', '--statement', s.id, '--reason', 'gone', '--json'])
    expect(r.code, r.err).toBe(0)
    expect(doc(r)).toMatchObject({ scope: 'statement', statement: s.id, subject: b.did, reason: 'gone' })
    await eventually('c drops the capability', async () => !c.reputation(b.did).capabilities.includes('gpu'), 5000)
    const unknown = await run(a, ['revoke', '--statement', 'bafyreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '--json'])
    expect(unknown.code).toBe(ExitCode.USAGE)
    expect(doc(unknown)).toMatchObject({ exitCode: 2, error: { code: 'ERR_UNKNOWN_STATEMENT' } })
  })

  it('statements: listed with filters through the control API', async () => {
    const ctl = await connectControl(dirOf.get(c) as string)
    const all = await ctl.call<{ statements: Array<{ id: string; kind: string; issuer: string }> }>('GET', `/v1/statements?issuer=${encodeURIComponent(a.did)}`)
    expect(all.statements.length).toBeGreaterThanOrEqual(4)
    expect(all.statements.every((s) => s.issuer === a.did)).toBe(true)
    const revs = await ctl.call<{ statements: Array<{ kind: string }> }>('GET', '/v1/statements?kind=revocation&limit=1')
    expect(revs.statements).toHaveLength(1)
    expect(revs.statements[0]?.kind).toBe('revocation')
    await expect(ctl.call('GET', '/v1/statements?kind=rumour')).rejects.toMatchObject({ status: 400, remoteCode: 'ERR_INVALID_PARAMETERS' })
    await expect(ctl.call('GET', '/v1/statements?limit=1e3')).rejects.toMatchObject({ status: 400 })
    await expect(ctl.call('GET', '/v1/statements?subject=nobody')).rejects.toMatchObject({ status: 400 })
    await expect(ctl.call('GET', '/v1/reputation?subject=did:key:!!!')).rejects.toMatchObject({ status: 400, remoteCode: 'ERR_INVALID_DID' })
    await expect(ctl.call('GET', '/v1/reputation?subject=klp://nobody.mesh.kai')).rejects.toMatchObject({ status: 400, remoteCode: 'ERR_UNPINNED_AUTHORITY' })
    // by a pinned authority
    const byAuthority = await ctl.call<{ reputation: { did: string } }>('GET', `/v1/reputation?subject=${encodeURIComponent('klp://b.mesh.kai')}`)
    expect(byAuthority.reputation.did).toBe(b.did)
  })

  it('the control API checks attest and revoke bodies (400, nothing signed)', async () => {
    const ctl = await connectControl(dirOf.get(a) as string)
    const before = a.statements({ issuer: a.did, limit: 10_000 }).length
    const bad: Array<[string, unknown]> = [
      ['/v1/attest', { subject: b.did, claim: 'love' }],
      ['/v1/attest', { subject: b.did, claim: 'capability' }],
      ['/v1/attest', { subject: b.did, claim: 'key', level: 3 }],
      ['/v1/attest', { subject: b.did, level: 11 }],
      ['/v1/attest', { subject: b.did, ttlMs: 0 }],
      ['/v1/attest', { subject: 'did:key:!!!' }],
      ['/v1/revoke', {}],
      ['/v1/revoke', { subject: b.did, scope: 'everything' }],
      ['/v1/revoke', { self: true, subject: b.did }],
    ]
    for (const [path, body] of bad) await expect(ctl.call('POST', path, body), JSON.stringify(body)).rejects.toMatchObject({ status: 400 })
    // the node's own DID needs confirm: true
    await expect(ctl.call('POST', '/v1/revoke', { self: true })).rejects.toMatchObject({ status: 400, remoteCode: 'ERR_CONFIRMATION_REQUIRED' })
    await expect(ctl.call('POST', '/v1/revoke', { subject: a.did, scope: 'key' })).rejects.toMatchObject({ status: 400, remoteCode: 'ERR_CONFIRMATION_REQUIRED' })
    expect(a.statements({ issuer: a.did, limit: 10_000 })).toHaveLength(before)
    expect(a.isStarted()).toBe(true)
  })

  it('revoke --self refuses without --yes before asking the node', async () => {
    const r = await run(a, ['revoke', '--self', '--json'])
    expect(r.code).toBe(ExitCode.USAGE)
    expect(doc(r)).toMatchObject({ exitCode: 2, error: { code: 'ERR_CONFIRMATION_REQUIRED' } })
    expect(c.trustEngine.isRevoked(a.did)).toBe(false)
  })

  it('revoke --key: a validator anchor revokes a DID; status and metrics count it', async () => {
    expect(doc(await run(c, ['trust', a.did, '8', '--validator', '--json']))).toMatchObject({ validator: true, trust_score: 8 })
    expect((await run(c, ['trust'])).out).toMatch(new RegExp(`^${a.did} +8 +8 +yes `, 'm'))
    const r = await run(a, ['revoke', '--key', b.did])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toMatch(new RegExp(`^revoked the key of ${b.did}\\n  revocation: b[a-z2-7]+\\n$`))
    await eventually('c revokes b', async () => c.trustEngine.isRevoked(b.did), 5000)
    expect(c.reputation(b.did).revoked).toBe(true)
    const st = await run(c, ['status'])
    expect(st.out).toMatch(/^trust: +1 anchor, \d+ statements held \(\d+ attestations, \d+ revocations, \d+ deltas\), 1 revoked DID, \d+ refused$/m)
    expect(doc(await run(c, ['status', '--json'])).trust).toMatchObject({ anchors: 1, revokedDids: 1 })
    const metrics = c.metricsText()
    expect(metrics).toMatch(/^kos_mesh_trust_revoked_dids 1$/m)
    expect(metrics).toMatch(/^kos_mesh_trust_statements\{kind="revocation"\} [1-9]\d*$/m)
    expect(metrics).toMatch(/^kos_mesh_trust_statements_received_total [1-9]\d*$/m)
  })

  it('revoke --self --yes: the node\'s own DID is revoked for good; it signs nothing more (exit 7)', async () => {
    const d = createNode({ authority: 'd.mesh.kai', transports: [memory({ network })], listen: ['memory://trust-d'] })
    await d.start()
    try {
      await d.connect(c.addrs()[0] as string)
      await serve(d, 'd')
      const r = await run(d, ['revoke', '--self', '--yes'])
      expect(r.code, r.err).toBe(0)
      expect(r.out).toContain(`revoked this node's own DID ${d.did}`)
      expect(r.err).toMatch(/create a new identity/i)
      await eventually('c revokes d', async () => c.trustEngine.isRevoked(d.did), 5000)
      const again = await run(d, ['attest', b.did, '--json'])
      expect(again.code).toBe(ExitCode.IDENTITY)
      expect(doc(again)).toMatchObject({ error: { code: 'ERR_REVOKED_DID', hint: expect.stringContaining('new identity') } })
    } finally {
      await d.stop()
    }
  })

  it('untrust removes the anchor; the DID keeps what the web of trust gives it', async () => {
    const u = await run(c, ['untrust', a.did, '--json'])
    expect(doc(u)).toEqual({ did: a.did, removed: true })
    expect(c.trustEngine.anchors()).toEqual([])
    expect((await run(c, ['trust'])).out).toBe('no trust decisions\n')
  })
})
