/**
 * The node identity at rest: a versioned JSON file holding the Ed25519 seed encrypted with
 * AES-256-GCM under a key derived by scrypt (parameters stored in the file). The public header is
 * authenticated as AAD, so a changed DID or KDF parameter fails like a wrong passphrase. Writes go to a
 * temporary file in the same directory, are fsynced, renamed over the target, and the directory fsynced:
 * a crash leaves the old file or the new one, never a partial one.
 */
import { randomBytes, scrypt as scryptCb } from 'node:crypto'
import { open as fsOpen, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { AbortError, InvalidParametersError, throwIfAborted, type AbortOptions } from '@kos-mesh/interface'
import { getBackend, type BackendName } from './backend.js'
import { identityFromSeed, type Identity } from './identity.js'
import { utf8, toBase64Url, fromBase64Url } from './bytes.js'
import { KeystoreFormatError, KeystoreNotFoundError, KeystorePassphraseError } from './errors.js'

/** The `format` field of a keystore file. */
export const KEYSTORE_FORMAT = 'kos-mesh-keystore'
/** The keystore file version written; other versions are refused. */
export const KEYSTORE_VERSION = 1
/** Files larger than this are refused before parsing. */
export const MAX_KEYSTORE_BYTES = 64 * 1024

/** Smallest scrypt N accepted (2^10). */
export const MIN_SCRYPT_N = 2 ** 10
/** Largest scrypt N accepted (2^20). */
export const MAX_SCRYPT_N = 2 ** 20
/** Largest scrypt block size r accepted. */
export const MAX_SCRYPT_R = 32
/** Largest scrypt parallelism p accepted. */
export const MAX_SCRYPT_P = 16
/**
 * Largest scrypt cost accepted, as the bytes 128 * N * r * p (256 MiB, twice the default's
 * 128 MiB). It bounds the memory (128 * N * r) and the time (proportional to N * r * p) that a
 * keystore file can make a load spend before the passphrase is even checked.
 */
export const MAX_SCRYPT_COST_BYTES = 256 * 1024 * 1024

/** scrypt parameters that derive the keystore's encryption key from the passphrase. */
export interface ScryptParams {
  /**
   * CPU/memory cost, a power of two. Default: 2^17 (128 MiB with r = 8). Accepted (save and
   * load): 2^10..2^20, and 128 * N * r * p <= 256 MiB (`MAX_SCRYPT_COST_BYTES`).
   */
  N?: number
  /** Block size. Default 8; accepted 1..32 (within the cost bound). */
  r?: number
  /** Parallelism. Default 1; accepted 1..16 (within the cost bound). */
  p?: number
}

/** Options of saving an identity to an encrypted keystore: `kdf`, the scrypt parameters (defaults as ScryptParams says). */
export interface SaveKeystoreOptions extends AbortOptions {
  kdf?: ScryptParams
}

/** Options of loading an identity from an encrypted keystore. */
export interface LoadKeystoreOptions extends AbortOptions {
  /** Backend of the returned identity. Default: `'native'`. */
  backend?: BackendName
}

interface KeystoreFile {
  format: string
  version: number
  did: string
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string }
  cipher: { name: 'AES-256-GCM'; nonce: string }
  ciphertext: string
}

function passphraseBytes(passphrase: string | Uint8Array): Uint8Array {
  if (typeof passphrase === 'string') return utf8.encode(passphrase.normalize('NFKC'))
  if (passphrase instanceof Uint8Array) return passphrase
  throw new InvalidParametersError(`expected a passphrase string or Uint8Array, got ${typeof passphrase}`)
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v)
const show = (v: unknown): string => (typeof v === 'number' ? String(v) : typeof v === 'string' ? JSON.stringify(v.slice(0, 20)) : typeof v)

/**
 * Checks scrypt parameters against the bounds above, before any KDF runs: a hostile keystore file
 * cannot make a load spend gigabytes or minutes. `Err` is the error class to throw (the message
 * names the bound: "expected scrypt N <= ..., got ...").
 */
