import { InvalidAddressError } from '@kos-mesh/interface'

export const MEMORY_PREFIX = 'memory://'
/** Longest accepted address, in characters. */
export const MAX_ADDRESS_LENGTH = 1024
const NAME_RE = /^[A-Za-z0-9._~:@+-]*$/

/** A parsed `memory://` address. */
export interface MemoryAddress {
  /** The listener name (empty when the caller asks for an automatic one). */
  name: string
  /** The expected remote DID appended as `memory://name/did:...`, if any. */
  peer?: string
}

/**
 * Parses `memory://<name>` or `memory://<name>/<did>`. Names use `[A-Za-z0-9._~:@+-]`; names that
 * start with `~` are reserved for the ephemeral addresses of dialers.
 */
export function parseMemoryAddress(addr: string): MemoryAddress {
  if (typeof addr !== 'string') throw new InvalidAddressError(`expected a memory:// address string, got ${typeof addr}`)
  if (addr.length > MAX_ADDRESS_LENGTH) throw new InvalidAddressError(`expected an address of at most ${MAX_ADDRESS_LENGTH} characters, got ${addr.length}`)
  if (!addr.startsWith(MEMORY_PREFIX)) throw new InvalidAddressError(`expected an address starting with memory://, got "${addr.slice(0, 32)}"`)
  const rest = addr.slice(MEMORY_PREFIX.length)
  const slash = rest.indexOf('/')
  const name = slash === -1 ? rest : rest.slice(0, slash)
  const peer = slash === -1 ? undefined : rest.slice(slash + 1)
  if (!NAME_RE.test(name)) throw new InvalidAddressError(`expected a name of [A-Za-z0-9._~:@+-], got "${name.slice(0, 64)}"`)
  if (peer !== undefined) {
    if (!peer.startsWith('did:') || peer.includes('/')) throw new InvalidAddressError(`expected "/did:..." after the name, got "/${peer.slice(0, 64)}"`)
    return { name, peer }
  }
  return { name }
}

/** The address `memory://<name>` of a listener name (the inverse of `parseMemoryAddress` without a DID). */
export function formatMemoryAddress(name: string): string {
  return MEMORY_PREFIX + name
}
