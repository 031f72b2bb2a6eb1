/**
 * What survives a restart: anchors (`trust/<did>`, including entries written by earlier versions)
 * and statements (`trust-statement/<id>`, verified again at load); and the config keys of trust
 * (`trustPolicy`, `trust`) and `init --task-min-endorsements`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { runCli } from '../src/cli-app.js'
import { defaultConfig, parseConfig } from '../src/config.js'
import { createNode, keystoreIdentity, levelStore, memory, memoryStore, TRUST_PREFIX } from '../src/index.js'

describe('trust persistence', () => {
  it('anchors (old and new format) and statements survive a restart; corrupt entries are skipped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-trust-persist-'))
    const network = createMemoryNetwork()
    const peer = generateIdentity().did
    const old = generateIdentity().did
    try {
      const make = () =>
        createNode({
          identity: keystoreIdentity({ path: join(dir, 'keystore.json'), passphrase: 'pw', kdf: { N: 1024 } }),
          storage: levelStore({ path: join(dir, 'db') }),
          transports: [memory({ network })],
        })
      const first = make()
      await first.start()
      // an entry as 0.1 wrote it: the level made the DID "cryptographic"
      const legacy = { did: old, trust_score: 6, endorsements: 0, verification_level: 'cryptographic', subjects: [old], updated: 1 }
      await first.storage.put(TRUST_PREFIX + old, new TextEncoder().encode(JSON.stringify(legacy)))
      await first.storage.put(`${TRUST_PREFIX}did:key:broken`, new TextEncoder().encode('{not json'))
      await first.trust(peer, 9, { validator: true })
      const s = await first.attest({ subject: peer, claim: 'role', value: 'ValidatorNode', ttlMs: 3600_000 })
      const r = await first.revoke({ subject: old })
      await first.stop()

      const second = make()
      await second.start()
      try {
        expect(second.trustStore.list().map((e) => [e.did, e.trust_score, e.validator])).toEqual(
          [
            [old, 6, false],
            [peer, 9, true],
          ].sort((x, y) => ((x[0] as string) < (y[0] as string) ? -1 : 1)),
        )
        expect(second.trustEngine.anchors()).toHaveLength(2)
        // the engine derives the verification level now; the legacy field is not taken over
        expect(second.trustEngine.profile(old).trust_score).toBe(6)
        const ids = second.statements({ issuer: second.did }).map((x) => x.id)
        expect(ids).toEqual(expect.arrayContaining([s.id, r.id]))
        expect(second.reputation(peer).roles).toEqual(['ValidatorNode'])
        expect(second.status().trust).toMatchObject({ anchors: 2, byKind: { attestation: 1, revocation: 1 }, loaded: 2 })
        // a revocation by this node is applied again at load: revoking a statement revoked already is harmless
        await expect(second.revoke({ statement: s.id })).resolves.toMatchObject({ body: { scope: 'statement', subject: peer } })
      } finally {
        await second.stop()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('trusting the node\'s own DID is kept but is no anchor (the engine trusts itself at 10)', async () => {
    const n = createNode({ storage: memoryStore() })
    await n.start()
    try {
      await expect(n.trust(n.did, 3)).resolves.toMatchObject({ did: n.did, trust_score: 3 })
      expect(n.trustEngine.anchors()).toEqual([])
      await expect(n.untrust(n.did)).resolves.toEqual({ did: n.did, removed: true })
    } finally {
      await n.stop()
    }
  })

  it('node APIs need a started node', async () => {
    const n = createNode()
    expect(() => n.trustEngine).toThrow(expect.objectContaining({ name: 'NodeNotStartedError' }))
    expect(() => n.statements()).toThrow(expect.objectContaining({ name: 'NodeNotStartedError' }))
    await expect(n.attest({ subject: generateIdentity().did })).rejects.toMatchObject({ name: 'NodeNotStartedError' })
    expect(n.status().trust).toBeUndefined()
  })
})

describe('trust configuration', () => {
  it('trustPolicy and trust are checked (unknown keys, types, ranges) and default to {}', () => {
    const ok = defaultConfig('t')
    expect(parseConfig(ok)).toMatchObject({ trustPolicy: {}, trust: {} })
    // a config written before these keys existed loads
    const { trustPolicy: _p, trust: _t, ...older } = ok
    expect(parseConfig(older)).toMatchObject({ trustPolicy: {}, trust: {} })
    expect(parseConfig({ ...ok, trustPolicy: { TASK_REQUEST: { required_endorsements: 1 } } }).trustPolicy).toEqual({
      TASK_REQUEST: { minimum_trust_score: 0, required_endorsements: 1, verification_level: 'none' },
    })
    expect(parseConfig({ ...ok, trust: { endorserThreshold: 6, contexts: ['compute', 'compute'] } }).trust).toEqual({ endorserThreshold: 6, contexts: ['compute'] })
    const bad: unknown[] = [
      { ...ok, trustPolicy: { TASK: {} } },
      { ...ok, trustPolicy: { TASK_REQUEST: { required_endorsements: 1.5 } } },
      { ...ok, trustPolicy: { TASK_REQUEST: { minimum_trust_score: 11 } } },
      { ...ok, trustPolicy: { TASK_REQUEST: { verification_level: 'total' } } },
      { ...ok, trustPolicy: { TASK_REQUEST: { endorsements: 1 } } },
      { ...ok, trustPolicy: [] },
      { ...ok, trust: { attenuation: 'high' } },
      { ...ok, trust: { nope: 1 } },
      { ...ok, trust: { contexts: [''] } },
    ]
    for (const c of bad) expect(() => parseConfig(c), JSON.stringify(c)).toThrow(expect.objectContaining({ name: 'InvalidConfigError' }))
  })

  it('init --task-min-endorsements writes trustPolicy.TASK_REQUEST and start reports it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-trust-cfg-'))
    try {
      let out = ''
      const code = await runCli(['init', '--json', '--data-dir', dir, '--name', 'e', '--listen', 'tcp://127.0.0.1:0', '--task-min-endorsements', '2'], { stdout: (s) => (out += s), stderr: () => {}, env: { KOS_MESH_PASSPHRASE: 'pw' } })
      expect(code).toBe(0)
      expect(JSON.parse(out).config.trustPolicy).toEqual({ TASK_REQUEST: { minimum_trust_score: 0, required_endorsements: 2, verification_level: 'none' } })
      let human = ''
      await runCli(['init', '--force', '--data-dir', dir, '--task-min-trust', '3'], { stdout: (s) => (human += s), stderr: () => {}, env: { KOS_MESH_PASSPHRASE: 'pw' } })
      expect(human).toContain('tasks:      only DIDs trusted at >= 3 (policy.task_min_trust) with >= 2 endorsements (trustPolicy.TASK_REQUEST) may run tasks')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