function checkParams(N: unknown, r: unknown, p: unknown, Err: new (m: string) => Error): { N: number; r: number; p: number } {
  if (!isInt(N) || N < MIN_SCRYPT_N || N > MAX_SCRYPT_N || (N & (N - 1)) !== 0) {
    throw new Err(`expected scrypt N a power of two with ${MIN_SCRYPT_N} (2^10) <= N <= ${MAX_SCRYPT_N} (2^20), got ${show(N)}`)
  }
  if (!isInt(r) || r < 1 || r > MAX_SCRYPT_R) throw new Err(`expected scrypt r an integer with 1 <= r <= ${MAX_SCRYPT_R}, got ${show(r)}`)
  if (!isInt(p) || p < 1 || p > MAX_SCRYPT_P) throw new Err(`expected scrypt p an integer with 1 <= p <= ${MAX_SCRYPT_P}, got ${show(p)}`)
  const cost = 128 * N * r * p
  if (cost > MAX_SCRYPT_COST_BYTES) {
    throw new Err(`expected scrypt 128 * N * r * p <= ${MAX_SCRYPT_COST_BYTES} bytes (256 MiB), got ${cost} (N=${N} r=${r} p=${p})`)
  }
  return { N, r, p }
}

function deriveKey(pass: Uint8Array, salt: Uint8Array, N: number, r: number, p: number, signal?: AbortSignal): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    throwIfAborted(signal)
    scryptCb(pass, salt, 32, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => {
      if (err !== null) reject(err)
      else if (signal?.aborted === true) reject(new AbortError(undefined, { cause: signal.reason }))
      else resolve(new Uint8Array(key))
    })
  })
}

function headerAad(f: Omit<KeystoreFile, 'ciphertext'>): Uint8Array {
  return utf8.encode(JSON.stringify([f.format, f.version, f.did, f.kdf.name, f.kdf.N, f.kdf.r, f.kdf.p, f.kdf.salt, f.cipher.name, f.cipher.nonce]))
}

