/**
 * The default diversity group of a contact: the /24 (IPv4) or /48 (IPv6) prefix of its first tcp
 * address, else its first address's host, else its DID (a group of one).
 */
import type { Contact } from './types.js'

const SCHEME_RE = /^([a-z][a-z0-9+.-]{0,31}):\/\/([^/]+)/
const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

/**
 * The default diversity group of a contact: the /24 (IPv4) or /48 (IPv6) of its first tcp address, else its
 * first address's host, else its DID (a group of one).
 */
export function defaultGroupOf(contact: Contact): string {
  const addrs = contact.addrs
  let pick = addrs.find((a) => a.startsWith('tcp://'))
  pick ??= addrs[0]
  if (pick === undefined) return `did:${contact.did}`
  const m = SCHEME_RE.exec(pick)
  if (m === null) return `addr:${pick}`
  const hostPort = m[2] as string
  if (hostPort.startsWith('[')) {
    const end = hostPort.indexOf(']')
    const host = end < 0 ? hostPort.slice(1) : hostPort.slice(1, end)
    return `ip6:${ipv6Prefix48(host)}`
  }
  const colon = hostPort.lastIndexOf(':')
  const host = colon < 0 ? hostPort : hostPort.slice(0, colon)
  const v4 = IPV4_RE.exec(host)
  if (v4 !== null) return `ip4:${v4[1]}.${v4[2]}.${v4[3]}`
  if (host.includes(':')) return `ip6:${ipv6Prefix48(host)}`
  return `host:${host}`
}

function ipv6Prefix48(host: string): string {
  const [head = '', tail] = host.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const full = tail === undefined ? left : [...left, ...new Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return full.slice(0, 3).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')
}
