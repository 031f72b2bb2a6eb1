/** Kept for the package's own tests: the testnet lives in `./testnet/index.ts` (subpath `@kos-mesh/klp-router/testnet`). */
export * from './testnet/index.js'
