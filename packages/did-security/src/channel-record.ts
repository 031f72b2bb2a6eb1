/**
 * Record protection of the secure channel (see channel-session.ts for the record format): the
 * per-direction, per-epoch AES-256-GCM keys on the native and generic backends, the rekey step
 * (key_{e+1} = HKDF(key_e, "rekey")) and the sliding window that rejects replayed records.
 */
import * as nodeCrypto from 'node:crypto'
import { DecryptionError } from '@kos-mesh/interface'
import type { AeadKey, CryptoBackend } from './backend.js'
import { utf8 } from './bytes.js'
import { SessionExpiredError } from './errors.js'

const INFO_REKEY = utf8.encode('KLP-CHANNEL-v1 rekey')
const EMPTY = new Uint8Array(0)
const MAX_EPOCH = 0xffff

/** The AES-256-GCM key of one direction and epoch: seals and opens whole records (header = nonce tail). */
export interface DirectionKey {
  epoch: number
  key: Uint8Array
  seal(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): Uint8Array
  sealParts(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): [Uint8Array, Uint8Array, Uint8Array]
  open(record: Uint8Array, aad: Uint8Array | undefined): Uint8Array
}

/**
 * node:crypto record protection. Per record: one cipher object (node has no reusable GCM context),
 * the KeyObject created once per direction and epoch, a reused nonce buffer written byte by byte
 * (no views allocated), and one record-sized allocation on encrypt. node:crypto cannot write into a
 * caller buffer, so `seal` copies the ciphertext it returns once, behind the header; that copy is the
 * only work beyond a bare createCipheriv/createDecipheriv pair (see bench/index.ts). `sealParts` skips
 * it (the caller writes the parts with writev). Decrypt reads the record in place (subarrays) and
 * returns the buffer node:crypto produced, without copying.
 */
class NativeDirectionKey implements DirectionKey {
  private readonly keyObject: nodeCrypto.KeyObject
  private readonly nonce = Buffer.alloc(12)
  constructor(readonly epoch: number, readonly key: Uint8Array) {
    this.keyObject = nodeCrypto.createSecretKey(key)
  }
  seal(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
    const nonce = this.nonce
    const n = plaintext.length
    const out = Buffer.allocUnsafe(8 + n + 16)
    for (let i = 0; i < 8; i++) { const b = header[i] as number; nonce[4 + i] = b; out[i] = b }
    const c = nodeCrypto.createCipheriv('aes-256-gcm', this.keyObject, nonce)
    if (aad !== undefined && aad.length > 0) c.setAAD(aad)
    out.set(c.update(plaintext), 8)
    c.final() // GCM is a stream mode: final() adds no bytes, it computes the tag
    out.set(c.getAuthTag(), 8 + n)
    // a plain Uint8Array view: Buffer#slice would share memory, Uint8Array#slice copies
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
  }
  sealParts(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): [Uint8Array, Uint8Array, Uint8Array] {
    const nonce = this.nonce
    const head = new Uint8Array(8)
    for (let i = 0; i < 8; i++) { const b = header[i] as number; nonce[4 + i] = b; head[i] = b }
    const c = nodeCrypto.createCipheriv('aes-256-gcm', this.keyObject, nonce)
    if (aad !== undefined && aad.length > 0) c.setAAD(aad)
    const ct = c.update(plaintext)
    c.final()
    const tag = c.getAuthTag()
    return [head, new Uint8Array(ct.buffer, ct.byteOffset, ct.byteLength), new Uint8Array(tag.buffer, tag.byteOffset, tag.byteLength)]
  }
  open(record: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
    const nonce = this.nonce
    for (let i = 0; i < 8; i++) nonce[4 + i] = record[i] as number
    const end = record.length - 16
    // the tag passed is always exactly the last 16 bytes, so no authTagLength option is needed
    const d = nodeCrypto.createDecipheriv('aes-256-gcm', this.keyObject, nonce)
    d.setAuthTag(record.subarray(end))
    if (aad !== undefined && aad.length > 0) d.setAAD(aad)
    const body = d.update(record.subarray(8, end))
    try { d.final() } catch (err) { throw new DecryptionError('record authentication failed', { cause: err }) }
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  }
}

class GenericDirectionKey implements DirectionKey {
  private readonly aead: AeadKey
  private readonly nonce = new Uint8Array(12)
  constructor(readonly epoch: number, readonly key: Uint8Array, crypto: CryptoBackend) {
    this.aead = crypto.aead(key)
  }
  seal(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
    this.nonce.set(header, 4)
    const ct = this.aead.seal(this.nonce, plaintext, aad ?? EMPTY)
    const out = new Uint8Array(8 + ct.length)
    out.set(header, 0); out.set(ct, 8)
    return out
  }
  sealParts(header: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): [Uint8Array, Uint8Array, Uint8Array] {
    this.nonce.set(header, 4)
    const sealed = this.aead.seal(this.nonce, plaintext, aad ?? EMPTY)
    const end = sealed.length - 16
    return [header.slice(0, 8), sealed.subarray(0, end), sealed.subarray(end)]
  }
  open(record: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
    for (let i = 0; i < 8; i++) this.nonce[4 + i] = record[i] as number
    return this.aead.open(this.nonce, record.subarray(8), aad ?? EMPTY)
  }
}

/** The record key of `epoch` on `crypto`: the native (node:crypto) one where it can, else the generic one. */
export function makeKey(crypto: CryptoBackend, epoch: number, key: Uint8Array): DirectionKey {
  return crypto.name === 'native' ? new NativeDirectionKey(epoch, key) : new GenericDirectionKey(epoch, key, crypto)
}

/** The key of the next epoch (key_{e+1} = HKDF(key_e, "rekey")); SessionExpiredError past the last epoch. */
export function nextKey(crypto: CryptoBackend, k: DirectionKey): DirectionKey {
  if (k.epoch >= MAX_EPOCH) throw new SessionExpiredError(`expected fewer than ${MAX_EPOCH} rekeys, the session used them all`)
  return makeKey(crypto, k.epoch + 1, crypto.hkdfSha256(k.key, EMPTY, INFO_REKEY, 32))
}

/** Sliding window over sequence numbers of one epoch (size 1 = strict order). */
export class SeqWindow {
  top = -1
  private readonly ring: Float64Array
  constructor(readonly size: number) { this.ring = new Float64Array(Math.max(size, 1)).fill(-1) }
  /** 0 = acceptable, 1 = replay (old or seen), 2 = gap (strict mode only). */
  check(seq: number, strict: boolean): 0 | 1 | 2 {
    if (strict) return seq === this.top + 1 ? 0 : seq <= this.top ? 1 : 2
    if (seq > this.top) return 0
    if (this.top - seq >= this.size) return 1
    return this.ring[seq % this.size] === seq ? 1 : 0
  }
  accept(seq: number): void {
    if (seq > this.top) this.top = seq
    this.ring[seq % this.ring.length] = seq
  }
}
