/**
 * Secrets sealed to one node's key (an ECIES-style box), so they never travel or rest in clear.
 *
 *   R      = X25519 key of the recipient, derived from its Ed25519 did:key (did-security)
 *   e, E   = a fresh X25519 key pair (ephemeral, per box)
 *   ss     = X25519(e, R); an all-zero ss (small-order R) is refused
 *   key    = HKDF-SHA256(ikm = ss, salt = E || R, info = "kos-mesh/agent-migration/v1 seal", 32 bytes)
 *   box    = { v: 1, epk: E, nonce: 24 random bytes, ct: XChaCha20-Poly1305(key, nonce, aad, plaintext) }
 *   aad    = UTF-8 of "<agent id>\n<recipient DID>" (a box moved to another agent or recipient fails)
 *   plaintext = DAG-CBOR of the secrets map { name: text }
 * The recipient computes ss = X25519(r, E) with its static key (`Identity.agree`), the rest alike.
 * No sender authentication in the box itself: the box travels inside a bundle whose checksum the
 * sender signed in the request.
 */
import { randomBytes } from 'node:crypto'
import { describeValue, type KLPValue } from '@kos-mesh/interface'
import { decodeValue, encodeValue } from '@kos-mesh/klp-codec'
import { publicKeyFromDidKey, x25519FromEd25519PublicKey } from '@kos-mesh/did-security'
import { x25519 } from '@noble/curves/ed25519.js'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { isObj } from './check.js'
import { SealError } from './errors.js'
import type { SealedBox } from './types.js'

/**
 * The HKDF `info` of every sealed box's key: it separates these keys from any other use of the
 * same X25519 agreement.
 */
export const SEAL_INFO = 'kos-mesh/agent-migration/v1 seal'
/** Most secrets in one box (`sealSecrets` and `openSecrets` throw SealError past it). */
export const MAX_SECRETS = 64
/**
 * Longest secret value, in JavaScript string length (UTF-16 code units, so up to 48 KiB of UTF-8).
 * Names are 1..128 chars. `sealSecrets` and `openSecrets` throw SealError past either bound.
 */
export const MAX_SECRET_BYTES = 16 * 1024

const utf8 = new TextEncoder()

/** Whoever can open boxes: a did-security Identity fits. */
export interface SealIdentity {
  /** The Ed25519 did:key boxes are sealed to (their AAD names it). */
  readonly did: string
  /** Its X25519 public key (32 bytes), derived from the did:key's Ed25519 key. */
  readonly x25519PublicKey: Uint8Array
  /**
   * X25519 agreement of this identity's static key with `peerX25519PublicKey` (a box's 32-byte
   * ephemeral key); returns the 32-byte shared secret. May throw for an invalid key, which
   * `openSecrets` reports as SealError.
   */
  agree(peerX25519PublicKey: Uint8Array): Uint8Array
}

/**
 * An agent's secrets: name -> text (at most {@link MAX_SECRETS} entries, names of 1..128 chars,
 * values of at most {@link MAX_SECRET_BYTES} chars). Only ever stored or sent sealed (`sealSecrets`);
 * granted code reads them with `host.secret(name)`.
 */
export type Secrets = Record<string, string>

function checkSecrets(s: unknown): Secrets {
  if (!isObj(s)) throw new SealError(`expected secrets as a map of text, got ${describeValue(s)}`)
  const keys = Object.keys(s)
  if (keys.length > MAX_SECRETS) throw new SealError(`expected at most ${MAX_SECRETS} secrets, got ${keys.length}`)
  for (const k of keys) {
    const v = s[k]
    if (k.length === 0 || k.length > 128 || typeof v !== 'string' || v.length > MAX_SECRET_BYTES) throw new SealError(`expected secret ${JSON.stringify(k.slice(0, 40))} as text of at most ${MAX_SECRET_BYTES} chars`)
  }
  return s as Secrets
}

/** `epk || rpk`, the HKDF salt. */
function salt(epk: Uint8Array, rpk: Uint8Array): Uint8Array {
  const out = new Uint8Array(epk.length + rpk.length)
  out.set(epk)
  out.set(rpk, epk.length)
  return out
}

function derive(ss: Uint8Array, epk: Uint8Array, rpk: Uint8Array): Uint8Array {
  if (ss.every((b) => b === 0)) throw new SealError('expected a contributory key agreement, got an all-zero secret')
  return hkdf(sha256, ss, salt(epk, rpk), utf8.encode(SEAL_INFO), 32)
}

function recipientKey(did: string): Uint8Array {
  try {
    return x25519FromEd25519PublicKey(publicKeyFromDidKey(did))
  } catch (err) {
    throw new SealError(`expected an Ed25519 did:key recipient, got ${describeValue(did)}`, { cause: err })
  }
}

/** Seals `secrets` to `recipientDid` for `agentId`. */
export function sealSecrets(secrets: Secrets, recipientDid: string, agentId: string): SealedBox {
  const plain = encodeValue(checkSecrets(secrets) as unknown as KLPValue)
  const rpk = recipientKey(recipientDid)
  const e = x25519.keygen()
  const key = derive(x25519.getSharedSecret(e.secretKey, rpk), e.publicKey, rpk)
  const nonce = new Uint8Array(randomBytes(24))
  const ct = xchacha20poly1305(key, nonce, utf8.encode(`${agentId}\n${recipientDid}`)).encrypt(plain)
  key.fill(0)
  e.secretKey.fill(0)
  return { v: 1, epk: e.publicKey, nonce, ct }
}

/** Opens a box sealed to `identity` for `agentId`; SealError when it is not for them or was changed. */
export function openSecrets(box: SealedBox, identity: SealIdentity, agentId: string): Secrets {
  let ss: Uint8Array
  try {
    ss = identity.agree(box.epk)
  } catch (err) {
    throw new SealError('expected a valid ephemeral key', { cause: err })
  }
  const key = derive(ss, box.epk, identity.x25519PublicKey)
  let plain: Uint8Array
  try {
    plain = xchacha20poly1305(key, box.nonce, utf8.encode(`${agentId}\n${identity.did}`)).decrypt(box.ct)
  } catch (err) {
    throw new SealError(`expected a box sealed to ${identity.did.slice(0, 60)} for agent ${agentId.slice(0, 60)}, got one that does not open`, { cause: err })
  } finally {
    key.fill(0)
  }
  try {
    return checkSecrets(decodeValue(plain, { limits: { maxDepth: 2, maxItems: MAX_SECRETS + 1, maxStringLength: MAX_SECRET_BYTES } }))
  } catch (err) {
    if (err instanceof SealError) throw err
    throw new SealError('expected sealed secrets as a DAG-CBOR map of text', { cause: err })
  }
}
