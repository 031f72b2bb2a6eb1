/**
 * Payload envelopes: serialization by content type, gzip compression (with a decompressed-size
 * cap) and AES-256-GCM encryption (12-byte nonce, caller-supplied 32-byte key).
 *
 * Order: serialize -> compress -> encrypt; open in reverse. A compressed or encrypted payload's
 * `data` is a byte string. Ciphertext is `AES-256-GCM(key, nonce, plaintext, aad) || tag(16)`,
 * where aad = DAG-CBOR `["KLP-Payload1", content_type, compression algorithm | null, key_id | null]`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { gunzipSync, gzipSync } from 'node:zlib'
import { InvalidParametersError, describeValue } from '@kos-mesh/interface'
import type { KLPPayload, KLPValue } from '@kos-mesh/interface'
import { decodeValue } from './cbor-decode.js'
import { encodeValue } from './cbor-encode.js'
import {
  AuthenticationFailedError,
  DecompressedTooLargeError,
  DecompressionError,
  InvalidEnvelopeError,
  InvalidKeyError,
  InvalidPayloadError,
  NestingTooDeepError,
  TooManyItemsError,
  UnsupportedContentTypeError,
} from './errors.js'
import { resolveLimits } from './limits.js'
import type { CodecLimits } from './limits.js'

/** AES-256-GCM nonce length of an encrypted payload, bytes. */
export const NONCE_LENGTH = 12
/** AES-256-GCM key length, bytes. */
export const KEY_LENGTH = 32
/** AES-256-GCM authentication tag length, bytes. */
export const TAG_LENGTH = 16
/**
 * Context string first in the additional authenticated data of an encrypted payload (with its content type,
 * compression, key id and ephemeral key).
 */
export const PAYLOAD_AAD_CONTEXT = 'KLP-Payload1'

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The media type of a content type, lower-cased, without parameters. */
export function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';')
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase()
}


function jsonReplacer(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint' || v instanceof Uint8Array || v === undefined || typeof v === 'function' || typeof v === 'symbol') {
    throw new InvalidParametersError(`expected a JSON-representable value for application/json, got ${describeValue(v)}`)
  }
  if (typeof v === 'number' && !Number.isFinite(v)) throw new InvalidParametersError(`expected a finite number for application/json, got ${v}`)
  return v
}

/**
 * Serializes `data` under its content type: application/cbor -> DAG-CBOR; application/json
 * -> UTF-8 JSON; text/plain -> UTF-8 (data must be a string); application/octet-stream and any
 * other type -> data must already be a Uint8Array.
 */
export function encodePayloadData(data: KLPValue, contentType: string, options?: { limits?: Partial<CodecLimits> }): Uint8Array {
  switch (mediaType(contentType)) {
    case 'application/cbor':
      return encodeValue(data, options)
    case 'application/json': {
      let s: string
      try {
        s = JSON.stringify(data, jsonReplacer)
      } catch (err) {
        if (err instanceof InvalidParametersError) throw err
        throw new InvalidParametersError('expected a JSON-representable value for application/json', { cause: err })
      }
      return new Uint8Array(Buffer.from(s, 'utf8'))
    }
    case 'text/plain':
      if (typeof data !== 'string') throw new InvalidParametersError(`expected a string for text/plain, got ${describeValue(data)}`)
      if (!(data as unknown as { isWellFormed(): boolean }).isWellFormed()) throw new InvalidParametersError('expected a well-formed string, got one with a lone surrogate')
      return new Uint8Array(Buffer.from(data, 'utf8'))
    default:
      if (!(data instanceof Uint8Array)) {
        throw new UnsupportedContentTypeError(`expected a Uint8Array for content type ${contentType}, got ${describeValue(data)}`)
      }
      return data
  }
}

