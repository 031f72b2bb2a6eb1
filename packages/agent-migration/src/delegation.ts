/**
 * Delegations: the owner of an agent lets a node migrate it. A delegation is a signed object
 * (cose.ts) `{ v, kind: 'delegation', issuer, delegate, agent_id, actions, targets, redelegate,
 * issued_at, expires_at }`. A chain starts at the owner; each further link is issued by the
 * previous link's delegate, which must hold `redelegate`, and may only narrow: fewer actions,
 * fewer targets, the same agent, an earlier expiry. The last delegate is the node that acts.
 */
import type { KLPValue, Signer } from '@kos-mesh/interface'
import { arr, bool, did, int, obj, oneOf, str } from './check.js'
import { openObject, signObject } from './cose.js'
import { DelegationError, InvalidBundleError, MigrationExpiredError, OwnershipError } from './errors.js'
import { resolveMigrationLimits, type MigrationLimits } from './limits.js'
import { MIGRATION_TYPES, type Delegation, type MigrationType } from './types.js'

/** How far in the future an issued_at may be, ms. */
export const MAX_FUTURE_SKEW_MS = 5 * 60 * 1000
const FIELDS = ['v', 'kind', 'issuer', 'delegate', 'agent_id', 'actions', 'targets', 'redelegate', 'issued_at', 'expires_at'] as const

/**
 * Checks a decoded value as a {@link Delegation} body: exact fields, version 1, 1..4 distinct
 * actions, at most 64 target did:keys, did:key issuer and delegate, an agent id of 1..256 chars
 * (or `*`), integer times (ms since the Unix epoch) with `expires_at` after `issued_at`. Returns it
 * typed. Checks neither a signature nor the times against a clock (`openDelegation`,
 * `checkDelegationChain` do).
 *
 * @throws InvalidBundleError for any other shape.
 */
export function validateDelegation(v: unknown): Delegation {
  const o = obj(v, 'a delegation', FIELDS)
  if (o.v !== 1 || o.kind !== 'delegation') throw new InvalidBundleError('expected a delegation of version 1')
  const actions = arr(o.actions, 'actions', MIGRATION_TYPES.length).map((a) => oneOf(a, 'an action', MIGRATION_TYPES))
  if (actions.length === 0 || new Set(actions).size !== actions.length) throw new InvalidBundleError('expected 1..4 distinct actions')
  const targets = arr(o.targets, 'targets', 64).map((t) => did(t, 'a target'))
  const d: Delegation = {
    v: 1,
    kind: 'delegation',
    issuer: did(o.issuer, 'issuer'),
    delegate: did(o.delegate, 'delegate'),
    agent_id: str(o.agent_id, 'agent_id', 256, 1),
    actions,
    targets,
    redelegate: bool(o.redelegate, 'redelegate'),
    issued_at: int(o.issued_at, 'issued_at'),
    expires_at: int(o.expires_at, 'expires_at'),
  }
  if (d.expires_at <= d.issued_at) throw new InvalidBundleError(`expected expires_at after issued_at, got ${d.expires_at} <= ${d.issued_at}`)
  return d
}

/**
 * The fields of a delegation to sign with `signDelegation` (its version and kind are added). Times
 * are ms since the Unix epoch; the same bounds as `validateDelegation` apply.
 */
export type DelegationInit = Omit<Delegation, 'v' | 'kind'>

/** Signs a delegation; `signer` must be a key of `init.issuer`. */
export async function signDelegation(init: DelegationInit, signer: Signer): Promise<Uint8Array> {
  const d = validateDelegation({ v: 1, kind: 'delegation', ...init } as unknown as KLPValue)
  return signObject(d as unknown as KLPValue, signer, d.issuer)
}

/** Decodes and verifies one delegation (signature by its issuer). */
export function openDelegation(bytes: Uint8Array, limits?: Partial<MigrationLimits>): Delegation {
  const l = resolveMigrationLimits(limits)
  const o = openObject(bytes, l.maxSignedBytes, { maxDepth: 4, maxItems: 256, maxStringLength: 1024, maxBytesLength: 1024 })
  const d = validateDelegation(o.body)
  if (o.signer !== d.issuer) throw new InvalidBundleError(`expected a delegation signed by its issuer ${d.issuer}, got ${o.signer}`)
  return d
}

