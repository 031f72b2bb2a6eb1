/**
 * Issue 13, storage shared with libp2p: the KeyValueStore adapter over an interface-datastore
 * Datastore (compliance suite on memory and LevelDB), the migration of a pre-datastore LevelDB,
 * a tcp node's restart on a data dir, and a libp2p host whose peer store lives in the node's
 * LevelDB and survives a restart.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { afterEach, describe, expect, it } from 'vitest'
import { storeCompliance } from '@kos-mesh/interface-compliance-tests'
import { tcp } from '@kos-mesh/transport-tcp'
import { peerIdFromDid } from '@kos-mesh/transport-libp2p'
import { createNode, keystoreIdentity, libp2p, type KosMeshNode, type TransportFactory } from '../src/index.js'
import { datastoreKeyValueStore, VerbatimMemoryDatastore } from '../src/datastore.js'
import { MAX_KEY_LENGTH, MAX_VALUE_BYTES } from '../src/storage/keys.js'
import { integrityMarkerPath, levelStore, RESERVED_KEY_PREFIX } from '../src/storage/level.js'

const limits = { maxKeyLength: MAX_KEY_LENGTH, maxValueBytes: MAX_VALUE_BYTES }
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b))

async function keysOf(it: AsyncIterable<{ key: string }>): Promise<string[]> {
  const out: string[] = []
  for await (const { key } of it) out.push(key)
  return out
}

storeCompliance(
  'datastoreKeyValueStore(MemoryDatastore)',
  async () => ({ store: datastoreKeyValueStore(new VerbatimMemoryDatastore()) }),
  { ...limits, volatile: true },
)

for (const ordered of [true, false]) {
  storeCompliance(
    `datastoreKeyValueStore(LevelDatastore, ordered: ${ordered})`,
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'kos-ds-'))
      let ds = new LevelDatastore(join(dir, 'db'))
      await ds.open()
      return {
        store: datastoreKeyValueStore(ds, { ordered }),
        reopen: async () => {
          await ds.close()
          ds = new LevelDatastore(join(dir, 'db'))
          await ds.open()
          return datastoreKeyValueStore(ds, { ordered })
        },
        teardown: async () => {
          await ds.close()
          await rm(dir, { recursive: true, force: true })
        },
      }
    },
    { ...limits, keys: 100 },
  )
}

describe('datastoreKeyValueStore specifics', () => {
  it('maps keys verbatim under /kos, beside (and blind to) other keys of the same datastore', async () => {
    const ds = new VerbatimMemoryDatastore()
    const kv = datastoreKeyValueStore(ds)
    await kv.put('trust/did:key:z6Mk', enc('t'))
    await kv.put('a/', enc('trailing slash kept'))
    await ds.put(new Key('/peers/12D3KooW'), enc('libp2p'))
    await ds.put(new Key('/kosmos'), enc('not ours'))
    expect(dec(await ds.get(new Key('/kos/trust/did:key:z6Mk')))).toBe('t')
    expect(await keysOf(kv.query(''))).toEqual(['a/', 'trust/did:key:z6Mk'])
    expect(await keysOf(kv.query('a/'))).toEqual(['a/'])
    expect(() => datastoreKeyValueStore(ds, { prefix: 'kos/' })).toThrow(/datastore prefix/)
  })

  it('prefix queries on LevelDB keep keys whose next character is at or above U+00FF', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-ds-'))
    const ds = new LevelDatastore(join(dir, 'db'))
    await ds.open()
    try {
      const kv = datastoreKeyValueStore(ds, { ordered: true })
      const keys = ['p/a', 'p/\u00fe', 'p/\u00ff', 'p/\u4e2d', 'p/\u4e2d\u6587', 'p/\u{1f600}', 'q/x', '\u00ff', '\u{1f600}/x']
      for (const k of keys) await kv.put(k, enc(k))
      expect(await keysOf(kv.query('p/'))).toEqual(['p/a', 'p/\u00fe', 'p/\u00ff', 'p/\u4e2d', 'p/\u4e2d\u6587', 'p/\u{1f600}'])
      expect(await keysOf(kv.query('p/\u4e2d'))).toEqual(['p/\u4e2d', 'p/\u4e2d\u6587'])
      expect(await keysOf(kv.query('\u{1f600}'))).toEqual(['\u{1f600}/x'])
      expect(await keysOf(kv.query(''))).toHaveLength(keys.length)
      expect(await keysOf(kv.query('p/', { limit: 3 }))).toEqual(['p/a', 'p/\u00fe', 'p/\u00ff'])
    } finally {
      await ds.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('levelStore on datastore-level: the pre-datastore layout is migrated once', () => {
  it('moves verbatim keys under /kos/, keeps the integrity record and its generation, then leaves the database alone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-ds-'))
    const path = join(dir, 'db')
    try {
      // a database as the classic-level store wrote it: keys verbatim, the integrity record, the marker
      const record = { format: 'kos-mesh-store-integrity', version: 1, store_id: 'ab'.repeat(16), generation: 3, created: 1 }
      const old = new ClassicLevel<string, Uint8Array>(path, { valueEncoding: 'view' })
      await old.open()
      await old.put('trust/did:key:z6MkA', enc('{"score":4}'))
      await old.put('pin/b.mesh.kai', enc('did:key:z6MkB'))
      await old.put('peer/did:key:z6MkB', enc('{}'))
      await old.put('dht/contact/did:key:z6MkB', enc('{}'))
      await old.put(`${RESERVED_KEY_PREFIX}integrity`, enc(JSON.stringify(record)))
      await old.close()
      const { writeFile } = await import('node:fs/promises')
      await writeFile(integrityMarkerPath(path), JSON.stringify(record) + '\n')

      const store = levelStore({ path })
      await store.start()
      expect(store.migratedKeys()).toBe(5)
      expect(store.integrityRecord()).toMatchObject({ store_id: record.store_id, generation: 4 })
      expect(dec(await store.get('trust/did:key:z6MkA'))).toBe('{"score":4}')
      expect(await keysOf(store.query(''))).toEqual(['dht/contact/did:key:z6MkB', 'peer/did:key:z6MkB', 'pin/b.mesh.kai', 'trust/did:key:z6MkA'])
      expect(dec(await store.datastore.get(new Key('/kos/pin/b.mesh.kai')))).toBe('did:key:z6MkB')
      await store.stop()

      // nothing left at the old keys; a second start migrates nothing and the integrity check still passes
      const raw = new ClassicLevel<string, Uint8Array>(path, { valueEncoding: 'view' })
      await raw.open()
      const rawKeys: string[] = []
      for await (const k of raw.keys()) rawKeys.push(k)
      await raw.close()
      expect(rawKeys.every((k) => k.startsWith('/kos/'))).toBe(true)
      const again = levelStore({ path })
      await again.start()
      expect(again.migratedKeys()).toBe(0)
      expect(again.integrityRecord()).toMatchObject({ store_id: record.store_id, generation: 5 })
      expect(await keysOf(again.query('pin/'))).toEqual(['pin/b.mesh.kai'])
      await again.stop()
      expect(JSON.parse(await readFile(integrityMarkerPath(path), 'utf8'))).toMatchObject({ generation: 5 })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('the datastore handed out before start fails typed while the store is stopped, and follows restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-ds-'))
    try {
      const store = levelStore({ path: join(dir, 'db') })
      await expect(store.datastore.has(new Key('/x'))).rejects.toMatchObject({ name: 'StoreClosedError' })
      await store.start()
      await store.datastore.put(new Key('/peers/x'), enc('1'))
      await store.stop()
      await store.start()
      expect(await store.datastore.has(new Key('/peers/x'))).toBe(true)
      expect(await keysOf(store.query(''))).toEqual([])
      await store.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

/** The part of a libp2p host the test reads. */
interface Libp2p {
  peerStore: { has(peer: unknown): Promise<boolean>; get(peer: unknown): Promise<{ addresses: unknown[] }> }
}