function checkShape(v: unknown, depth: number, limits: Readonly<CodecLimits>, budget: { items: number }): void {
  if (v === null || typeof v !== 'object') return
  if (depth >= limits.maxDepth) throw new NestingTooDeepError(`expected nesting depth <= ${limits.maxDepth}, got deeper`)
  const values = Array.isArray(v) ? v : Object.values(v)
  budget.items -= values.length
  if (budget.items < 0) throw new TooManyItemsError(`expected at most ${limits.maxItems} array elements and map entries in total, got more`)
  for (const x of values) checkShape(x, depth + 1, limits, budget)
}

/**
 * Inverse of encodePayloadData; strict and bounded. Unknown types come back as bytes (`bytes`
 * itself). For application/cbor, byte strings in the result are views into `bytes` (see decodeValue).
 */
export function decodePayloadData(bytes: Uint8Array, contentType: string, options?: { limits?: Partial<CodecLimits> }): KLPValue {
  const limits = resolveLimits(options?.limits)
  switch (mediaType(contentType)) {
    case 'application/cbor':
      return decodeValue(bytes, { limits })
    case 'application/json': {
      let v: unknown
      try {
        v = JSON.parse(fatalUtf8.decode(bytes))
      } catch (err) {
        throw new InvalidPayloadError('expected UTF-8 JSON for application/json', { cause: err })
      }
      checkShape(v, 0, limits, { items: limits.maxItems })
      return v as KLPValue
    }
    case 'text/plain':
      if (bytes.length > limits.maxStringLength) throw new InvalidPayloadError(`expected text of at most ${limits.maxStringLength} bytes, got ${bytes.length}`)
      try {
        return fatalUtf8.decode(bytes)
      } catch (err) {
        throw new InvalidPayloadError('expected valid UTF-8 for text/plain', { cause: err })
      }
    default:
      return bytes
  }
}

function checkPlain(p: KLPPayload, what: string, allowCompressed: boolean): void {
  if (p === null || typeof p !== 'object') throw new InvalidParametersError(`expected a KLPPayload, got ${describeValue(p)}`)
  if (p.encryption?.enabled === true) throw new InvalidParametersError(`expected an unencrypted payload to ${what}, got an encrypted one`)
  if (!allowCompressed && p.compression?.enabled === true) throw new InvalidParametersError(`expected an uncompressed payload to ${what}, got a compressed one`)
}

/** Options of compressing a payload. */
export interface CompressOptions {
  /** gzip level 0..9. Default 6 (zlib's default). */
  level?: number
  limits?: Partial<CodecLimits>
}

/** Serializes and gzips a plain payload. */
export function compressPayload(payload: KLPPayload, options?: CompressOptions): KLPPayload {
  checkPlain(payload, 'compress', false)
  const level = options?.level ?? 6
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new InvalidParametersError(`expected level in 0..9, got ${String(level)}`)
  const raw = encodePayloadData(payload.data, payload.content_type, options)
  const gz = new Uint8Array(gzipSync(raw, { level }))
  return { content_type: payload.content_type, data: gz, encryption: { enabled: false }, compression: { enabled: true, algorithm: 'gzip' } }
}

/** Options of decompressing a payload (bounded: a payload that inflates past the limit is refused). */
export interface DecompressOptions {
  /** Largest decompressed size accepted. Default limits.maxDecompressedSize (4 MiB). */
  maxDecompressedSize?: number
  limits?: Partial<CodecLimits>
}

/** Gunzips a compressed plain payload (bounded) and deserializes its data. */
export function decompressPayload(payload: KLPPayload, options?: DecompressOptions): KLPPayload {
  checkPlain(payload, 'decompress', true)
  if (payload.compression?.enabled !== true) throw new InvalidParametersError('expected a compressed payload, got an uncompressed one')
  if (payload.compression.algorithm !== 'gzip') throw new InvalidParametersError(`expected compression algorithm gzip, got ${String(payload.compression.algorithm)}`)
  if (!(payload.data instanceof Uint8Array)) throw new InvalidParametersError(`expected compressed data as a Uint8Array, got ${describeValue(payload.data)}`)
  const limits = resolveLimits(options?.limits)
  const max = options?.maxDecompressedSize ?? limits.maxDecompressedSize
  const raw = gunzipBounded(payload.data, max)
  return {
    content_type: payload.content_type,
    data: decodePayloadData(raw, payload.content_type, { limits }),
    encryption: { enabled: false },
    compression: { enabled: false },
  }
}