/**
 * What `checkDelegationChain` checks a chain against: the agent's owner, the node that acts, and
 * the agent, action and target of what it does, at a given time.
 */
export interface ChainCheck {
  /** The agent's owner DID: the chain must start with a link it issued. */
  owner: string
  /** The node that acts (signed the request). */
  actor: string
  /** The agent acted on (a link for `*` covers every agent of the owner). */
  agentId: string
  /** The migration type the actor performs. */
  action: MigrationType
  /** The DID of the target node. */
  target: string
  /** Now, ms since the Unix epoch (the checking node's clock): every link must be valid then. */
  now: number
}

/**
 * Checks that `actor` may do `action` on the agent towards `target`: the actor is the owner, or
 * the chain runs from the owner to the actor and covers it. Throws OwnershipError (chain from
 * someone else, or to someone else), DelegationError (a link widens its parent or does not cover
 * the action, agent or target), MigrationExpiredError (a link expired or is from the future),
 * InvalidBundleError / MigrationSignatureError for a bad link.
 */
export function checkDelegationChain(chain: readonly Uint8Array[], c: ChainCheck, limits?: Partial<MigrationLimits>): Delegation[] {
  const l = resolveMigrationLimits(limits)
  if (c.actor === c.owner) return []
  if (chain.length === 0) throw new OwnershipError(`expected ${c.actor} to be the owner ${c.owner} or to hold a delegation, got none`)
  if (chain.length > l.maxDelegations) throw new DelegationError(`expected at most ${l.maxDelegations} delegations, got ${chain.length}`)
  const links = chain.map((b) => openDelegation(b, l))
  let parent: Delegation | undefined
  for (const [i, d] of links.entries()) {
    if (i === 0 && d.issuer !== c.owner) throw new OwnershipError(`expected the chain to start at the owner ${c.owner}, got ${d.issuer}`)
    if (d.expires_at <= c.now) throw new MigrationExpiredError(`expected delegation ${i} valid at ${c.now}, got one that expired at ${d.expires_at}`)
    if (d.issued_at > c.now + MAX_FUTURE_SKEW_MS) throw new MigrationExpiredError(`expected delegation ${i} issued before ${c.now + MAX_FUTURE_SKEW_MS}, got ${d.issued_at}`)
    if (parent !== undefined) {
      if (d.issuer !== parent.delegate) throw new DelegationError(`expected link ${i} issued by ${parent.delegate}, got ${d.issuer}`)
      if (!parent.redelegate) throw new DelegationError(`expected link ${i - 1} to allow redelegation`)
      if (!d.actions.every((a) => parent!.actions.includes(a))) throw new DelegationError(`expected link ${i} to allow no action its parent does not`)
      if (parent.targets.length > 0 && (d.targets.length === 0 || !d.targets.every((t) => parent!.targets.includes(t)))) throw new DelegationError(`expected link ${i} to allow no target its parent does not`)
      if (parent.agent_id !== '*' && d.agent_id !== parent.agent_id) throw new DelegationError(`expected link ${i} for agent ${parent.agent_id}, got ${d.agent_id}`)
      if (d.expires_at > parent.expires_at) throw new DelegationError(`expected link ${i} to expire no later than its parent`)
    }
    parent = d
  }
  const last = links[links.length - 1] as Delegation
  if (last.delegate !== c.actor) throw new OwnershipError(`expected the chain to end at ${c.actor}, got ${last.delegate}`)
  if (last.agent_id !== '*' && last.agent_id !== c.agentId) throw new DelegationError(`expected a delegation for agent ${c.agentId}, got ${last.agent_id}`)
  if (!last.actions.includes(c.action)) throw new DelegationError(`expected a delegation allowing ${c.action}, got ${last.actions.join(',')}`)
  if (last.targets.length > 0 && !last.targets.includes(c.target)) throw new DelegationError(`expected a delegation allowing target ${c.target}`)
  return links
}
