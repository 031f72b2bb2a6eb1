/**
 * DID syntax checks at the node's boundaries (CLI, control API, `trust()`, `connect()`, task
 * targets). They live in `@kos-mesh/agents` (the task service checks DID targets with them).
 */
export { checkDid, isValidDid, DID_SYNTAX } from '@kos-mesh/agents'
