/**
 * @kos-mesh/trust: the trust engine of a kos-mesh node. Signed attestations (TRUST_ATTESTATION),
 * reputation deltas (REPUTATION_DELTA) and revocations, scores personalised from this node's
 * anchors and propagated along attenuated chains of attestations, endorsements, decay, and the
 * service that spreads and serves statements over a MessageRouter. See docs/TRUST.md.
 */
export * from './types.js'
export * from './errors.js'