const nodes: KosMeshNode[] = []
afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
})

async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  // bounded by the test timeout; polls, no timing assertion
  while (!(await cond())) await new Promise((r) => setTimeout(r, 25))
  expect(await cond(), what).toBe(true)
}

describe('restart on a data dir', () => {
  it('a tcp node keeps identity, trust, pins, known peers and DHT contacts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-ds-node-'))
    try {
      const b = createNode({ authority: 'b.mesh.kai', transports: [tcp()], listen: ['tcp://127.0.0.1:0'] })
      nodes.push(b)
      await b.start()
      const make = (): KosMeshNode => {
        const n = createNode({
          authority: 'a.mesh.kai',
          identity: keystoreIdentity({ path: join(dir, 'keystore.json'), passphrase: 'correct horse', kdf: { N: 1024 } }),
          storage: levelStore({ path: join(dir, 'db') }),
          transports: [tcp()],
          listen: ['tcp://127.0.0.1:0'],
        })
        nodes.push(n)
        return n
      }
      const a = make()
      await a.start()
      const did = a.did
      await a.connect(b.addrs()[0] as string)
      await a.trust(b.did, 6)
      await until('b pinned, known and a DHT contact', async () => {
        const keys = await keysOf(a.storage.query(''))
        return keys.some((k) => k.startsWith('pin/')) && keys.some((k) => k.startsWith('peer/')) && keys.some((k) => k.startsWith('dht/contact/'))
      })
      await a.stop()

      const a2 = make()
      await a2.start()
      expect(a2.did).toBe(did)
      expect(a2.trustStore.get(b.did).trust_score).toBe(6)
      const keys = await keysOf(a2.storage.query(''))
      expect(keys.filter((k) => k.startsWith('pin/')).length).toBeGreaterThan(0)
      expect(keys).toContain(`peer/${b.did}`)
      expect(keys.filter((k) => k.startsWith('dht/contact/')).length).toBeGreaterThan(0)
      expect(a2.router.metrics().pinnedAuthorities).toBeGreaterThan(0)
      await a2.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('with libp2p, the host\'s peer store lives in the node\'s LevelDB and still knows a peer after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-ds-p2p-'))
    try {
      const b = createNode({ authority: 'b.mesh.kai', transports: [libp2p()], listen: ['libp2p:///ip4/127.0.0.1/tcp/0'] })
      nodes.push(b)
      await b.start()
      const bPeer = peerIdFromDid(b.did)
      let host: () => Libp2p | undefined = () => undefined
      const make = (): KosMeshNode => {
        const storage = levelStore({ path: join(dir, 'db') })
        const f = libp2p({ datastore: storage.datastore })
        const capture: TransportFactory = (c) => {
          const t = f(c)
          host = () => (t as unknown as { libp2p?: Libp2p }).libp2p
          return t
        }
        const n = createNode({
          authority: 'a.mesh.kai',
          identity: keystoreIdentity({ path: join(dir, 'keystore.json'), passphrase: 'correct horse', kdf: { N: 1024 } }),
          storage,
          transports: [capture],
          listen: ['libp2p:///ip4/127.0.0.1/tcp/0'],
        })
        nodes.push(n)
        return n
      }
      const a = make()
      await a.start()
      await a.connect(b.addrs()[0] as string)
      await until('the peer store knows b', async () => (await host()?.peerStore.has(bPeer)) === true)
      // libp2p's records are in the node's LevelDB, beside the node's own keys
      const peerKeys: string[] = []
      for await (const k of a.storage.datastore!.queryKeys({ prefix: '/peers/' })) peerKeys.push(k.toString())
      expect(peerKeys.length).toBeGreaterThan(0)
      await a.stop()
      await b.stop()

      const a2 = make()
      await a2.start()
      const h = host()
      expect(h).toBeDefined()
      expect(await h!.peerStore.has(bPeer)).toBe(true)
      const peer = await h!.peerStore.get(bPeer)
      expect(peer.addresses.length).toBeGreaterThan(0)
      await a2.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
