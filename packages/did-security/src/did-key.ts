/** did:key for Ed25519 (multicodec ed25519-pub 0xed, base58btc) and the derived X25519 key. */
import { ed25519 } from '@noble/curves/ed25519.js'
import { base58btc } from 'multiformats/bases/base58'
import type { DidDocumentView } from '@kos-mesh/interface'
import { InvalidDidError, InvalidKeyError, InvalidPublicKeyError } from './errors.js'
import { checkPublicKey } from './rule.js'
import { x25519PublicFromEd25519Public } from './backend.js'
import { assertBytes, LruCache } from './bytes.js'

const ED25519_PUB = [0xed, 0x01] as const
const X25519_PUB = [0xec, 0x01] as const
/** Longest DID string any API here accepts. */
export const MAX_DID_LENGTH = 512

function multibaseKey(prefix: readonly [number, number], key: Uint8Array): string {
  const b = new Uint8Array(34)
  b[0] = prefix[0]; b[1] = prefix[1]
  b.set(key, 2)
  return base58btc.encode(b)
}

let pointChecks = 0
/** @internal Point decompressions run so far (tests check that parsing a DID again hits the cache). */
export function pointCheckCount(): number {
  return pointChecks
}

/**
 * True when 32 bytes are an Ed25519 public key the mesh accepts: the rule's byte checks (canonical
 * encoding, not one of the small-order points) and a point on the curve (the encoding decompresses:
 * its y has an x). The decompression costs tens of µs in pure JS: callers cache the answer.
 */
export function isValidEd25519PublicKey(publicKey: Uint8Array): boolean {
  if (!checkPublicKey(publicKey)) return false
  pointChecks++
  try {
    ed25519.Point.fromBytes(publicKey) // strict (RFC 8032) decoding; throws when y has no x
    return true
  } catch {
    return false
  }
}

/** `did:key:z6Mk...` of a 32-byte Ed25519 public key. Rejects non-canonical, small-order and off-curve keys. */
export function didKeyFromPublicKey(publicKey: Uint8Array): string {
  assertBytes(publicKey, 'an Ed25519 public key', 32)
  if (!isValidEd25519PublicKey(publicKey)) {
    throw new InvalidKeyError('expected a canonical Ed25519 public key of large order on the curve, got a small-order, non-canonical or off-curve encoding')
  }
  return `did:key:${multibaseKey(ED25519_PUB, publicKey)}`
}

/**
 * Validated keys of did:key DIDs (the DID without fragment -> its key), and the DIDs rejected for
 * their key (-> the reason), kept apart so a flood of bad DIDs cannot evict good ones. Parsing runs
 * on every handshake and key resolution; the point check is paid once per DID.
 */
const validKeys = new LruCache<string, Uint8Array>(4096)
const invalidKeys = new LruCache<string, string>(1024)

/** The Ed25519 key of a did:key without fragment, validated (uncached). */
function parseDidKey(base: string): Uint8Array {
  if (!base.startsWith('did:key:z')) throw new InvalidDidError(`expected a did:key with a base58btc ("z") identifier, got "${base.slice(0, 24)}"`)
  const id = base.slice('did:key:'.length)
  let bytes: Uint8Array
  try { bytes = base58btc.decode(id) } catch (err) {
    throw new InvalidDidError('expected a base58btc did:key identifier, got undecodable characters', { cause: err })
  }
  if (bytes.length !== 34 || bytes[0] !== ED25519_PUB[0] || bytes[1] !== ED25519_PUB[1]) {
    throw new InvalidDidError(`expected an ed25519-pub (0xed) did:key of 34 bytes, got ${bytes.length} bytes with prefix 0x${(bytes[0] ?? 0).toString(16)}`)
  }
  const pk = bytes.slice(2)
  let reason: string
  if (!checkPublicKey(pk)) {
    reason = 'expected a canonical Ed25519 public key of large order in the did:key, got a non-canonical or small-order encoding'
  } else if (!isValidEd25519PublicKey(pk)) {
    reason = 'expected an Ed25519 public key on the curve in the did:key, got an encoding that is not a point (invalidPublicKey)'
  } else {
    return pk
  }
  invalidKeys.set(base, reason)
  throw new InvalidPublicKeyError(reason)
}

/**
 * The Ed25519 public key of a did:key (or of a did:key URL with a `#fragment`). Throws
 * `InvalidPublicKeyError` when the key is not a valid Ed25519 public key (off the curve,
 * non-canonical, small order), `InvalidDidError` for any other malformed did:key. Cached per DID.
 */
export function publicKeyFromDidKey(did: string): Uint8Array {
  if (typeof did !== 'string') throw new InvalidDidError(`expected a did:key string, got ${typeof did}`)
  if (did.length > MAX_DID_LENGTH) throw new InvalidDidError(`expected a DID of at most ${MAX_DID_LENGTH} characters, got ${did.length}`)
  const hash = did.indexOf('#')
  const base = hash === -1 ? did : did.slice(0, hash)
  let pk = validKeys.get(base)
  if (pk === undefined) {
    const bad = invalidKeys.get(base)
    if (bad !== undefined) throw new InvalidPublicKeyError(bad)
    pk = parseDidKey(base)
    validKeys.set(base, pk)
  }
  if (hash !== -1) {
    const frag = did.slice(hash + 1)
    const id = base.slice('did:key:'.length)
    if (frag !== id && frag !== x25519Fingerprint(pk)) throw new InvalidDidError('expected the did:key fragment to name the key of the DID')
  }
  return pk.slice()
}

/** The key id (`did#fingerprint`) of the Ed25519 verification method. */
export function keyIdFromDid(did: string): string {
  const id = did.slice('did:key:'.length)
  return `${did}#${id}`
}

function x25519Fingerprint(edPublicKey: Uint8Array): string {
  return multibaseKey(X25519_PUB, x25519PublicFromEd25519Public(edPublicKey))
}

/** X25519 public key of an Ed25519 public key, as the did:key method derives it. */
export function x25519FromEd25519PublicKey(publicKey: Uint8Array): Uint8Array {
  assertBytes(publicKey, 'an Ed25519 public key', 32)
  try { return x25519PublicFromEd25519Public(publicKey) } catch (err) {
    throw new InvalidKeyError('expected an Ed25519 public key that decodes to a curve point', { cause: err })
  }
}

/** `z6LS...` multibase fingerprint of an X25519 public key. */
export function x25519KeyFingerprint(x25519PublicKey: Uint8Array): string {
  assertBytes(x25519PublicKey, 'an X25519 public key', 32)
  return multibaseKey(X25519_PUB, x25519PublicKey)
}

const docCache = new LruCache<string, DidDocumentView>(4096)

/** The mesh's view of a did:key document: one Ed25519 verification key, one X25519 agreement key (cached). */
export function didKeyDocument(did: string): DidDocumentView {
  const hit = docCache.get(did)
  if (hit !== undefined) return hit
  const view = buildDidKeyDocument(did)
  docCache.set(did, view)
  return view
}

function buildDidKeyDocument(did: string): DidDocumentView {
  const publicKey = publicKeyFromDidKey(did)
  const base = did.includes('#') ? did.slice(0, did.indexOf('#')) : did
  const x = x25519FromEd25519PublicKey(publicKey)
  return {
    id: base,
    verificationKeys: [{ id: keyIdFromDid(base), publicKey }],
    keyAgreementKeys: [{ id: `${base}#${x25519KeyFingerprint(x)}`, publicKey: x }],
  }
}
