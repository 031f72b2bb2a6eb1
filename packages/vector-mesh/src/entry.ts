/**
 * Signed vector entries and tombstones, and writer delegations.
 *
 * An entry is a COSE_Sign1 (cose.ts) under the external AAD `kos-mesh/vector-mesh/v1` over the
 * DAG-CBOR of its body (types.ts `EntryBody`). It is accepted only when its signer is its `writer`,
 * and the writer is its `owner` or holds the owner's delegation for the collection that was still
 * valid at the entry's HLC time (a delegation is checked against the entry's own timestamp, not a
 * local clock, so every replica decides the same). The entry key `hash(owner, id)` makes ownership
 * structural: a foreign DID can only ever write under its own key, and a replica rejects any entry
 * that claims someone else's key without their delegation.
 */
import { createHash } from 'node:crypto'
import { KosMeshError, type KLPValue, type Signer } from '@kos-mesh/interface'
import { decodeValue, encodeValue } from '@kos-mesh/klp-codec'
import { decodeCose, signCose, verifyCose } from './cose.js'
import { ForeignOwnerError, InvalidEntryError } from './errors.js'
import { isHlc } from './hlc.js'
import type { DelegationBody, EntryBody, SignedEntry } from './types.js'

/**
 * The COSE_Sign1 external AAD of every entry (domain separation): a signature made for a KLP
 * message, a trust statement or a delegation never verifies as an entry.
 */
export const ENTRY_AAD = 'kos-mesh/vector-mesh/v1'
/** The COSE_Sign1 external AAD of a writer delegation (`signDelegation`); it never verifies as an entry. */
export const DELEGATION_AAD = 'kos-mesh/vector-mesh/delegation/v1'
/** Default bound of one entry's bytes. */
export const MAX_ENTRY_BYTES = 64 * 1024
/** Most dimensions of a vector, in an entry and in a collection config: 4,096 f32 values (16 KiB). */
export const MAX_DIMENSIONS = 4096
export const MAX_ID_LENGTH = 256
export const MAX_METADATA_KEYS = 32
export const MAX_METADATA_STRING = 1024
const MAX_DELEGATION_BYTES = 2048
const COLLECTION_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const DID_RE = /^did:[a-z0-9]+:[A-Za-z0-9._:%-]{1,256}$/
const ENTRY_KEYS = new Set(['v', 'collection', 'id', 'op', 'vector', 'metadata', 'owner', 'writer', 'hlc', 'region', 'delegation'])
const DELEGATION_KEYS = new Set(['v', 'kind', 'owner', 'delegate', 'collection', 'expires_at'])
const CBOR_LIMITS = { maxDepth: 4, maxItems: 128, maxStringLength: 4096, maxBytesLength: MAX_DIMENSIONS * 4 + MAX_DELEGATION_BYTES }

const bad = (msg: string): never => { throw new InvalidEntryError(msg) }

/** Whether `v` is a valid collection name: 1..64 characters of `[A-Za-z0-9._-]`, the first a letter or digit. */
export function isCollectionName(v: unknown): v is string {
  return typeof v === 'string' && COLLECTION_RE.test(v)
}

/** The collection-wide key of an entry: hex of the first 16 bytes of SHA-256(owner 0x00 id). */
export function entryKey(owner: string, id: string): string {
  return createHash('sha256').update(owner).update('\0').update(id).digest('hex').slice(0, 32)
}

/** The index label of an entry key: its first 63 bits. */
export function labelOf(key: string): bigint {
  return BigInt(`0x${key.slice(0, 16)}`) & 0x7fffffffffffffffn
}

/** Vector as f32 little-endian bytes (a copy). */
export function vectorBytes(v: ArrayLike<number>): Uint8Array {
  const f = Float32Array.from(v)
  return new Uint8Array(f.buffer)
}

/** The f32 vector of an entry's bytes (a copy, aligned). */
export function vectorOf(bytes: Uint8Array): Float32Array {
  const copy = bytes.slice()
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4)
}

