/**
 * DID resolution: did-resolver + key-did-resolver (did:key), room for other methods through a
 * did-resolver registry, and a bounded TTL cache of the resulting document views.
 */
import { Resolver, type DIDDocument, type ResolverRegistry, type VerificationMethod } from 'did-resolver'
import { getResolver as getKeyResolver } from 'key-did-resolver'
import { base58btc } from 'multiformats/bases/base58'
import { systemClock, throwIfAborted, type AbortOptions, type Clock, type DidDocumentView, type DidResolver, type KeyResolver } from '@kos-mesh/interface'
import { DidResolutionError, InvalidDidError, UnsupportedDidMethodError } from './errors.js'
import { LruCache, fromBase64Url } from './bytes.js'
import { MAX_DID_LENGTH, publicKeyFromDidKey } from './did-key.js'

/** Options of `createDidResolver`: extra DID methods and the document cache. */
export interface DidResolverInit {
  /** Extra did-resolver method drivers, e.g. `{ web: ... }`. did:key is always present. */
  methods?: ResolverRegistry
  /** Cache of resolved documents. Default: `{ maxEntries: 10_000, ttlMs: 3_600_000 }`; did:key never changes. */
  cache?: { maxEntries?: number; ttlMs?: number } | false
  /** Time of the cache TTL. Default `systemClock` from @kos-mesh/interface. */
  clock?: Clock
  /** @deprecated use `clock`; used only when `clock` is not given. */
  now?: () => number
}

/** A DID resolver that also resolves key ids to Ed25519 keys (the codec's KeyResolver), with a cache. */
export interface MeshDidResolver extends DidResolver, KeyResolver {
  /** Drops a cached document (e.g. after a key rotation of a mutable method). */
  invalidate(did: string): void
}

const DID_RE = /^did:([a-z0-9]+):([A-Za-z0-9._:%-]+)$/

function splitDidUrl(keyId: string): { did: string; fragment: string | undefined } {
  if (typeof keyId !== 'string') throw new InvalidDidError(`expected a DID or DID URL string, got ${typeof keyId}`)
  if (keyId.length > MAX_DID_LENGTH) throw new InvalidDidError(`expected a DID of at most ${MAX_DID_LENGTH} characters, got ${keyId.length}`)
  const hash = keyId.indexOf('#')
  const did = hash === -1 ? keyId : keyId.slice(0, hash)
  if (!DID_RE.test(did)) throw new InvalidDidError(`expected a DID like did:method:id, got "${did.slice(0, 32)}"`)
  return { did, fragment: hash === -1 ? undefined : keyId.slice(hash + 1) }
}

function decodeKey(vm: VerificationMethod): Uint8Array | undefined {
  if (typeof vm.publicKeyBase58 === 'string') return base58btc.baseDecode(vm.publicKeyBase58)
  if (typeof vm.publicKeyMultibase === 'string') {
    const b = base58btc.decode(vm.publicKeyMultibase)
    // multicodec-prefixed (ed25519-pub 0xed01 / x25519-pub 0xec01) or raw
    return b.length === 34 ? b.subarray(2) : b
  }
  if (vm.publicKeyJwk !== undefined && typeof vm.publicKeyJwk.x === 'string') return fromBase64Url(vm.publicKeyJwk.x)
  return undefined
}

function absolute(did: string, id: string): string {
  return id.startsWith('#') ? `${did}${id}` : id
}

/** Converts a W3C DID document into the mesh's view (Ed25519 and X25519 keys only). */
export function toDocumentView(doc: DIDDocument): DidDocumentView {
  const verificationKeys: Array<{ id: string; publicKey: Uint8Array }> = []
  const keyAgreementKeys: Array<{ id: string; publicKey: Uint8Array }> = []
  const all: VerificationMethod[] = [...(doc.verificationMethod ?? [])]
  for (const ka of doc.keyAgreement ?? []) if (typeof ka !== 'string') all.push(ka)
  const agreementIds = new Set((doc.keyAgreement ?? []).map((k) => absolute(doc.id, typeof k === 'string' ? k : k.id)))
  for (const vm of all) {
    let key: Uint8Array | undefined
    try { key = decodeKey(vm) } catch { key = undefined }
    if (key?.length !== 32) continue
    const id = absolute(doc.id, vm.id)
    const isX = vm.type.startsWith('X25519') || (vm.publicKeyJwk?.crv === 'X25519')
    const isEd = vm.type.startsWith('Ed25519') || (vm.publicKeyJwk?.crv === 'Ed25519')
    if (isX || agreementIds.has(id)) { if (isX) keyAgreementKeys.push({ id, publicKey: key }) } else if (isEd) verificationKeys.push({ id, publicKey: key })
  }
  return { id: doc.id, verificationKeys, keyAgreementKeys }
}