/** Gunzip with an output cap; typed errors. */
export function gunzipBounded(data: Uint8Array, maxOutput: number): Uint8Array {
  if (!Number.isSafeInteger(maxOutput) || maxOutput < 1) throw new InvalidParametersError(`expected maxDecompressedSize to be a positive integer, got ${String(maxOutput)}`)
  try {
    const out = gunzipSync(data, { maxOutputLength: maxOutput })
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new DecompressedTooLargeError(`expected at most ${maxOutput} decompressed bytes, got more`, { cause: err })
    throw new DecompressionError('expected valid gzip data', { cause: err })
  }
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) {
    throw new InvalidKeyError(`expected a ${KEY_LENGTH}-byte AES-256 key, got ${describeValue(key)}`)
  }
}

function aad(contentType: string, compression: string | null, keyId: string | null, ephemeralKey: Uint8Array | undefined): Uint8Array {
  // The ephemeral key (sealed payloads) is bound too; the 4-element form is kept when it is absent.
  if (ephemeralKey !== undefined) return encodeValue([PAYLOAD_AAD_CONTEXT, contentType, compression, keyId, ephemeralKey])
  return encodeValue([PAYLOAD_AAD_CONTEXT, contentType, compression, keyId])
}

/** Options of encrypting a payload. */
export interface EncryptOptions {
  /** 12-byte nonce. Default: 12 random bytes. Never reuse a nonce with the same key. */
  nonce?: Uint8Array
  /** Recorded in `encryption.key_id` and bound into the associated data. */
  keyId?: string
  /**
   * Ephemeral public key of a sealed (ECIES-style) payload, e.g. from did-security's `sealKey`.
   * Recorded in `encryption.ephemeral_key` and bound into the associated data.
   */
  ephemeralKey?: Uint8Array
  limits?: Partial<CodecLimits>
}

/** Encrypts a (possibly compressed) payload with AES-256-GCM under a caller-supplied key. */
export function encryptPayload(payload: KLPPayload, key: Uint8Array, options?: EncryptOptions): KLPPayload {
  checkPlain(payload, 'encrypt', true)
  checkKey(key)
  const nonce = options?.nonce ?? new Uint8Array(randomBytes(NONCE_LENGTH))
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_LENGTH) {
    throw new InvalidParametersError(`expected a ${NONCE_LENGTH}-byte nonce, got ${describeValue(nonce)}`)
  }
  const keyId = options?.keyId
  if (keyId !== undefined && (typeof keyId !== 'string' || keyId.length === 0)) throw new InvalidParametersError(`expected keyId to be a non-empty string, got ${describeValue(keyId)}`)
  const ephemeralKey = options?.ephemeralKey
  if (ephemeralKey !== undefined && (!(ephemeralKey instanceof Uint8Array) || ephemeralKey.length === 0 || ephemeralKey.length > 256)) {
    throw new InvalidParametersError(`expected ephemeralKey to be 1..256 bytes, got ${describeValue(ephemeralKey)}`)
  }
  const compressed = payload.compression?.enabled === true
  let plaintext: Uint8Array
  if (compressed) {
    if (!(payload.data instanceof Uint8Array)) throw new InvalidParametersError(`expected compressed data as a Uint8Array, got ${describeValue(payload.data)}`)
    plaintext = payload.data
  } else {
    plaintext = encodePayloadData(payload.data, payload.content_type, options)
  }
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH })
  cipher.setAAD(aad(payload.content_type, compressed ? 'gzip' : null, keyId ?? null, ephemeralKey))
  const ct = cipher.update(plaintext)
  const fin = cipher.final()
  const tag = cipher.getAuthTag()
  const data = new Uint8Array(ct.length + fin.length + TAG_LENGTH)
  data.set(ct, 0)
  data.set(fin, ct.length)
  data.set(tag, ct.length + fin.length)
  const encryption: KLPPayload['encryption'] = { enabled: true, algorithm: 'AES-256-GCM', nonce: Uint8Array.from(nonce) }
  if (keyId !== undefined) encryption.key_id = keyId
  if (ephemeralKey !== undefined) encryption.ephemeral_key = Uint8Array.from(ephemeralKey)
  return {
    content_type: payload.content_type,
    data,
    encryption,
    compression: compressed ? { enabled: true, algorithm: 'gzip' } : { enabled: false },
  }
}