function checkMetadata(m: unknown): void {
  if (m === null || typeof m !== 'object' || Array.isArray(m) || m instanceof Uint8Array) bad('expected metadata to be a map')
  const keys = Object.keys(m as object)
  if (keys.length > MAX_METADATA_KEYS) bad(`expected at most ${MAX_METADATA_KEYS} metadata keys, got ${keys.length}`)
  for (const k of keys) {
    const v = (m as Record<string, unknown>)[k]
    if (k.length === 0 || k.length > 64) bad(`expected metadata keys of 1..64 chars, got ${k.length}`)
    if (typeof v === 'string') { if (v.length > MAX_METADATA_STRING) bad(`expected metadata strings of at most ${MAX_METADATA_STRING} chars`) } else if (typeof v === 'number') { if (!Number.isFinite(v)) bad('expected finite metadata numbers') } else if (typeof v !== 'boolean') bad(`expected metadata values to be strings, numbers or booleans, got ${typeof v} at ${k}`)
  }
}

/** Validates an entry body (shape only; no signature, no ownership). Returns it. */
export function validateEntryBody(raw: unknown): EntryBody {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || raw instanceof Uint8Array) return bad('expected the entry body to be a map')
  const b = raw as Record<string, unknown>
  for (const k of Object.keys(b)) if (!ENTRY_KEYS.has(k)) bad(`expected only known entry fields, got ${k.slice(0, 40)}`)
  if (b.v !== 1) bad(`expected entry format 1, got ${String(b.v)}`)
  if (!isCollectionName(b.collection)) bad('expected a collection name of 1..64 chars [A-Za-z0-9._-]')
  if (typeof b.id !== 'string' || b.id.length === 0 || b.id.length > MAX_ID_LENGTH) bad(`expected an id of 1..${MAX_ID_LENGTH} chars`)
  if (b.op !== 'put' && b.op !== 'del') bad(`expected op put or del, got ${String(b.op).slice(0, 20)}`)
  if (typeof b.owner !== 'string' || !DID_RE.test(b.owner)) bad('expected the owner to be a DID')
  if (typeof b.writer !== 'string' || !DID_RE.test(b.writer)) bad('expected the writer to be a DID')
  if (!isHlc(b.hlc) || Object.keys(b.hlc as object).length !== 2) bad('expected hlc {wall, counter} in range')
  if (b.op === 'put') {
    if (!(b.vector instanceof Uint8Array) || b.vector.length === 0 || b.vector.length % 4 !== 0 || b.vector.length > MAX_DIMENSIONS * 4) bad(`expected a put's vector as 1..${MAX_DIMENSIONS} f32 values`)
    const f = vectorOf(b.vector as Uint8Array)
    for (let i = 0; i < f.length; i++) if (!Number.isFinite(f[i])) bad('expected finite vector values')
    if (b.metadata !== undefined) checkMetadata(b.metadata)
  } else if (b.vector !== undefined || b.metadata !== undefined) bad('expected a tombstone without vector or metadata')
  if (b.region !== undefined && (typeof b.region !== 'string' || b.region.length === 0 || b.region.length > 64)) bad('expected a region of 1..64 chars')
  if (b.delegation !== undefined) {
    if (!(b.delegation instanceof Uint8Array) || b.delegation.length > MAX_DELEGATION_BYTES) bad('expected delegation bytes')
    if (b.writer === b.owner) bad('expected no delegation when the writer is the owner')
  } else if (b.writer !== b.owner) bad('expected a delegation when the writer is not the owner')
  return b as unknown as EntryBody
}

function entryOf(body: EntryBody, payload: Uint8Array, bytes: Uint8Array): SignedEntry {
  return Object.freeze({ hash: new Uint8Array(createHash('sha256').update(payload).digest()), key: entryKey(body.owner, body.id), body, bytes })
}

/** Signs an entry body with the writer's signer. */
export async function signEntry(body: EntryBody, signer: Signer): Promise<SignedEntry> {
  // optional fields set to undefined are absent
  const b = validateEntryBody(Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)))
  const payload = encodeValue(b as unknown as KLPValue)
  const bytes = await signCose(payload, signer, ENTRY_AAD)
  if (bytes.length > MAX_ENTRY_BYTES) throw new InvalidEntryError(`expected an entry of at most ${MAX_ENTRY_BYTES} bytes, got ${bytes.length}`)
  return entryOf(b, payload, bytes)
}