/** Encrypts `identity` under `passphrase` and writes it atomically to `path` (mode 0600). */
export async function saveKeystore(path: string, identity: Identity, passphrase: string | Uint8Array, options: SaveKeystoreOptions = {}): Promise<void> {
  const { N, r, p } = checkParams(options.kdf?.N ?? 2 ** 17, options.kdf?.r ?? 8, options.kdf?.p ?? 1, InvalidParametersError)
  const salt = new Uint8Array(randomBytes(16))
  const nonce = new Uint8Array(randomBytes(12))
  const key = await deriveKey(passphraseBytes(passphrase), salt, N, r, p, options.signal)
  const header: Omit<KeystoreFile, 'ciphertext'> = {
    format: KEYSTORE_FORMAT,
    version: KEYSTORE_VERSION,
    did: identity.did,
    kdf: { name: 'scrypt', N, r, p, salt: toBase64Url(salt) },
    cipher: { name: 'AES-256-GCM', nonce: toBase64Url(nonce) },
  }
  const seed = identity.exportSeed()
  const ct = getBackend('native').aead(key).seal(nonce, seed, headerAad(header))
  seed.fill(0); key.fill(0)
  const body = utf8.encode(`${JSON.stringify({ ...header, ciphertext: toBase64Url(ct) }, null, 2)}\n`)
  throwIfAborted(options.signal)
  const dir = dirname(path)
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${toBase64Url(randomBytes(6))}.tmp`)
  const fh = await fsOpen(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(body)
    await fh.sync()
  } catch (err) {
    await fh.close().catch(() => {})
    await unlink(tmp).catch(() => {})
    throw err
  }
  await fh.close()
  try {
    await rename(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
  try {
    const dh = await fsOpen(dir, 'r')
    try { await dh.sync() } finally { await dh.close() }
  } catch { /* directory fsync is not supported everywhere (e.g. Windows) */ }
}

/** Parses a keystore file's public header (no passphrase needed). Throws KeystoreFormatError. */
export function parseKeystore(bytes: Uint8Array | string): KeystoreFile {
  const text = typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes)
  if (text.length > MAX_KEYSTORE_BYTES) throw new KeystoreFormatError(`expected a keystore of at most ${MAX_KEYSTORE_BYTES} bytes, got ${text.length}`)
  let f: any
  try { f = JSON.parse(text) } catch (err) { throw new KeystoreFormatError('expected a JSON keystore file, got unparseable bytes', { cause: err }) }
  if (f === null || typeof f !== 'object' || f.format !== KEYSTORE_FORMAT) throw new KeystoreFormatError(`expected format "${KEYSTORE_FORMAT}"`)
  if (f.version !== KEYSTORE_VERSION) throw new KeystoreFormatError(`expected keystore version ${KEYSTORE_VERSION}, got ${String(f.version)}`)
  if (typeof f.did !== 'string' || f.kdf?.name !== 'scrypt' || typeof f.kdf.salt !== 'string' || f.cipher?.name !== 'AES-256-GCM' ||
    typeof f.cipher.nonce !== 'string' || typeof f.ciphertext !== 'string') {
    throw new KeystoreFormatError('expected did, kdf (scrypt), cipher (AES-256-GCM) and ciphertext fields')
  }
  checkParams(f.kdf.N, f.kdf.r, f.kdf.p, KeystoreFormatError)
  if (fromBase64Url(f.cipher.nonce).length !== 12) throw new KeystoreFormatError('expected a 12-byte nonce')
  if (fromBase64Url(f.kdf.salt).length < 16) throw new KeystoreFormatError('expected a salt of at least 16 bytes')
  if (fromBase64Url(f.ciphertext).length !== 48) throw new KeystoreFormatError('expected 48 bytes of ciphertext (seed + tag)')
  return f as KeystoreFile
}

/**
 * Reads and decrypts a keystore. Throws KeystoreNotFoundError (no file at `path`), KeystoreFormatError
 * (also for a directory or another non-regular file at `path`, and for KDF parameters beyond the
 * bounds, checked before the KDF runs) or KeystorePassphraseError; other fs errors (EACCES...) as-is.
 */
export async function loadKeystore(path: string, passphrase: string | Uint8Array, options: LoadKeystoreOptions = {}): Promise<Identity> {
  throwIfAborted(options.signal)
  let fh: Awaited<ReturnType<typeof fsOpen>>
  try {
    fh = await fsOpen(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException)?.code === 'ENOENT') throw new KeystoreNotFoundError(`expected a keystore file at ${path}, got none`, { cause: err })
    throw err
  }
  let bytes: Uint8Array
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new KeystoreFormatError(`expected a keystore file at ${path}, got ${st.isDirectory() ? 'a directory' : 'something that is not a regular file'}`)
    const { size } = st
    if (size > MAX_KEYSTORE_BYTES) throw new KeystoreFormatError(`expected a keystore of at most ${MAX_KEYSTORE_BYTES} bytes, got ${size}`)
    bytes = await readFile(fh)
  } finally { await fh.close() }
  const f = parseKeystore(bytes)
  const key = await deriveKey(passphraseBytes(passphrase), fromBase64Url(f.kdf.salt), f.kdf.N, f.kdf.r, f.kdf.p, options.signal)
  let seed: Uint8Array
  try {
    seed = getBackend('native').aead(key).open(fromBase64Url(f.cipher.nonce), fromBase64Url(f.ciphertext), headerAad(f))
  } catch (err) {
    throw new KeystorePassphraseError('could not decrypt the keystore: wrong passphrase or damaged file', { cause: err })
  } finally { key.fill(0) }
  const identity = identityFromSeed(seed, { backend: options.backend ?? 'native' })
  seed.fill(0)
  if (identity.did !== f.did) throw new KeystoreFormatError(`expected the key of ${f.did}, got the key of ${identity.did}`)
  return identity
}
