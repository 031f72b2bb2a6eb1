import { describe, expect, it } from 'vitest'
import * as ed from '@noble/ed25519'
import { base58btc } from 'multiformats/bases/base58'
import {
  SMALL_ORDER_ENCODINGS, aesGcmDecrypt, aesGcmEncrypt, createDidResolver, didKeyFromPublicKey, ed25519Verify,
  hkdfSha256, identityFromSeed, nativeBackend, nobleBackend, publicKeyFromDidKey, x25519, x25519FromEd25519PublicKey,
} from '../src/index.js'
import { x25519SecretFromEd25519Seed } from '../src/backend.js'
import { hex, haveVectors, loadJson, runVectors, toHex, vectorsDir } from './vectors.js'

const backends = ['native', 'noble'] as const

describe('test vectors folder', () => {
  it('is present (or this run is outside CI)', () => {
    if (process.env.CI !== undefined) expect(haveVectors, `vectors not found at ${vectorsDir}`).toBe(true)
    else if (!haveVectors) console.warn(`[did-security] test vectors not found at ${vectorsDir}; vector suites skipped`)
  })
})

describe('the small-order blocklist', () => {
  it('holds 8 distinct points, all of small order (so it is the whole torsion subgroup)', () => {
    const seen = new Set<string>()
    for (const enc of SMALL_ORDER_ENCODINGS) {
      const p = ed.Point.fromBytes(enc, false)
      expect(p.isSmallOrder()).toBe(true)
      seen.add(toHex(p.toBytes()))
    }
    expect(seen.size).toBe(8)
  })
})

describe.runIf(runVectors)('Wycheproof Ed25519 (151)', () => {
  const data = loadJsonSafe('wycheproof/ed25519_test.json')
  const cases = (data?.testGroups ?? []).flatMap((g: any) => g.tests.map((t: any) => ({ ...t, pk: g.publicKey.pk })))
  it('has 151 cases', () => { expect(cases.length).toBe(151) })
  for (const backend of backends) {
    it(`${backend}: accepts exactly the valid ones`, () => {
      let checked = 0
      for (const t of cases) {
        const got = ed25519Verify(hex(t.pk), hex(t.msg), hex(t.sig), { backend })
        expect(got, `tcId ${t.tcId} ${t.comment}`).toBe(t.result === 'valid')
        checked++
      }
      expect(checked).toBe(151)
    })
  }
})

describe.runIf(runVectors)('ed25519-speccheck (10 edge cases)', () => {
  const cases: Array<{ message: string; pub_key: string; signature: string }> = loadJsonSafe('ed25519-speccheck/cases.json') ?? []
  const bitmap = (backend: 'native' | 'noble'): string =>
    cases.map((c) => (ed25519Verify(hex(c.pub_key), hex(c.message), hex(c.signature), { backend }) ? '1' : '0')).join('')
  it('gives an identical accept/reject bitmap on both backends, and the documented one', () => {
    expect(cases.length).toBe(10)
    const native = bitmap('native')
    const noble = bitmap('noble')
    expect(native).toBe(noble)
    // 0,1,2: small-order A or R; 3: mixed-order A and R passing the cofactorless equation;
    // 4: passes only the cofactored equation; 5: passes only with an unreduced k; 6,7: S >= L;
    // 8,9: non-canonical R.
    expect(native).toBe('0001000000')
  })
  it('raw backends disagree without the shared pre-checks (why the rule exists)', () => {
    const zip215 = cases.map((c) => (ed.verify(hex(c.signature), hex(c.message), hex(c.pub_key), { zip215: true }) ? '1' : '0')).join('')
    const nativeRaw = cases.map((c) => (nativeBackend.ed25519Equation(hex(c.pub_key), hex(c.message), hex(c.signature)) ? '1' : '0')).join('')
    expect(zip215).not.toBe(nativeRaw)
  })
})

