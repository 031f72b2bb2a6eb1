/**
 * @kos-mesh/interface: the data model of the kOS federated mesh spec, the contracts between
 * kos-mesh packages, and the shared error classes. Types only, plus tiny error classes and
 * `as const` enum objects; no runtime dependencies.
 *
 * @packageDocumentation
 */
export * from './model.js'
export * from './contracts.js'
export * from './errors.js'
