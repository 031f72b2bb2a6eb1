/** Signature verification under the one kos-mesh rule (see rule.ts), on either backend. */
import type { AbortOptions, KeyResolver, SignatureVerifier, Verifier } from '@kos-mesh/interface'
import { getBackend, type BackendName } from './backend.js'
import { checkPublicKey, checkSignatureEncoding } from './rule.js'
import { createDidResolver } from './resolver.js'
import { UnknownKeyError } from '@kos-mesh/interface'

/** Options of verifying a signature. */
export interface VerifyOptions {
  /** Default: `'native'`. Both backends give the same answer for every input. */
  backend?: BackendName
}

/**
 * Verifies an Ed25519 signature under the kos-mesh rule: canonical A and R, S < L, A and R not of small
 * order, cofactorless equation. Never throws for bad input; returns false.
 */
export function ed25519Verify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array, options: VerifyOptions = {}): boolean {
  if (!(publicKey instanceof Uint8Array) || !(signature instanceof Uint8Array) || !(data instanceof Uint8Array)) return false
  if (!checkPublicKey(publicKey) || !checkSignatureEncoding(signature)) return false
  return getBackend(options.backend).ed25519Equation(publicKey, data, signature)
}

/** A `Verifier` (interface contract) applying the rule. */
export function createVerifier(options: VerifyOptions = {}): Verifier {
  const backend = options.backend ?? 'native'
  return {
    algorithm: 'Ed25519',
    verify: (publicKey, data, signature) => ed25519Verify(publicKey, data, signature, { backend }),
  }
}

/** Options of `createSignatureVerifier`: the key resolver and the backend. */
export interface SignatureVerifierInit extends VerifyOptions {
  /** Resolves key ids. Default: `createDidResolver()` (did:key, cached). */
  resolver?: KeyResolver
}

/**
 * A signature verifier usable both as the codec's SignatureVerifier (by key id) and as a Verifier (by
 * public key).
 */
export interface MeshSignatureVerifier extends SignatureVerifier, Verifier {}

/**
 * `SignatureVerifier` for the codec and router: resolves the key id, then applies the rule. Returns
 * false for a bad signature; throws UnknownKeyError (or a subclass) when the key cannot be resolved.
 */
export function createSignatureVerifier(init: SignatureVerifierInit = {}): MeshSignatureVerifier {
  const backend = init.backend ?? 'native'
  const resolver = init.resolver ?? createDidResolver()
  return {
    algorithm: 'Ed25519',
    verify: (publicKey, data, signature) => ed25519Verify(publicKey, data, signature, { backend }),
    async verifySignature(keyId: string, data: Uint8Array, signature: Uint8Array, options?: AbortOptions): Promise<boolean> {
      let key: Uint8Array
      try {
        key = await resolver.resolveKey(keyId, options)
      } catch (err) {
        if (err instanceof UnknownKeyError || (err instanceof Error && err.name === 'AbortError')) throw err
        throw new UnknownKeyError(`could not resolve key ${String(keyId).slice(0, 80)}`, { cause: err })
      }
      return ed25519Verify(key, data, signature, { backend })
    },
  }
}
