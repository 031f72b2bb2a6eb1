/**
 * Where kos-mesh things live in libp2p's kad-dht: node records under `/kos/<PeerId>` (a record
 * namespace of our own, with our validator and selector), capability providers on the CID of
 * `capability:<name>` (CIDv1, raw codec, sha256 of the UTF-8 name: the same 32-byte digest as
 * peer-discovery's own DHT provider key, sha256(name)).
 */
import { createHash } from 'node:crypto'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { InvalidDhtKeyError } from './errors.js'
import { peerIdFromDid } from '../peer-id.js'

/** The kad-dht record namespace of node records (`/kos/<PeerId>`); the validator/selector key. */
export const KOS_DHT_NAMESPACE = 'kos'
/** The provider name every node that publishes its record also provides (`findPeers({})`). */
export const KOS_NODE_PROVIDER_NAME = 'mesh:node'

const RAW_CODEC = 0x55
const SHA2_256 = 0x12
const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

/** `/kos/<PeerId>` as bytes, from a PeerId, a PeerId string or an Ed25519 did:key. */
export function nodeRecordKey(peer: PeerId | string, namespace = KOS_DHT_NAMESPACE): Uint8Array {
  const id = typeof peer === 'string' ? (peer.startsWith('did:') ? peerIdFromDid(peer) : peerIdFromString(peer)) : peer
  return enc.encode(`/${namespace}/${id.toString()}`)
}

/** The PeerId string a node record key names; InvalidDhtKeyError unless `/<namespace>/<PeerId>`. */
export function peerIdOfRecordKey(key: Uint8Array, namespace = KOS_DHT_NAMESPACE): string {
  let s: string
  try {
    s = dec.decode(key)
  } catch (err) {
    throw new InvalidDhtKeyError('expected a UTF-8 record key, got other bytes', { cause: err })
  }
  const prefix = `/${namespace}/`
  const rest = s.startsWith(prefix) ? s.slice(prefix.length) : undefined
  if (rest === undefined || rest.length === 0 || rest.length > 128 || rest.includes('/')) {
    throw new InvalidDhtKeyError(`expected a key ${prefix}<PeerId>, got ${JSON.stringify(s.slice(0, 80))}`)
  }
  try {
    const id = peerIdFromString(rest)
    if (id.type !== 'Ed25519') throw new Error(`a ${id.type} PeerId`)
    return id.toString()
  } catch (err) {
    throw new InvalidDhtKeyError(`expected an Ed25519 PeerId in the key, got ${JSON.stringify(rest.slice(0, 80))}`, { cause: err })
  }
}

/** The CID of a provider name (`capability:vector_storage`): CIDv1 raw, sha256(name). */
export function providerCid(name: string): CID {
  const digest = createHash('sha256').update(enc.encode(name)).digest()
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256, new Uint8Array(digest)))
}

/** The CID of a capability (`vector_storage` -> CID of `capability:vector_storage`). */
export function capabilityCid(capability: string): CID {
  return providerCid(`capability:${capability}`)
}
