/**
 * DID syntax checks at the boundaries (the task service's targets, the reference node's CLI, control API,
 * `trust()` and `connect()` use the same ones): a did:key must be a valid Ed25519 did:key, any
 * other method must at least match the DID syntax of W3C DID Core (`did:<method>:<method-specific-id>`,
 * section 3.1).
 */
import { InvalidDidError } from './errors.js'
import { MAX_DID_LENGTH, publicKeyFromDidKey } from './did-key.js'

/**
 * W3C DID Core 3.1: `did = "did:" method-name ":" method-specific-id`, method-name = 1*(a-z / 0-9),
 * method-specific-id = *( *idchar ":" ) 1*idchar, idchar = ALPHA / DIGIT / "." / "-" / "_" /
 * pct-encoded. (No path, query or fragment: a DID, not a DID URL.)
 */
const IDCHAR = '(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})'
/** The DID syntax of W3C DID Core (`did:<method>:<method-specific-id>`), as a regular expression. */
export const DID_SYNTAX = new RegExp(`^did:[a-z0-9]+:(?:${IDCHAR}*:)*${IDCHAR}+$`)

/** True when `did` passes `checkDid`. */
export function isValidDid(did: unknown): did is string {
  try {
    checkDid(did)
    return true
  } catch {
    return false
  }
}

/** Throws did-security's InvalidDidError (ERR_INVALID_DID) unless `did` is a valid DID. */
export function checkDid(did: unknown, what = 'a DID'): asserts did is string {
  if (typeof did !== 'string') throw new InvalidDidError(`expected ${what}, got ${did === null ? 'null' : typeof did}`)
  if (did.length > MAX_DID_LENGTH) throw new InvalidDidError(`expected ${what} of at most ${MAX_DID_LENGTH} characters, got ${did.length}`)
  if (!DID_SYNTAX.test(did)) throw new InvalidDidError(`expected ${what} (did:<method>:<method-specific-id>, W3C DID syntax), got ${JSON.stringify(did.slice(0, 80))}`)
  if (did.startsWith('did:key:')) {
    try {
      publicKeyFromDidKey(did)
    } catch (err) {
      throw new InvalidDidError(`expected ${what === 'a DID' ? 'a valid did:key' : what} (an Ed25519 did:key:z6Mk...), got ${JSON.stringify(did.slice(0, 80))}: ${(err as Error).message}`, { cause: err })
    }
  }
}
