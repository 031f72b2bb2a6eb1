/**
 * Helpers for the end-to-end attack tests (trust-attacks-mesh.test.ts): deterministic attacker
 * identities, statement bodies signed with them, raw pushes of statement bytes over a router
 * connection (what a malicious node can put on the wire), a seeded PRNG and a forged signer.
 */
import type { Identity } from '@kos-mesh/did-security'
import { KLPMessageType, type Signer } from '@kos-mesh/interface'
import { testnetIdentity } from '@kos-mesh/klp-router/testnet'
import {
  STATEMENT_VERSION,
  TRUST_PATH,
  batchStatements,
  signStatement,
  type AttestationBody,
  type ClaimType,
  type DeltaBody,
  type Observation,
  type RevocationBody,
  type RevocationScope,
  type SignedStatement,
} from '@kos-mesh/trust'
import type { MeshNode } from './helpers.js'

export const MINUTE = 60_000
export const HOUR = 3_600_000
export const DAY = 86_400_000

/** Deterministic identities `testnetIdentity(seed, from..from+count-1)` (seeds apart from the mesh's). */
export function identities(seed: number, count: number, from = 0): Identity[] {
  return Array.from({ length: count }, (_, i) => testnetIdentity(seed, from + i))
}

/** A small seeded PRNG (LCG), [0, 1). */
export function prng(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return s / 4294967296
  }
}

export function attestation(issuer: string, subject: string, level: number, now: number, o: { claim?: ClaimType; ttlMs?: number } = {}): AttestationBody {
  return { v: STATEMENT_VERSION, kind: 'attestation', issuer, subject, issued_at: now, claim: o.claim ?? 'trust', level, context: '*', expires_at: now + (o.ttlMs ?? 30 * DAY) }
}

/** A delta about `subject` for the window starting at `window` (1-hour windows), signed "now". */
export function delta(issuer: string, subject: string, counts: Partial<Record<Observation, number>>, window: number, now: number): DeltaBody {
  return { v: STATEMENT_VERSION, kind: 'delta', issuer, subject, issued_at: now, window, window_ms: HOUR, counts, expires_at: now + 28 * DAY }
}

export function revocation(issuer: string, subject: string, scope: RevocationScope, now: number, statement?: string): RevocationBody {
  return { v: STATEMENT_VERSION, kind: 'revocation', issuer, subject, issued_at: now, scope, ...(statement === undefined ? {} : { statement }), reason: 'slander' }
}

export async function sign<B extends AttestationBody | DeltaBody | RevocationBody>(body: B, who: Identity): Promise<SignedStatement<B>> {
  return signStatement(body, who.signer)
}

/**
 * A signer that claims `victim`'s key id but signs with `attacker`'s key: what it signs names the
 * victim as issuer and fails the victim's signature check.
 */
export function forgedSigner(victim: Identity, attacker: Identity): Signer {
  return { algorithm: 'Ed25519', keyId: victim.signer.keyId, publicKey: victim.signer.publicKey, sign: (d: Uint8Array) => attacker.signer.sign(d) }
}

/**
 * Pushes raw statement bytes from `from` to its neighbour `to` on `/trust`, as the protocol's
 * `{ op: 'push', statements }` payload, in batches of at most 64 statements / 128 KiB (what a
 * receiver accepts). Resolves with the number of messages once every send is handed over; the
 * caller drives virtual time (`mesh.drive`).
 */
export async function pushRaw(from: MeshNode, to: MeshNode, type: KLPMessageType, statements: readonly Uint8Array[]): Promise<number> {
  const batches = batchStatements(statements)
  await Promise.all(batches.map((batch) => from.router.send({ type, target: `klp://${to.authority}${TRUST_PATH}`, data: { op: 'push', statements: batch } })))
  return batches.length
}

/** Pushes attestations/revocations in TRUST_ATTESTATION and deltas in REPUTATION_DELTA (see pushRaw). */
export async function pushStatements(from: MeshNode, to: MeshNode, statements: readonly SignedStatement[]): Promise<number> {
  const deltas = statements.filter((s) => s.body.kind === 'delta').map((s) => s.bytes)
  const others = statements.filter((s) => s.body.kind !== 'delta').map((s) => s.bytes)
  const sent = await Promise.all([
    others.length > 0 ? pushRaw(from, to, KLPMessageType.TRUST_ATTESTATION, others) : 0,
    deltas.length > 0 ? pushRaw(from, to, KLPMessageType.REPUTATION_DELTA, deltas) : 0,
  ])
  return sent[0] + sent[1]
}

/** Index of the byte after the DAG-CBOR text key `level` in `bytes` (-1 if absent). */
export function levelByteIndex(bytes: Uint8Array): number {
  const key = [0x65, 0x6c, 0x65, 0x76, 0x65, 0x6c] // text(5) "level"
  outer: for (let i = 0; i + key.length < bytes.length; i++) {
    for (let j = 0; j < key.length; j++) if (bytes[i + j] !== key[j]) continue outer
    return i + key.length
  }
  return -1
}

export const fmt = (x: number): string => x.toFixed(3)
