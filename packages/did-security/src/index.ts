/**
 * @kos-mesh/did-security: did:key identities, one Ed25519 verification rule on two backends
 * (node:crypto and noble), X25519 / HKDF / AES-256-GCM, sealed payloads, an authenticated sans-I/O
 * secure channel and an encrypted keystore.
 *
 * @packageDocumentation
 */
export * from './errors.js'
export { type BackendName, type CryptoBackend, type AeadKey, getBackend, nativeBackend, nobleBackend } from './backend.js'
export { SMALL_ORDER_ENCODINGS, checkPublicKey, checkSignatureEncoding, isCanonicalPointEncoding, isCanonicalScalar, isSmallOrderEncoding } from './rule.js'
export { didKeyFromPublicKey, publicKeyFromDidKey, isValidEd25519PublicKey, keyIdFromDid, x25519FromEd25519PublicKey, x25519KeyFingerprint, didKeyDocument, MAX_DID_LENGTH } from './did-key.js'
export { type Identity, type IdentityOptions, generateIdentity, identityFromSeed } from './identity.js'
export { type DidResolverInit, type MeshDidResolver, createDidResolver, toDocumentView } from './resolver.js'
export { type VerifyOptions, type SignatureVerifierInit, type MeshSignatureVerifier, ed25519Verify, createVerifier, createSignatureVerifier } from './verifier.js'
export { x25519, hkdfSha256, aesGcmEncrypt, aesGcmDecrypt, type PrimitiveOptions } from './primitives.js'
export {
  type SecureSession, type SessionOptions, type HandshakeOptions, type HandshakeRole, type Handshake, type HandshakeStep, type HandshakeIO,
  performHandshake, createHandshake, CHANNEL_PROTOCOL, RECORD_OVERHEAD, MAX_HANDSHAKE_MESSAGE,
} from './channel.js'
export {
  type SealRecipient, type SealOptions, type SealKeyMaterial, type SealedPayload, type OpenOptions,
  seal, open, sealKey, openKey, resolveSealRecipient,
} from './sealed.js'
export {
  type ScryptParams, type SaveKeystoreOptions, type LoadKeystoreOptions,
  saveKeystore, loadKeystore, parseKeystore, KEYSTORE_FORMAT, KEYSTORE_VERSION, MAX_KEYSTORE_BYTES,
} from './keystore.js'
export { sealPayloadTo, openSealedPayload, type SealPayloadOptions, type OpenSealedPayloadOptions } from './sealed-payload.js'
export { checkDid, isValidDid, DID_SYNTAX } from './did-syntax.js'