function decodeBody(payload: Uint8Array): unknown {
  try {
    return decodeValue(payload, { limits: CBOR_LIMITS })
  } catch (err) {
    if (!(err instanceof KosMeshError)) throw err
    throw new InvalidEntryError(`expected the payload to be DAG-CBOR, got ${err.name}`, { cause: err })
  }
}

/** Signs a delegation: `owner` (the signer) lets `delegate` write its entries in `collection` until `expires_at` (HLC wall ms). */
export async function signDelegation(body: Omit<DelegationBody, 'v' | 'kind'>, signer: Signer): Promise<Uint8Array> {
  const b: DelegationBody = { v: 1, kind: 'vector-delegation', ...body }
  validateDelegation(b)
  return signCose(encodeValue(b as unknown as KLPValue), signer, DELEGATION_AAD)
}

function validateDelegation(raw: unknown): DelegationBody {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return bad('expected a delegation map')
  const d = raw as Record<string, unknown>
  for (const k of Object.keys(d)) if (!DELEGATION_KEYS.has(k)) bad(`expected only known delegation fields, got ${k.slice(0, 40)}`)
  if (d.v !== 1 || d.kind !== 'vector-delegation') bad('expected a vector-delegation of format 1')
  if (typeof d.owner !== 'string' || !DID_RE.test(d.owner) || typeof d.delegate !== 'string' || !DID_RE.test(d.delegate)) bad('expected owner and delegate DIDs')
  if (!isCollectionName(d.collection)) bad('expected a collection name')
  if (!Number.isSafeInteger(d.expires_at) || (d.expires_at as number) < 0) bad('expected expires_at as ms')
  return d as unknown as DelegationBody
}

/**
 * Decodes and verifies an entry: envelope, body, signature of the writer, and ownership (writer is
 * the owner, or a valid delegation signed by the owner names the writer, for this collection,
 * unexpired at the entry's HLC wall time). Throws InvalidEntryError, VectorTooLargeError,
 * InvalidEntrySignatureError or ForeignOwnerError.
 */
export function verifyEntry(bytes: Uint8Array, maxBytes = MAX_ENTRY_BYTES): SignedEntry {
  const d = decodeCose(bytes, ENTRY_AAD, maxBytes)
  const body = validateEntryBody(decodeBody(d.payload))
  if (d.signer !== body.writer) throw new ForeignOwnerError(`expected the entry signed by its writer ${body.writer.slice(0, 80)}, got ${d.signer.slice(0, 80)}`)
  verifyCose(d)
  if (body.writer !== body.owner) {
    const dd = decodeCose(body.delegation as Uint8Array, DELEGATION_AAD, MAX_DELEGATION_BYTES)
    const del = validateDelegation(decodeBody(dd.payload))
    if (dd.signer !== body.owner || del.owner !== body.owner) throw new ForeignOwnerError('expected a delegation signed by the entry owner')
    if (del.delegate !== body.writer || del.collection !== body.collection) throw new ForeignOwnerError('expected a delegation to this writer for this collection')
    if (body.hlc.wall >= del.expires_at) throw new ForeignOwnerError(`expected an entry written before its delegation expired at ${del.expires_at}, got ${body.hlc.wall}`)
    verifyCose(dd)
  }
  return entryOf(body, d.payload, bytes.slice())
}

/**
 * Decodes an entry this node stored itself after verifying it (its own records): the envelope and
 * body are checked strictly, the signature is not checked again.
 */
export function decodeStoredEntry(bytes: Uint8Array, maxBytes = MAX_ENTRY_BYTES): SignedEntry {
  const d = decodeCose(bytes, ENTRY_AAD, maxBytes)
  const body = validateEntryBody(decodeBody(d.payload))
  return entryOf(body, d.payload, bytes)
}

/** The body of an entry this node stored itself (no signature check, no hash): for reads on the query path. */
export function decodeStoredBody(bytes: Uint8Array, maxBytes = MAX_ENTRY_BYTES): EntryBody {
  return validateEntryBody(decodeBody(decodeCose(bytes, ENTRY_AAD, maxBytes).payload))
}