class CachingDidResolver implements MeshDidResolver {
  private readonly resolver: Resolver
  private readonly cache: LruCache<string, { view: DidDocumentView; until: number }> | undefined
  private readonly ttl: number
  private readonly now: () => number
  private readonly inflight = new Map<string, Promise<DidDocumentView>>()

  constructor(init: DidResolverInit) {
    this.resolver = new Resolver({ ...init.methods, ...getKeyResolver() }, { cache: false })
    this.cache = init.cache === false ? undefined : new LruCache(init.cache?.maxEntries ?? 10_000)
    this.ttl = init.cache === false ? 0 : init.cache?.ttlMs ?? 3_600_000
    const clock = init.clock
    this.now = clock !== undefined ? () => clock.now() : init.now ?? (() => systemClock.now())
  }

  invalidate(did: string): void { this.cache?.delete(did) }

  async resolveDid(didOrUrl: string, options: AbortOptions = {}): Promise<DidDocumentView> {
    throwIfAborted(options.signal)
    const { did } = splitDidUrl(didOrUrl)
    const hit = this.cache?.get(did)
    if (hit !== undefined && hit.until > this.now()) return hit.view
    let p = this.inflight.get(did)
    if (p === undefined) {
      p = this.resolveUncached(did).finally(() => this.inflight.delete(did))
      this.inflight.set(did, p)
    }
    const view = await raceAbort(p, options.signal)
    return view
  }

  private async resolveUncached(did: string): Promise<DidDocumentView> {
    // An Ed25519 did:key ("z6Mk...") must name a valid public key (a point on the curve, canonical,
    // not of small order): the did:key method rejects it otherwise (invalidPublicKey). Checked here
    // with our own parser (cached per DID), so the error is typed: InvalidPublicKeyError.
    if (did.startsWith('did:key:z6Mk')) publicKeyFromDidKey(did)
    const result = await this.resolver.resolve(did)
    const err = result.didResolutionMetadata.error
    if (err === 'unsupportedDidMethod') throw new UnsupportedDidMethodError(`expected a supported DID method, got "${did.split(':')[1] ?? ''}"`)
    if (err !== undefined || result.didDocument === null) {
      throw new DidResolutionError(`could not resolve ${did.slice(0, 64)}: ${err ?? 'no document'}`)
    }
    const view = toDocumentView(result.didDocument)
    this.cache?.set(did, { view, until: this.now() + this.ttl })
    return view
  }

  async resolveKey(keyId: string, options: AbortOptions = {}): Promise<Uint8Array> {
    const { did, fragment } = splitDidUrl(keyId)
    const view = await this.resolveDid(did, options)
    const wanted = fragment === undefined ? undefined : `${did}#${fragment}`
    const found = wanted === undefined ? view.verificationKeys[0] : view.verificationKeys.find((k) => k.id === wanted)
    if (found === undefined) throw new DidResolutionError(`expected a verification key ${wanted ?? 'in the document'}, got none`)
    return found.publicKey
  }
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p
  throwIfAborted(signal)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      try { throwIfAborted(signal) } catch (e) { reject(e) }
    }
    signal.addEventListener('abort', onAbort, { once: true })
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v) },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e) })
  })
}

/** A DidResolver + KeyResolver over did-resolver (did:key built in), with a bounded TTL cache. */
export function createDidResolver(init: DidResolverInit = {}): MeshDidResolver {
  return new CachingDidResolver(init)
}

export { raceAbort }
