import { mulberry32 } from '@kos-mesh/interface'
import { kadIdOf, randomIdInBucket } from '../src/kad/index.js'
import type { Contact, KadId } from '../src/kad/index.js'

/** A contact whose id is sha256 of its DID. */
export function contact(name: string, ip = '10.0.0.1'): Contact {
  const did = `did:key:zTest${name}`
  return { id: kadIdOf(did), did, addrs: [`tcp://${ip}:4001`] }
}

/** A contact with a chosen id (for table tests: the table does not check the DID binding). */
export function contactWithId(id: KadId, name: string, ip: string): Contact {
  return { id, did: `did:key:zFake${name}`, addrs: [`tcp://${ip}:4001`] }
}

let ipSeq = 0
/** A distinct /24 each call. */
export function freshIp(): string {
  ipSeq++
  return `10.${(ipSeq >> 8) & 255}.${ipSeq & 255}.7`
}

/** `count` contacts in bucket `cpl` of `self`, each from its own /24. */
export function inBucket(self: KadId, cpl: number, count: number, seed = 1, ip?: () => string): Contact[] {
  const rnd = mulberry32(seed)
  return Array.from({ length: count }, (_, i) => contactWithId(randomIdInBucket(self, cpl, rnd), `${cpl}-${seed}-${i}`, ip?.() ?? freshIp()))
}

export function randomId(rnd: () => number): KadId {
  return Uint8Array.from({ length: 32 }, () => Math.floor(rnd() * 256))
}
