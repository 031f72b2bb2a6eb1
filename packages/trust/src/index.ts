/**
 * @kos-mesh/trust: the trust engine of a kos-mesh node. Signed attestations (TRUST_ATTESTATION),
 * reputation deltas (REPUTATION_DELTA) and revocations, scores personalised from this node's
 * anchors and propagated along attenuated chains of attestations, endorsements, decay, and the
 * service that spreads and serves statements over a MessageRouter. See docs/TRUST.md.
 */
export * from './types.js'
export * from './errors.js'
export { createTrustEngine } from './engine/index.js'
export { encodeStatementBody, statementId, validateStatementBody, signStatement, decodeStatement, verifyStatement, checkStatementTime, resolveStatementLimits, isStatementDid, isStatementId, STATEMENT_AAD, STATEMENT_ID_CODEC, STATEMENT_ID_HASH, MAX_KID_LENGTH, MAX_STATEMENT_BYTES, DEFAULT_MAX_FUTURE_SKEW_MS, DEFAULT_MAX_LIFETIME_MS, DELTA_WINDOWS_MS, MAX_DELTA_COUNT, MAX_STATEMENT_DID_LENGTH, MAX_STATEMENT_NAME_LENGTH, MAX_REASON_LENGTH, MAX_LEVEL, type DecodedStatement, type SignStatementOptions, type VerifyStatementOptions, type ResolvedStatementLimits } from './statement.js'
export * from './policy.js'
export * from './static.js'
export * from './pins.js'
export { trustService, type TrustServiceMetrics } from './service.js'
export * from './protocol.js'
export { statementStore, DEFAULT_STORE_PREFIX, type StatementStore } from './persist.js'
