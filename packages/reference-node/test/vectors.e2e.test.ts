/**
 * Vector collections end to end, on real `kos-mesh` processes on loopback TCP: two nodes
 * initialized with `--vectors` (pull strategy, no timer) create the same collection (2 replicas);
 * B's sync is refused until A trusts it; A imports a small JSON-lines file, B syncs (fetching the
 * 4 entries) and finds A's entries by search, and after A stops and
 * B restarts, B still holds them (its index files reloaded, not rebuilt) and finds them alone.
 * A bad import file sends nothing (exit 2, the line named); a node without vectors exits 6.
 * Every `--json` output is one JSON document; every wait polls with a deadline.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, connectedDids, eventually, freePorts, json, startNode, stopAll, type Running } from './e2e-helpers.js'

let root: string
const running: Running[] = []
const dir = (name: string): string => join(root, name)

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-vectors-e2e-'))
})

afterAll(async () => {
  await stopAll(running)
  if (root !== undefined) await rm(root, { recursive: true, force: true })
}, 30_000)

const connected = async (node: string, did: string): Promise<boolean> => (await connectedDids(dir(node))).includes(did)

interface StatusDoc {
  collections: Array<{ name: string; dimensions: number; entries: number; sharding: { replication_factor: number }; shards: Array<{ shard: number; held: boolean; holders: string[]; entries: number; indexed: number }> }>
}

const v = (node: string, ...args: string[]) => cli(['vectors', ...args, '--json', '--data-dir', dir(node)])

const ENTRIES = [
  { id: 'apple', vector: [1, 0, 0, 0], metadata: { title: 'Apple', kind: 'fruit' } },
  { id: 'pear', vector: [0.9, 0.1, 0, 0], metadata: { title: 'Pear' } },
  { id: 'car', vector: [0, 0, 1, 0], metadata: { title: 'Car', wheels: 4 } },
  { id: 'bike', vector: [0, 0, 0.8, 0.2] },
]

describe('vector collections across two processes', () => {
  it('imports on A, syncs to B, searches on B, and B keeps the entries across a restart', async () => {
    const [pA, pB] = await freePorts(2)
    const inits = await Promise.all([
      cli(['init', '--json', '--data-dir', dir('a'), '--name', 'a', '--agents', '', '--vectors', '--listen', `tcp://127.0.0.1:${pA}`]),
      cli(['init', '--json', '--data-dir', dir('b'), '--name', 'b', '--agents', '', '--vectors', '--listen', `tcp://127.0.0.1:${pB}`]),
    ])
    for (const r of inits) expect(r.code, r.stderr).toBe(0)
    expect(json<{ config: { vectors?: unknown } }>(inits[0]!).config.vectors).toEqual({})
    // pull only, no timer: A's import is not pushed, so B has A's entries only through `vectors sync`
    for (const n of ['a', 'b']) {
      const file = join(dir(n), 'config.json')
      const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
      await writeFile(file, JSON.stringify({ ...config, vectors: { strategies: ['pull'], syncIntervalMs: 0 } }))
    }
    const b = await startNode(dir('b'), [], running)
    const a = await startNode(dir('a'), ['--seed', b.started.addrs[0] as string], running)
    const [A, B] = [a.started.did, b.started.did]
    await eventually('A is connected to B', async () => connected('a', B))
    // the same collection on both, two replicas of its one shard
    for (const n of ['a', 'b']) {
      const c = await v(n, 'create', 'docs', '--dimensions', '4', '--replicas', '2')
      expect(c.code, c.stderr).toBe(0)
      expect(json(c)).toMatchObject({ name: 'docs', dimensions: 4, metric: 'cos', sharding: { method: 'hash_based', shard_count: 1, replication_factor: 2 }, entries: 0 })
    }
    // both advertise vector_storage, so both hold the shard once each knows the other's record
    await eventually('A and B both hold docs/0 in both views', async () => {
      for (const n of ['a', 'b']) {
        const s = json<StatusDoc>(await v(n, 'status'))
        const shard = s.collections[0]?.shards[0]
        if (shard?.held !== true || !shard.holders.includes(A) || !shard.holders.includes(B)) return false
      }
      return true
    })

    // A does not trust B yet: it refuses B's sync (exit 4, the result still one document)
    const early = await v('b', 'sync', 'docs')
    expect(early.code, early.stdout + early.stderr).toBe(4)
    expect(json(early)).toMatchObject({ status: 'failed', peers: [{ peer_id: A, status: 'failed', error: expect.stringMatching(/insufficient_trust|Rejected/) }] })
    // each serves the other's syncs from now on (minSyncTrust 6)
    for (const [n, did] of [['a', B], ['b', A]] as const) expect((await cli(['trust', did, '8', '--json', '--data-dir', dir(n)])).code).toBe(0)

    // a bad line: nothing is sent
    const bad = join(root, 'bad.jsonl')
    await writeFile(bad, `${JSON.stringify(ENTRIES[0])}\n{"id": "x", "vector": [1, 2]}\n`)
    const refused = await v('a', 'import', 'docs', bad)
    expect(refused.code).toBe(2)
    expect(json(refused)).toMatchObject({ error: { code: 'ERR_INVALID_IMPORT_FILE' }, exitCode: 2 })
    expect(json(refused)).toMatchObject({ error: { message: expect.stringContaining('line 2') } })
    expect(json<StatusDoc>(await v('a', 'status')).collections[0]?.entries).toBe(0)

    // import on A
    const file = join(root, 'docs.jsonl')
    await writeFile(file, ENTRIES.map((e) => JSON.stringify(e)).join('\n') + '\n\n')
    const imp = await v('a', 'import', 'docs', file)
    expect(imp.code, imp.stderr).toBe(0)
    expect(json(imp)).toEqual({ collection: 'docs', file, imported: 4 })
    expect(imp.stderr).not.toContain('[#') // no progress bar without a terminal

    // B has none of them until it syncs; then it fetched the 4 entries from A
    expect(json<StatusDoc>(await v('b', 'status')).collections[0]?.entries).toBe(0)
    const sync = await v('b', 'sync', 'docs')
    expect(sync.code, sync.stdout + sync.stderr).toBe(0)
    expect(json(sync)).toMatchObject({ collections: ['docs'], status: 'completed', shards_done: 1, shards_total: 1, vectors_synced: 4, peers: [{ peer_id: A, status: 'completed', vectors_synced: 4 }] })
    // a second sync finds nothing to move
    expect(json(await v('b', 'sync', 'docs'))).toMatchObject({ status: 'completed', vectors_synced: 0 })
    const sb = json<StatusDoc>(await v('b', 'status'))
    expect(sb.collections[0]).toMatchObject({ name: 'docs', entries: 4, shards: [{ shard: 0, held: true, entries: 4, indexed: 4 }] })

    // search on B finds A's entries, owned by A
    const found = await v('b', 'search', 'docs', '1,0.05,0,0', '--k', '2')
    expect(found.code, found.stderr).toBe(0)
    const doc = json<{ hits: Array<{ id: string; owner: string; metadata?: Record<string, unknown> }>; complete: boolean; shards: Array<{ answeredBy?: string }> }>(found)
    expect(doc.hits.map((h) => h.id)).toEqual(['apple', 'pear'])
    expect(doc.hits[0]).toMatchObject({ owner: A, metadata: { title: 'Apple', kind: 'fruit' } })
    expect(doc).toMatchObject({ complete: true, shards: [{ answeredBy: B }] })

    // A goes away; B restarts (its stop saved the index file beside its data) and still has them,
    // its index loaded from the file, not rebuilt, answering alone
    expect((await cli(['stop', '--json', '--data-dir', dir('a')])).code).toBe(0)
    expect((await cli(['stop', '--json', '--data-dir', dir('b')])).code).toBe(0)
    expect((await readdir(join(dir('b'), 'vectors', 'docs', '0'))).some((f) => /^\d{16}\.usearch$/.test(f))).toBe(true)
    await startNode(dir('b'), [], running)
    const after = json<StatusDoc>(await v('b', 'status'))
    expect(after.collections[0]).toMatchObject({ name: 'docs', entries: 4, shards: [{ held: true, entries: 4, indexed: 4, index_file_loaded: true }] })
    const again = json<{ hits: Array<{ id: string; owner: string }> }>(await v('b', 'search', 'docs', '[0, 0, 1, 0.1]', '--k', '1'))
    expect(again.hits).toEqual([expect.objectContaining({ id: 'car', owner: A })])
  }, 120_000)

  it('a node without vectors refuses with exit 6 and a hint', async () => {
    const [p] = await freePorts(1)
    expect((await cli(['init', '--json', '--data-dir', dir('c'), '--name', 'c', '--agents', '', '--listen', `tcp://127.0.0.1:${p}`])).code).toBe(0)
    await startNode(dir('c'), [], running)
    const r = await v('c', 'status')
    expect(r.code).toBe(6)
    expect(json(r)).toMatchObject({ error: { code: 'ERR_SERVICE_OFF', reason: 'vectors', hint: expect.stringContaining('--vectors') }, exitCode: 6 })
  }, 60_000)
})
