/**
 * @kos-mesh/interface-compliance-tests: shared vitest suites that every implementation of a
 * kos-mesh contract runs, so that a third-party implementation can prove itself the same way.
 *
 * @packageDocumentation
 */
export { transportCompliance } from './transport.js'
export type { TransportPair, TransportComplianceOptions, OutboundLimits } from './transport.js'
export { storeCompliance } from './store.js'
export type { StoreUnderTest, StoreComplianceOptions } from './store.js'
export { bytesEqual, frameOf, seqOf, readN, collect, stalled, withTimeout, waitFor, isErrorOf, expectError } from './util.js'
export { ManualClock } from './clock.js'
export { runReadmeExample } from './readme.js'
export type { ReadmeExampleOptions } from './readme.js'