describe.runIf(runVectors)('did:key vectors', () => {
  const pairs: Record<string, any> = loadJsonSafe('did-key/ed25519-x25519.json') ?? {}
  it('derives the did, the X25519 key and the document of every seed, on both backends', async () => {
    const entries = Object.entries(pairs)
    expect(entries.length).toBe(5)
    const resolver = createDidResolver()
    for (const [did, v] of entries) {
      for (const backend of backends) {
        const id = identityFromSeed(hex(v.seed), { backend })
        expect(id.did).toBe(did)
        expect(id.keyId).toBe(abs(did, v.verificationKeyPair.id))
        expect(toHex(id.publicKey)).toBe(keyHex(v.verificationKeyPair))
        expect(toHex(id.x25519PublicKey)).toBe(keyHex(v.keyAgreementKeyPair))
        expect(id.x25519KeyId).toBe(abs(did, v.keyAgreementKeyPair.id))
      }
      const pk = publicKeyFromDidKey(did)
      expect(didKeyFromPublicKey(pk)).toBe(did)
      expect(toHex(x25519FromEd25519PublicKey(pk))).toBe(keyHex(v.keyAgreementKeyPair))
      const view = await resolver.resolveDid(did)
      expect(view.id).toBe(did)
      expect(view.verificationKeys.map((k) => k.id)).toEqual([v.didDocument.verificationMethod[0].id])
      expect(view.keyAgreementKeys.map((k) => k.id)).toEqual(v.didDocument.keyAgreement)
      expect(toHex(view.keyAgreementKeys[0]!.publicKey)).toBe(keyHex(v.keyAgreementKeyPair))
    }
  })
})

describe.runIf(runVectors)('did:key X25519 private keys (Ed25519 seed -> X25519 secret)', () => {
  const pairs: Record<string, any> = loadJsonSafe('did-key/ed25519-x25519.json') ?? {}
  // four vectors give the secret as privateKeyBase58, one as privateKeyJwk.d
  const privateHex = (kp: any): string | undefined => typeof kp?.privateKeyBase58 === 'string'
    ? toHex(base58btc.baseDecode(kp.privateKeyBase58))
    : typeof kp?.privateKeyJwk?.d === 'string' ? toHex(new Uint8Array(Buffer.from(kp.privateKeyJwk.d, 'base64url'))) : undefined
  const withPrivate = Object.entries(pairs).filter(([, v]) => privateHex(v.keyAgreementKeyPair) !== undefined)
  it('derives exactly the vectors\' X25519 secret from each seed, and the identity agrees with that secret on both backends', () => {
    expect(withPrivate.length).toBe(5)
    const peer = identityFromSeed(new Uint8Array(32).fill(9))
    for (const [did, v] of withPrivate) {
      const expected = privateHex(v.keyAgreementKeyPair) as string
      const secret = x25519SecretFromEd25519Seed(hex(v.seed))
      expect(toHex(secret), did).toBe(expected)
      // the secret is clamped (RFC 7748) and gives the vectors' public key on both backends
      expect((secret[0] as number) & 7).toBe(0)
      expect((secret[31] as number) & 0xc0).toBe(0x40)
      for (const backend of backends) {
        expect(toHex(x25519(hex(expected), x25519FromEd25519PublicKey(identityFromSeed(hex(v.seed)).publicKey), { backend }))).toBe(
          toHex(identityFromSeed(hex(v.seed), { backend }).agree(x25519FromEd25519PublicKey(identityFromSeed(hex(v.seed)).publicKey))))
        // the identity's static X25519 key is the vectors' secret: same shared secret with a third key
        const id = identityFromSeed(hex(v.seed), { backend })
        expect(toHex(id.agree(peer.x25519PublicKey))).toBe(toHex(x25519(hex(expected), peer.x25519PublicKey, { backend })))
        expect(toHex(nativeBackend.x25519PublicKey(hex(expected)))).toBe(keyHex(v.keyAgreementKeyPair))
        expect(toHex(nobleBackend.x25519PublicKey(hex(expected)))).toBe(keyHex(v.keyAgreementKeyPair))
      }
    }
  })
})

