/**
 * One identity: the node's Ed25519 key is both its did:key and its libp2p PeerId. A did:key of an
 * Ed25519 key and the PeerId of the same key (identity multihash of its protobuf encoding,
 * `12D3KooW...`) convert both ways without loss.
 */
import { didKeyFromPublicKey, publicKeyFromDidKey, type Identity } from '@kos-mesh/did-security'
import { privateKeyFromRaw, publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { Ed25519PeerId, PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { PeerIdConversionError } from './errors.js'

/** The libp2p PeerId of an Ed25519 did:key (a DID URL's fragment is ignored). */
export function peerIdFromDid(did: string): Ed25519PeerId {
  let raw: Uint8Array
  try {
    raw = publicKeyFromDidKey(did)
  } catch (err) {
    throw new PeerIdConversionError(`expected an Ed25519 did:key, got ${JSON.stringify(String(did).slice(0, 80))}`, { cause: err })
  }
  const key = publicKeyFromRaw(raw)
  if (key.type !== 'Ed25519') throw new PeerIdConversionError(`expected an Ed25519 key in the DID, got ${key.type}`)
  return peerIdFromPublicKey(key)
}

/** The did:key of a PeerId (object or string) that embeds an Ed25519 key. */
export function didFromPeerId(peerId: PeerId | string): string {
  let id: PeerId
  try {
    id = typeof peerId === 'string' ? peerIdFromString(peerId) : peerId
  } catch (err) {
    throw new PeerIdConversionError(`expected a libp2p PeerId, got ${JSON.stringify(String(peerId).slice(0, 80))}`, { cause: err })
  }
  if (id?.type !== 'Ed25519' || id.publicKey === undefined) {
    throw new PeerIdConversionError(`expected an Ed25519 PeerId (12D3KooW...), got a ${String(id?.type)} PeerId`)
  }
  try {
    return didKeyFromPublicKey(id.publicKey.raw)
  } catch (err) {
    throw new PeerIdConversionError(`expected a valid Ed25519 public key in the PeerId, got ${id.toString()}`, { cause: err })
  }
}

/** The libp2p private key of a did-security identity (the same Ed25519 key: PeerId <-> DID). */
export function privateKeyFromIdentity(identity: Identity): PrivateKey {
  const seed = identity.exportSeed()
  const raw = new Uint8Array(64)
  raw.set(seed, 0)
  raw.set(identity.publicKey, 32)
  seed.fill(0)
  // the key keeps views of `raw` (seed | public key): it must not be wiped here
  return privateKeyFromRaw(raw)
}
