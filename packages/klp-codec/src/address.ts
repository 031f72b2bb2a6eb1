/**
 * klp:// addresses: `klp://authority/path?query#fragment`.
 *
 * Grammar (a strict subset of RFC 3986, ASCII only):
 *   address   = "klp://" authority [ path ] [ "?" query ] [ "#" fragment ]
 *   authority = label *( "." label )            ; lower-case, <= 253 chars
 *   label     = [a-z0-9] [ *61( [a-z0-9-] ) [a-z0-9] ]   ; <= 63 chars
 *   path      = 1*( "/" segment ) [ "/" ] / "/"  ; no empty, "." or ".." segments
 *   segment   = 1*pchar
 *   query     = *( pchar / "/" / "?" )
 *   fragment  = *( pchar / "/" / "?" )
 *   pchar     = unreserved / pct-encoded / sub-delims / ":" / "@"
 * The only normalisation is an absent path, which parses as "/" (so `klp://node.kai` formats
 * as `klp://node.kai/`). Every other valid string round-trips exactly.
 */
import { InvalidAddressError } from '@kos-mesh/interface'
import type { KLPAddress } from '@kos-mesh/interface'

/** Longest accepted address string. */
export const MAX_ADDRESS_LENGTH = 2048
/** Longest accepted authority. */
export const MAX_AUTHORITY_LENGTH = 253

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const AUTHORITY_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`)
const PCHAR = "(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
const SEGMENT_RE = new RegExp(`^${PCHAR}+$`)
const QUERY_RE = new RegExp(`^(?:${PCHAR}|[/?])*$`)
const PREFIX = 'klp://'

function fail(input: unknown, why: string): never {
  const shown = typeof input === 'string' ? JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}...` : input) : typeof input
  throw new InvalidAddressError(`invalid klp address ${shown}: ${why}`)
}

function checkAuthority(input: unknown, authority: string): void {
  if (authority.length === 0) fail(input, 'expected a non-empty authority')
  if (authority.length > MAX_AUTHORITY_LENGTH) fail(input, `expected an authority of at most ${MAX_AUTHORITY_LENGTH} chars, got ${authority.length}`)
  if (!AUTHORITY_RE.test(authority)) fail(input, 'expected lower-case dot-separated labels [a-z0-9-] of 1..63 chars in the authority')
}

function checkPath(input: unknown, path: string): void {
  if (path.length === 0 || path.charCodeAt(0) !== 0x2f) fail(input, 'expected the path to start with "/"')
  if (path.length === 1) return
  const end = path.endsWith('/') ? path.length - 1 : path.length
  const segments = path.slice(1, end).split('/')
  for (const seg of segments) {
    if (seg.length === 0) fail(input, 'expected no empty path segment ("//")')
    if (seg === '.' || seg === '..') fail(input, 'expected no "." or ".." path segment')
    if (!SEGMENT_RE.test(seg)) fail(input, 'expected path characters from RFC 3986 pchar (percent-encode others)')
  }
}

function checkQuery(input: unknown, part: string, what: string): void {
  if (!QUERY_RE.test(part)) fail(input, `expected ${what} characters from RFC 3986 pchar, "/" or "?"`)
}

/**
 * Parses a `klp://` address. Throws `InvalidAddressError` on anything malformed or too long.
 * With `strict`, an absent path is rejected too, so `formatAddress(parseAddress(s)) === s` always.
 */
export function parseAddress(s: string, options?: { strict?: boolean }): KLPAddress {
  if (typeof s !== 'string') fail(s, `expected a string, got ${s === null ? 'null' : typeof s}`)
  if (s.length > MAX_ADDRESS_LENGTH) fail(s, `expected at most ${MAX_ADDRESS_LENGTH} chars, got ${s.length}`)
  if (!s.startsWith(PREFIX)) fail(s, 'expected the scheme "klp://"')
  let rest = s.slice(PREFIX.length)
  let fragment: string | undefined
  const hash = rest.indexOf('#')
  if (hash !== -1) {
    fragment = rest.slice(hash + 1)
    rest = rest.slice(0, hash)
    checkQuery(s, fragment, 'fragment')
  }
  let query: string | undefined
  const q = rest.indexOf('?')
  if (q !== -1) {
    query = rest.slice(q + 1)
    rest = rest.slice(0, q)
    checkQuery(s, query, 'query')
  }
  const slash = rest.indexOf('/')
  const authority = slash === -1 ? rest : rest.slice(0, slash)
  let path = slash === -1 ? '' : rest.slice(slash)
  checkAuthority(s, authority)
  if (path === '') {
    if (options?.strict === true) fail(s, 'expected a path (at least "/")')
    path = '/'
  }
  checkPath(s, path)
  const out: KLPAddress = { scheme: 'klp', authority, path }
  if (query !== undefined) out.query = query
  if (fragment !== undefined) out.fragment = fragment
  return out
}

/** Formats an address; validates every part and throws `InvalidAddressError` when one is invalid. */
export function formatAddress(a: KLPAddress): string {
  if (a === null || typeof a !== 'object') fail(a, `expected a KLPAddress object, got ${a === null ? 'null' : typeof a}`)
  if (a.scheme !== 'klp') fail(a, `expected scheme "klp", got ${String(a.scheme)}`)
  if (typeof a.authority !== 'string') fail(a, 'expected a string authority')
  if (typeof a.path !== 'string') fail(a, 'expected a string path')
  checkAuthority(a.authority, a.authority)
  checkPath(a.path, a.path)
  let s = PREFIX + a.authority + a.path
  if (a.query !== undefined) {
    if (typeof a.query !== 'string') fail(a, 'expected a string query')
    checkQuery(a.query, a.query, 'query')
    s += '?' + a.query
  }
  if (a.fragment !== undefined) {
    if (typeof a.fragment !== 'string') fail(a, 'expected a string fragment')
    checkQuery(a.fragment, a.fragment, 'fragment')
    s += '#' + a.fragment
  }
  if (s.length > MAX_ADDRESS_LENGTH) fail(s, `expected at most ${MAX_ADDRESS_LENGTH} chars, got ${s.length}`)
  return s
}

/** True when `parseAddress(s)` would succeed. */
export function isValidAddress(s: string): boolean {
  try {
    parseAddress(s)
    return true
  } catch {
    return false
  }
}

/** Accepts a KLPAddress or a string and returns a validated KLPAddress copy. */
export function toAddress(a: KLPAddress | string): KLPAddress {
  return typeof a === 'string' ? parseAddress(a) : parseAddress(formatAddress(a))
}