describe.runIf(runVectors)('Wycheproof X25519 (518)', () => {
  const data = loadJsonSafe('wycheproof/x25519_test.json')
  const cases = (data?.testGroups ?? []).flatMap((g: any) => g.tests)
  it('both backends agree on all 518; all-zero secrets are rejected, the rest match', () => {
    expect(cases.length).toBe(518)
    let zeros = 0
    for (const t of cases) {
      const results = backends.map((backend) => {
        try { return toHex(x25519(hex(t.private), hex(t.public), { backend })) } catch (e) { return (e as Error).name }
      })
      expect(results[0], `tcId ${t.tcId}`).toBe(results[1])
      if (/^0+$/.test(t.shared)) { zeros++; expect(results[0]).toBe('ZeroSharedSecretError') } else expect(results[0], `tcId ${t.tcId} ${t.comment}`).toBe(t.shared)
    }
    expect(zeros).toBeGreaterThanOrEqual(31)
  })
})

describe.runIf(runVectors)('Wycheproof HKDF-SHA256 (86)', () => {
  const data = loadJsonSafe('wycheproof/hkdf_sha256_test.json')
  const cases = (data?.testGroups ?? []).flatMap((g: any) => g.tests)
  it('matches on both backends, rejects invalid sizes', () => {
    expect(cases.length).toBe(86)
    for (const t of cases) {
      for (const backend of backends) {
        if (t.result === 'valid') {
          expect(toHex(hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size, { backend })), `tcId ${t.tcId}`).toBe(t.okm)
        } else {
          expect(() => hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size, { backend })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
        }
      }
    }
  })
})

describe.runIf(runVectors)('Wycheproof AES-GCM, 256-bit key / 96-bit IV / 128-bit tag', () => {
  const data = loadJsonSafe('wycheproof/aes_gcm_test.json')
  const groups = (data?.testGroups ?? []).filter((g: any) => g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128)
  const cases = groups.flatMap((g: any) => g.tests)
  it('encrypts and decrypts every valid case, rejects every invalid one, on both backends', () => {
    expect(cases.length).toBeGreaterThan(0)
    for (const t of cases) {
      for (const backend of backends) {
        const key = hex(t.key); const iv = hex(t.iv); const aad = hex(t.aad)
        const sealed = hex(t.ct + t.tag)
        if (t.result === 'valid') {
          expect(toHex(aesGcmEncrypt(key, iv, hex(t.msg), aad, { backend })), `tcId ${t.tcId}`).toBe(t.ct + t.tag)
          expect(toHex(aesGcmDecrypt(key, iv, sealed, aad, { backend }))).toBe(t.msg)
        } else {
          expect(() => aesGcmDecrypt(key, iv, sealed, aad, { backend }), `tcId ${t.tcId}`).toThrow(expect.objectContaining({ name: 'DecryptionError' }))
        }
      }
    }
  })
  it('refuses nonces that are not 12 bytes (node:crypto would accept them)', () => {
    const other = (data?.testGroups ?? []).filter((g: any) => g.keySize === 256 && g.ivSize !== 96).flatMap((g: any) => g.tests)
    expect(other.length).toBeGreaterThan(0)
    for (const t of other) {
      for (const backend of backends) {
        expect(() => aesGcmDecrypt(hex(t.key), hex(t.iv), hex(t.ct + t.tag), hex(t.aad), { backend })).toThrow(expect.objectContaining({ name: 'InvalidNonceError' }))
      }
    }
  })
})

const keyHex = (kp: any): string => toHex(typeof kp.publicKeyBase58 === 'string' ? base58btc.baseDecode(kp.publicKeyBase58) : new Uint8Array(Buffer.from(kp.publicKeyJwk.x, 'base64url')))
const abs = (did: string, id: string): string => (id.startsWith('#') ? `${did}${id}` : id)

function loadJsonSafe(rel: string): any {
  if (!runVectors) return undefined
  try { return loadJson(rel) } catch { return undefined }
}