/**
 * Decrypts an encrypted payload. If it was compressed, the result is the compressed plain
 * payload (call decompressPayload next); otherwise the data is deserialized.
 * Throws InvalidEnvelopeError (bad nonce length / algorithm / too short) or AuthenticationFailedError.
 */
export function decryptPayload(payload: KLPPayload, key: Uint8Array, options?: { limits?: Partial<CodecLimits> }): KLPPayload {
  if (payload === null || typeof payload !== 'object') throw new InvalidParametersError(`expected a KLPPayload, got ${describeValue(payload)}`)
  checkKey(key)
  const e = payload.encryption
  if (e?.enabled !== true) throw new InvalidParametersError('expected an encrypted payload, got an unencrypted one')
  if (e.algorithm !== 'AES-256-GCM') throw new InvalidEnvelopeError(`expected algorithm AES-256-GCM, got ${String(e.algorithm)}`)
  if (!(e.nonce instanceof Uint8Array) || e.nonce.length !== NONCE_LENGTH) {
    throw new InvalidEnvelopeError(`expected a ${NONCE_LENGTH}-byte nonce, got ${describeValue(e.nonce)}`)
  }
  const data = payload.data
  if (!(data instanceof Uint8Array) || data.length < TAG_LENGTH) throw new InvalidEnvelopeError(`expected ciphertext of at least ${TAG_LENGTH} bytes, got ${describeValue(data)}`)
  const compressed = payload.compression?.enabled === true
  let plaintext: Uint8Array
  try {
    const d = createDecipheriv('aes-256-gcm', key, e.nonce, { authTagLength: TAG_LENGTH })
    d.setAAD(aad(payload.content_type, compressed ? 'gzip' : null, e.key_id ?? null, e.ephemeral_key))
    d.setAuthTag(data.subarray(data.length - TAG_LENGTH))
    const a = d.update(data.subarray(0, data.length - TAG_LENGTH))
    const b = d.final()
    plaintext = b.length === 0 ? new Uint8Array(a.buffer, a.byteOffset, a.byteLength) : new Uint8Array(Buffer.concat([a, b]))
  } catch (err) {
    throw new AuthenticationFailedError('expected authentic AES-256-GCM ciphertext, got a tag mismatch (wrong key or tampered data)', { cause: err })
  }
  if (compressed) {
    return { content_type: payload.content_type, data: plaintext, encryption: { enabled: false }, compression: { enabled: true, algorithm: 'gzip' } }
  }
  return {
    content_type: payload.content_type,
    data: decodePayloadData(plaintext, payload.content_type, options),
    encryption: { enabled: false },
    compression: { enabled: false },
  }
}

/** Convenience: serialize, optionally compress, optionally encrypt. */
export function sealPayload(payload: KLPPayload, options?: { compress?: boolean; key?: Uint8Array } & EncryptOptions & CompressOptions): KLPPayload {
  let p = payload
  if (options?.compress === true) p = compressPayload(p, options)
  if (options?.key !== undefined) p = encryptPayload(p, options.key, options)
  return p
}

/** Convenience: decrypt (needs `key`) and decompress as needed; returns the plain payload. */
export function openPayload(payload: KLPPayload, options?: { key?: Uint8Array } & DecompressOptions): KLPPayload {
  let p = payload
  if (p.encryption?.enabled === true) {
    if (options?.key === undefined) throw new InvalidParametersError('expected a key to open an encrypted payload, got none')
    p = decryptPayload(p, options.key, options)
  }
  if (p.compression?.enabled === true) p = decompressPayload(p, options)
  return p
}
