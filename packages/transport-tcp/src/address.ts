/**
 * `tcp://` addresses: parsing and formatting (exported), and the key a remote address is counted
 * under for the per-address limits (ipKey, internal).
 */
import { isIP, isIPv4, isIPv6 } from 'node:net'
import { InvalidAddressError } from '@kos-mesh/interface'

/** Longest address string accepted (host + port + DID). */
export const MAX_ADDRESS_LENGTH = 1024

/**
 * A parsed `tcp://` address, as {@link parseTcpAddress} returns it.
 */
export interface TcpAddress {
  /** Host name or IP address; an IPv6 address without its brackets (`::1`). */
  host: string
  /** TCP port, 0..65535 (0 only makes sense to `listen`: the OS picks a free port). */
  port: number
  /** The DID appended to the address (`tcp://host:port/did:key:...`), when present. */
  peer?: string
}

const RE = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^/:[\]\s]+):(\d{1,5})(?:\/(did:[a-z0-9]+:[^\s/]+))?\/?$/

/**
 * Parses `tcp://host:port` or `tcp://host:port/<did>`; IPv6 hosts go in brackets (`tcp://[::1]:4001`).
 *
 * @throws InvalidAddressError when `addr` is not a string, is longer than 1024
 * characters, does not match that form, has a bracketed host that is not IPv6, or a port outside 0..65535.
 */
export function parseTcpAddress(addr: string): TcpAddress {
  if (typeof addr !== 'string') {
    throw new InvalidAddressError(`expected a tcp:// address string, got ${typeof addr}`)
  }
  if (addr.length > MAX_ADDRESS_LENGTH) {
    throw new InvalidAddressError(`expected an address of at most ${MAX_ADDRESS_LENGTH} chars, got ${addr.length}`)
  }
  const m = RE.exec(addr)
  if (m === null) {
    throw new InvalidAddressError(`expected tcp://host:port[/did], got ${JSON.stringify(addr.slice(0, 80))}`)
  }
  let host = m[1] ?? ''
  if (host.startsWith('[')) {
    host = host.slice(1, -1)
    if (isIP(host) !== 6) throw new InvalidAddressError(`expected an IPv6 address in brackets, got [${host}]`)
  }
  const port = Number(m[2])
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidAddressError(`expected a port in 0..65535, got ${m[2] ?? ''}`)
  }
  const out: TcpAddress = { host, port }
  if (m[3] !== undefined) out.peer = m[3]
  return out
}

/** Formats a host and port as `tcp://host:port` (brackets around IPv6). */
export function formatTcpAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `tcp://[${host}]:${port}` : `tcp://${host}:${port}`
}

/**
 * The key remote addresses are counted under: the IPv4 address (IPv4-mapped IPv6 unwrapped), the /64
 * of an IPv6 address (one host usually owns a whole /64), or the lower-cased host name of a dial.
 */
export function ipKey(address: string | undefined): string {
  if (address === undefined || address === '') return '?'
  let a = address.toLowerCase()
  const zone = a.indexOf('%')
  if (zone >= 0) a = a.slice(0, zone)
  if (a.startsWith('::ffff:') && isIPv4(a.slice(7))) return a.slice(7)
  if (!isIPv6(a)) return a
  const gap = a.indexOf('::')
  const head = (gap >= 0 ? a.slice(0, gap) : a).split(':').filter((g) => g !== '')
  const tail = gap >= 0 ? a.slice(gap + 2).split(':').filter((g) => g !== '') : []
  const tailGroups = tail.length + (tail.length > 0 && (tail[tail.length - 1] as string).includes('.') ? 1 : 0)
  const groups = [...head, ...(Array(Math.max(0, 8 - head.length - tailGroups)).fill('0') as string[]), ...tail]
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`
}
