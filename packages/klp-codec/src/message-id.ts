/**
 * Message ids: the content address of a canonical body, a CIDv1 (dag-cbor, sha2-256 truncated to
 * 128 bits) in base32, computed with one node:crypto hash call; and parsing an id back into a CID.
 */
import * as nodeCrypto from 'node:crypto'
import { describeValue, InvalidParametersError } from '@kos-mesh/interface'
import type { UnsignedKLPMessage } from '@kos-mesh/interface'
import { CID } from 'multiformats/cid'
import { encodeBody } from './message-body-encode.js'
import { MESSAGE_ID_CODEC, MESSAGE_ID_DIGEST_LENGTH, MESSAGE_ID_HASH } from './message-schema.js'

type OneShotHash = (alg: string, data: Uint8Array, enc: 'latin1') => string
const oneShot = (nodeCrypto as unknown as { hash?: OneShotHash }).hash
/** SHA-256 as a 32-char latin1 string (one char per byte): no Buffer allocation for the digest. */
const sha256Latin1 = (data: Uint8Array): string =>
  oneShot !== undefined ? oneShot('sha256', data, 'latin1') : nodeCrypto.createHash('sha256').update(data).digest('binary')

const ID_PREFIX = Uint8Array.of(0x01, MESSAGE_ID_CODEC, MESSAGE_ID_HASH, MESSAGE_ID_DIGEST_LENGTH)
/** RFC 4648 base32, lower case, no padding: the multibase 'b' alphabet. */
const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
const idBytes = new Uint8Array(4 + MESSAGE_ID_DIGEST_LENGTH)
idBytes.set(ID_PREFIX, 0)

/**
 * The message id of a canonical body: CIDv1 (dag-cbor, sha2-256 truncated to 128 bits), base32.
 * One node:crypto hash call, then the 20 CID bytes (exactly 32 base32 digits, 4 groups of 5
 * bytes) are written straight into the string: no CID object, no intermediate arrays.
 */
export function messageIdFromBody(body: Uint8Array): string {
  const digest = sha256Latin1(body)
  const b = idBytes
  for (let i = 0; i < MESSAGE_ID_DIGEST_LENGTH; i++) b[4 + i] = digest.charCodeAt(i)
  let out = 'b'
  for (let i = 0; i < 20; i += 5) {
    // 40 bits as a high byte and a low 32-bit word (no bigint): 8 digits of 5 bits.
    const hi = b[i] as number
    const lo = (((b[i + 1] as number) << 24) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 8) | (b[i + 4] as number)) >>> 0
    out += B32[hi >>> 3]! + B32[((hi & 7) << 2) | (lo >>> 30)]! + B32[(lo >>> 25) & 31]! + B32[(lo >>> 20) & 31]! +
      B32[(lo >>> 15) & 31]! + B32[(lo >>> 10) & 31]! + B32[(lo >>> 5) & 31]! + B32[lo & 31]!
  }
  return out
}

/** Computes the 128-bit content address of the canonical unsigned message. */
export function computeMessageId(msg: UnsignedKLPMessage): string {
  return messageIdFromBody(encodeBody(msg))
}

/** Parses a message id into a multiformats CID; throws InvalidParametersError if it is not a KLP message id. */
export function parseMessageId(id: string): CID {
  let cid: CID
  try {
    cid = CID.parse(id)
  } catch (err) {
    throw new InvalidParametersError(`expected a CID string, got ${describeValue(id)}`, { cause: err })
  }
  if (cid.version !== 1 || cid.code !== MESSAGE_ID_CODEC || cid.multihash.code !== MESSAGE_ID_HASH || cid.multihash.size !== MESSAGE_ID_DIGEST_LENGTH) {
    throw new InvalidParametersError(`expected a CIDv1 dag-cbor with a 16-byte sha2-256 digest, got ${id}`)
  }
  return cid
}
