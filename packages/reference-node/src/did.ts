/**
 * DID syntax checks at the node's boundaries (CLI, control API, `trust()`, `connect()`, task
 * targets): did-security's, in one place for every package.
 */
export { checkDid, isValidDid, DID_SYNTAX } from '@kos-mesh/did-security'
