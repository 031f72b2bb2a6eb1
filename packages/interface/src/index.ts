/**
 * @kos-mesh/interface: the data model of the kOS federated mesh spec, the contracts between
 * kos-mesh packages (the MessageRouter that protocol services plug into, the Clock with timers,
 * transports, stores), and the shared error classes. Types, plus tiny error classes, `as const`
 * enum objects and the real clock (`systemClock`); no runtime dependencies.
 *
 * @packageDocumentation
 */
export * from './model.js'
export * from './contracts.js'
export * from './errors.js'
export * from './clock.js'
export * from './util.js'
export * from './write-turns.js'
export * from './router.js'
