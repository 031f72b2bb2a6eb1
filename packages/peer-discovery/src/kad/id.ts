/**
 * Kademlia ids: sha256 of the DID (so a node cannot pick its place in the key space without
 * picking its key), XOR distance, common prefix length, and random ids inside a bucket's range.
 */
import { createHash } from 'node:crypto'
import { KAD_ID_BYTES, type Contact, type KadId } from './types.js'
import { InvalidKadIdError } from './errors.js'

const keyCache = new WeakMap<Uint8Array, string>()

/** sha256(UTF-8 of the DID): a node's id. */
export function kadIdOf(did: string): KadId {
  return new Uint8Array(createHash('sha256').update(did, 'utf8').digest())
}

/** sha256(UTF-8 of a provider key's name), e.g. `capability:vector_storage`. */
export function providerKeyOf(name: string): KadId {
  return kadIdOf(name)
}

/** Whether `value` is a Kademlia id (32 bytes). */
export function isKadId(value: unknown): value is KadId {
  return value instanceof Uint8Array && value.length === KAD_ID_BYTES
}

/** Throws InvalidKadIdError unless `value` is a 32-byte Uint8Array. */
export function assertKadId(value: unknown, what = 'id'): asserts value is KadId {
  if (!isKadId(value)) {
    const got = value instanceof Uint8Array ? `${value.length} bytes` : typeof value
    throw new InvalidKadIdError(`expected ${what} of ${KAD_ID_BYTES} bytes, got ${got}`)
  }
}

/** A map key for an id (lower-case hex, cached per Uint8Array instance). */
export function idKey(id: KadId): string {
  let k = keyCache.get(id)
  if (k === undefined) {
    k = Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')
    keyCache.set(id, k)
  }
  return k
}

/** Whether two Kademlia ids are the same bytes. */
export function idEquals(a: KadId, b: KadId): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** a XOR b. */
export function xorDistance(a: KadId, b: KadId): Uint8Array {
  const out = new Uint8Array(KAD_ID_BYTES)
  for (let i = 0; i < KAD_ID_BYTES; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0)
  return out
}

/** < 0 when `a` is closer to `target` than `b`, > 0 when farther, 0 when equal. No allocation. */
export function compareDistance(a: KadId, b: KadId, target: KadId): number {
  for (let i = 0; i < KAD_ID_BYTES; i++) {
    const t = target[i] ?? 0
    const da = (a[i] ?? 0) ^ t
    const db = (b[i] ?? 0) ^ t
    if (da !== db) return da - db
  }
  return 0
}

/** Number of leading bits `a` and `b` share (256 when equal). */
export function commonPrefixLength(a: KadId, b: KadId): number {
  for (let i = 0; i < KAD_ID_BYTES; i++) {
    const x = (a[i] ?? 0) ^ (b[i] ?? 0)
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return KAD_ID_BYTES * 8
}

/**
 * A random id sharing exactly `cpl` leading bits with `self` (so it falls in bucket `cpl`):
 * the first `cpl` bits of `self`, then the opposite of self's next bit, then random bits.
 */
export function randomIdInBucket(self: KadId, cpl: number, random: () => number): KadId {
  if (!Number.isInteger(cpl) || cpl < 0 || cpl >= KAD_ID_BYTES * 8) {
    throw new InvalidKadIdError(`expected a bucket index in [0, ${KAD_ID_BYTES * 8 - 1}], got ${cpl}`)
  }
  const out = new Uint8Array(KAD_ID_BYTES)
  for (let i = 0; i < KAD_ID_BYTES; i++) out[i] = Math.floor(random() * 256)
  const byte = cpl >> 3
  const bit = 7 - (cpl & 7)
  for (let i = 0; i < byte; i++) out[i] = self[i] ?? 0
  const keepMask = (0xff << (bit + 1)) & 0xff // bits before `cpl` in this byte
  const s = self[byte] ?? 0
  const flipped = (s ^ (1 << bit)) & (1 << bit)
  const randomLow = (out[byte] ?? 0) & ((1 << bit) - 1)
  out[byte] = (s & keepMask) | flipped | randomLow
  return out
}

const verified = new WeakSet<Contact>()

/** Whether `contact.id` is sha256 of `contact.did` (cached per contact object). */
export function contactIdMatchesDid(contact: Contact): boolean {
  if (verified.has(contact)) return true
  if (!isKadId(contact.id) || typeof contact.did !== 'string') return false
  const ok = idEquals(kadIdOf(contact.did), contact.id)
  if (ok) verified.add(contact)
  return ok
}

/** Hex prefix of an id, for logs. */
export function shortId(id: KadId): string {
  return idKey(id).slice(0, 8)
}
