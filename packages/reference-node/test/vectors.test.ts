/**
 * The node's vector collections in-process: the import file format and its typed errors, the
 * `vectors` config section, the CLI's usage errors (before any node is asked), the control API's
 * bounds and error codes on a node with and without the service, the `vector_storage`
 * capability, and a restart on a LevelDB store with index files (loaded, not rebuilt).
 */
import { request } from 'node:http'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { ExitCode, runCli } from '../src/cli-app.js'
import { countLine } from '../src/cli-vectors.js'
import { defaultConfig, parseConfig } from '../src/config.js'
import { startControlServer, writeControlFiles, type ControlServer } from '../src/control.js'
import { createNode, memory, type KosMeshNode } from '../src/index.js'
import type { NodeVectors } from '../src/node-vectors.js'
import { levelStore } from '../src/storage/level.js'
import { InvalidImportFileError, InvalidVectorInputError, MAX_IMPORT_LINE_BYTES, parseImportFile, parseVectorText } from '../src/vectors-input.js'

let root: string
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-vectors-'))
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

function caught(fn: () => unknown): Error & { code?: string; line?: number } {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a throw')
}

describe('import file (JSON lines)', () => {
  it('reads entries, skipping blank lines', () => {
    const text = '{"id":"a","vector":[1,0],"metadata":{"t":"x","n":2,"ok":true}}\n\n  \r\n{"id":"b","vector":[0,1]}\r\n'
    expect(parseImportFile(text, 2)).toEqual([{ id: 'a', vector: [1, 0], metadata: { t: 'x', n: 2, ok: true } }, { id: 'b', vector: [0, 1] }])
  })

  it('names the first bad line with a typed error', () => {
    const cases: Array<[string, number]> = [
      ['{"id":"a","vector":[1,0]}\nnot json\n', 2],
      ['{"id":"a","vector":[1,0]}\n{"id":"b","vector":[1,0,0]}', 2], // dimensions
      ['{"id":"a","vector":[1,"x"]}', 1],
      ['{"id":"","vector":[1,0]}', 1],
      [`{"id":"${'i'.repeat(257)}","vector":[1,0]}`, 1],
      ['{"id":"a","vector":[1,0],"extra":1}', 1],
      ['{"id":"a","vector":[1,0],"metadata":{"k":null}}', 1],
      ['{"id":"a","vector":[1,0],"metadata":[1]}', 1],
      [`{"id":"a","vector":[1,0],"metadata":{${Array.from({ length: 33 }, (_, i) => `"k${i}":1`).join(',')}}}`, 1],
      ['[1,0]', 1],
      [`{"id":"a","vector":[${Array(MAX_IMPORT_LINE_BYTES).fill(0).join(',')}]}`, 1], // line too long
    ]
    for (const [text, line] of cases) {
      const e = caught(() => parseImportFile(text, 2))
      expect(e, text.slice(0, 60)).toBeInstanceOf(InvalidImportFileError)
      expect(e.code).toBe('ERR_INVALID_IMPORT_FILE')
      expect(e.line, text.slice(0, 60)).toBe(line)
    }
    expect(caught(() => parseImportFile('\n\n')).line).toBe(0)
  })

  it('takes a vector as 0.1,0.2 or as a JSON array', () => {
    expect(parseVectorText('1, -0.5,2e-1')).toEqual([1, -0.5, 0.2])
    expect(parseVectorText('[1, 0.5]', 2)).toEqual([1, 0.5])
    for (const bad of ['1,,x', '1,2', '[1,', 'NaN', 'Infinity', '0x10']) expect(caught(() => parseVectorText(bad, 3)).name).toBe(InvalidVectorInputError.name)
  })
})

describe('vectors config section', () => {
  it('turns the service on with collections and options; refuses unknown or bad keys', () => {
    const base = defaultConfig('a')
    expect(parseConfig({ ...base, vectors: {} }).vectors).toEqual({})
    expect(parseConfig({ ...base, vectors: false }).vectors).toBe(false)
    expect(parseConfig(base).vectors).toBeUndefined()
    const c = parseConfig({ ...base, vectors: { collections: [{ name: 'docs', dimensions: 4, sharding: { shard_count: 2, replication_factor: 2 } }], strategies: ['push', 'pull'], syncIntervalMs: 0, minSyncTrust: 5, placement: false, region: 'eu' } })
    expect(c.vectors).toMatchObject({ collections: [{ name: 'docs', dimensions: 4 }], strategies: ['push', 'pull'], syncIntervalMs: 0, minSyncTrust: 5, placement: false, region: 'eu' })
    for (const vectors of [[], { colections: [] }, { collections: [{ name: 'a b', dimensions: 4 }] }, { collections: [{ name: 'a', dimensions: 0 }] }, { collections: [{ name: 'a', dimensions: 4, x: 1 }] }, { collections: [{ name: 'a', dimensions: 4 }, { name: 'a', dimensions: 4 }] }, { strategies: ['flood'] }, { minSyncTrust: 11 }, { syncIntervalMs: 1.5 }, { placement: 'yes' }]) {
      expect(() => parseConfig({ ...base, vectors }), JSON.stringify(vectors)).toThrow(expect.objectContaining({ name: 'InvalidConfigError' }))
    }
  })
})

describe('kos-mesh vectors: usage errors before any node is asked', () => {
  async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = ''
    let err = ''
    const code = await runCli(args, { stdout: (s) => (out += s), stderr: (s) => (err += s), env: {} })
    return { code, out, err }
  }

  it('exits 2 on bad arguments and bad files (no node runs for the data dir)', async () => {
    const dir = join(root, 'none')
    const badFile = join(root, 'bad.jsonl')
    await writeFile(badFile, '{"id":"a","vector":[1]}\n{"id":"b"}\n')
    const cases: string[][] = [
      ['vectors', 'frob'],
      ['vectors', 'create'],
      ['vectors', 'create', 'docs'],
      ['vectors', 'create', 'docs', '--dimensions', '0'],
      ['vectors', 'create', 'no spaces', '--dimensions', '4'],
      ['vectors', 'create', 'docs', '--dimensions', '4', '--metric', 'manhattan'],
      ['vectors', 'create', 'docs', '--dimensions', '4', '--replicas', '17'],
      ['vectors', 'add', 'docs', 'id1'],
      ['vectors', 'add', 'docs', 'id1', '1,x'],
      ['vectors', 'add', 'docs', 'id1', '1,2', '--metadata', '{"a":null}'],
      ['vectors', 'import', 'docs', join(root, 'missing.jsonl')],
      ['vectors', 'import', 'docs', badFile],
      ['vectors', 'search', 'docs', '1,2', '--k', '0'],
      ['vectors', 'sync', 'docs', '--peer', 'a b'],
      ['vectors', 'status', 'docs', '--k', '3'],
    ]
    for (const args of cases) {
      const r = await run([...args, '--data-dir', dir])
      expect(r.code, args.join(' ') + r.err).toBe(ExitCode.USAGE)
    }
    const j = await run(['vectors', 'import', 'docs', badFile, '--json', '--data-dir', dir])
    expect(JSON.parse(j.out)).toMatchObject({ error: { code: 'ERR_INVALID_IMPORT_FILE', message: expect.stringContaining('line 2') }, exitCode: 2 })
    // good arguments: then the missing node (exit 3)
    expect((await run(['vectors', 'status', '--data-dir', dir])).code).toBe(ExitCode.NOT_RUNNING)
  })
})

function call(server: ControlServer, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body)
    const req = request({ host: '127.0.0.1', port: server.port, method, path, headers: { authorization: `Bearer ${server.token}` } }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => (text += d.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text.length > 0 ? JSON.parse(text) : undefined }))
    })
    req.on('error', reject)
    req.end(data)
  })
}

describe('control API: vectors', () => {
  const network = createMemoryNetwork()
  let on: KosMeshNode
  let off: KosMeshNode
  let sOn: ControlServer
  let sOff: ControlServer

  beforeAll(async () => {
    on = createNode({ authority: 'von.mesh.kai', transports: [memory({ network })], listen: ['memory://von'], vectors: { syncIntervalMs: 0 } })
    off = createNode({ authority: 'voff.mesh.kai', transports: [memory({ network })], listen: ['memory://voff'] })
    await Promise.all([on.start(), off.start()])
    sOn = await startControlServer({ node: on })
    sOff = await startControlServer({ node: off, dashboard: false })
  })
  afterAll(async () => {
    await sOn?.close()
    await sOff?.close()
    await Promise.allSettled([on.stop(), off.stop()])
  })

  it('advertises vector_storage only when the service runs', () => {
    expect(on.record()?.capabilities.vector_storage).toBe(true)
    expect(off.record()?.capabilities.vector_storage).toBe(false)
  })

  it('creates, adds, searches and reports; refuses bad bodies with 400, unknown collections with 404', async () => {
    const created = await call(sOn, 'POST', '/v1/vectors/create', { name: 'docs', dimensions: 3, shards: 2 })
    expect(created).toMatchObject({ status: 200, json: { collection: { name: 'docs', dimensions: 3, sharding: { shard_count: 2, replication_factor: 1 }, entries: 0 } } })
    // the same again: no change; other options: refused
    expect((await call(sOn, 'POST', '/v1/vectors/create', { name: 'docs', dimensions: 3, shards: 2 })).status).toBe(200)
    expect(await call(sOn, 'POST', '/v1/vectors/create', { name: 'docs', dimensions: 4, shards: 2 })).toMatchObject({ status: 400, json: { error: { code: 'ERR_INVALID_COLLECTION' } } })
    const add = await call(sOn, 'POST', '/v1/vectors/add', { collection: 'docs', entries: [{ id: 'x', vector: [1, 0, 0] }, { id: 'y', vector: [0, 1, 0], metadata: { t: 'y' } }] })
    expect(add).toMatchObject({ status: 200, json: { collection: 'docs', added: 2 } })
    const found = await call(sOn, 'POST', '/v1/vectors/search', { collection: 'docs', vector: [0, 1, 0.1], k: 1 })
    expect(found).toMatchObject({ status: 200, json: { search: { hits: [{ id: 'y', owner: on.did, metadata: { t: 'y' } }], complete: true } } })
    const st = await call(sOn, 'GET', '/v1/vectors')
    expect(st.json.collections[0]).toMatchObject({ name: 'docs', entries: 2 })
    expect(st.json.collections[0].shards.map((s: { entries: number }) => s.entries).reduce((x: number, y: number) => x + y, 0)).toBe(2)

    const bad: Array<[string, unknown, number, string]> = [
      ['/v1/vectors/create', { name: 'docs/x', dimensions: 3 }, 400, 'ERR_INVALID_PARAMETERS'],
      ['/v1/vectors/create', { name: 'd2', dimensions: 3.5 }, 400, 'ERR_INVALID_PARAMETERS'],
      ['/v1/vectors/create', { name: 'd2', dimensions: 3, replicas: 17 }, 400, 'ERR_INVALID_PARAMETERS'],
      ['/v1/vectors/add', { collection: 'docs', entries: [] }, 400, 'ERR_INVALID_PARAMETERS'],
      ['/v1/vectors/add', { collection: 'docs', entries: Array.from({ length: 1025 }, (_, i) => ({ id: `e${i}`, vector: [1, 0, 0] })) }, 400, 'ERR_INVALID_PARAMETERS'],
      ['/v1/vectors/add', { collection: 'docs', entries: [{ id: 'z', vector: [1, 'x', 0] }] }, 400, 'ERR_INVALID_VECTOR_INPUT'],
      ['/v1/vectors/add', { collection: 'docs', entries: [{ id: 'z', vector: [1, 0] }] }, 400, 'ERR_INVALID_COLLECTION'],
      ['/v1/vectors/add', { collection: 'nope', entries: [{ id: 'z', vector: [1, 0, 0] }] }, 404, 'ERR_UNKNOWN_COLLECTION'],
      ['/v1/vectors/search', { collection: 'docs', vector: [1, 0, 0], k: 1001 }, 400, 'ERR_INVALID_PARAMETERS'],
      ['/v1/vectors/search', { collection: 'nope', vector: [1, 0, 0] }, 404, 'ERR_UNKNOWN_COLLECTION'],
      ['/v1/vectors/sync', { collections: ['nope'] }, 404, 'ERR_UNKNOWN_COLLECTION'],
      ['/v1/vectors/sync', { peers: 'x' }, 400, 'ERR_INVALID_PARAMETERS'],
    ]
    for (const [path, body, status, code] of bad) {
      const r = await call(sOn, 'POST', path, body)
      expect({ path, status: r.status, code: r.json?.error?.code }).toEqual({ path, status, code })
    }
    // nothing of the refused adds was written
    expect((await call(sOn, 'GET', '/v1/vectors')).json.collections[0].entries).toBe(2)
  })

  it('imports a file through the CLI in batches, with a progress bar only on a terminal and without --json', async () => {
    const dir = join(root, 'cli-on')
    await mkdir(dir, { recursive: true })
    const st = on.status()
    await writeControlFiles(dir, { pid: process.pid, host: '127.0.0.1', port: sOn.port, did: st.did, authority: st.authority, addrs: st.addrs, startedAt: 0 }, sOn.token)
    await call(sOn, 'POST', '/v1/vectors/create', { name: 'big', dimensions: 8 })
    // 1,500 entries: more than one add request (at most 1,024 entries each)
    const file = join(root, 'big.jsonl')
    await writeFile(file, Array.from({ length: 1500 }, (_, i) => JSON.stringify({ id: `e${i}`, vector: Array.from({ length: 8 }, (_, j) => ((i * 7 + j * 13) % 17) / 17 + 0.01) })).join('\n'))
    const run = async (args: string[], tty: boolean) => {
      let out = ''
      let err = ''
      const code = await runCli([...args, '--data-dir', dir], { stdout: (t) => (out += t), stderr: (t) => (err += t), env: {}, stderrIsTTY: tty })
      return { code, out, err }
    }
    const r = await run(['vectors', 'import', 'big', file], true)
    expect(r.code, r.err).toBe(0)
    expect(r.out).toMatch(/^imported 1500 entries into big/)
    const frames = r.err.split('\r').filter((x) => x.includes('entries'))
    expect(frames.length).toBeGreaterThanOrEqual(2)
    expect(frames[frames.length - 1]).toContain('100%  1500 of 1500 entries')
    // with --json: one document, no bar, even on a terminal; the entries replaced, not doubled
    const unknown = await run(['vectors', 'status', 'nope', '--json'], false)
    expect(unknown.code).toBe(ExitCode.FAILURE)
    expect(JSON.parse(unknown.out)).toMatchObject({ error: { code: 'ERR_UNKNOWN_COLLECTION' }, exitCode: 1 })
    expect((await run(['vectors', 'search', 'nope', '1,2'], false)).code).toBe(ExitCode.FAILURE)
    const h = await run(['vectors', 'status', 'big'], false)
    expect(h.out).toMatch(/^big: 8 dimensions, cos, f32, hash_based, 1 shard x 1 replica; 1500 entries held here$/m)
    expect(h.out).toMatch(new RegExp(`^  0 +yes +1500 +1500 +${on.did}$`, 'm'))
    expect(countLine(3, 4, 'shards')).toBe(`[${'#'.repeat(23)}${'-'.repeat(7)}]  75%  3 of 4 shards`)
    const j = await run(['vectors', 'import', 'big', file, '--json'], true)
    expect(j.err).toBe('')
    expect(JSON.parse(j.out)).toEqual({ collection: 'big', file, imported: 1500 })
    const s = await run(['vectors', 'status', 'big', '--json'], false)
    expect(JSON.parse(s.out).collections[0]).toMatchObject({ name: 'big', entries: 1500 })
    // a sync on a terminal ends with the bar's last frame; with --json only the document
    const sy = await run(['vectors', 'sync', 'big'], true)
    expect(sy.code, sy.err).toBe(0)
    expect(sy.err).toMatch(/\[#{30}\] 100%  1 of 1 shards, 0 entries fetched {2}\n$/)
    expect(sy.out).toContain('no other holder of these shards is connected')
    const sj = await run(['vectors', 'sync', 'big', '--json'], true)
    expect(sj.err).toBe('')
    expect(JSON.parse(sj.out)).toMatchObject({ collections: ['big'], status: 'completed', shards_total: 1 })
    // a file with vectors of the wrong length is refused before anything is sent
    const wrong = join(root, 'wrong.jsonl')
    await writeFile(wrong, '{"id":"w1","vector":[1,2,3,4,5,6,7,8]}\n{"id":"w2","vector":[1,2,3]}\n')
    const w = await run(['vectors', 'import', 'big', wrong, '--json'], false)
    expect(w.code).toBe(ExitCode.USAGE)
    expect(JSON.parse(w.out)).toMatchObject({ error: { code: 'ERR_INVALID_IMPORT_FILE', message: expect.stringContaining('line 2') } })
    expect((await call(sOn, 'GET', '/v1/vectors')).json.collections.find((c: { name: string }) => c.name === 'big').entries).toBe(1500)
  }, 60_000)

  it('reports the collections in the dashboard snapshot (the vectors section)', async () => {
    let snap: any
    for (let i = 0; i < 100; i++) {
      snap = (await call(sOn, 'GET', '/v1/dashboard')).json
      if (snap.extra?.vectors?.collections?.some((c: { name: string; entries: number }) => c.name === 'docs' && c.entries === 2) === true) break
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(snap.sections).toContain('vectors')
    const docs = snap.extra.vectors.collections.find((c: { name: string }) => c.name === 'docs')
    expect(docs).toMatchObject({ name: 'docs', dimensions: 3, sharding: { method: 'hash_based', shard_count: 2, replication_factor: 1 }, entries: 2 })
    expect(docs.shards).toHaveLength(2)
    for (const sh of docs.shards) expect(sh).toMatchObject({ held: true, holders: [on.did] })
    expect(snap.extra.vectors).toMatchObject({ more: 0, syncs: [], stats: { entriesRefused: 0 } })
  })

  it('a later entry with the same id in one add replaces the earlier one', async () => {
    await call(sOn, 'POST', '/v1/vectors/create', { name: 'dup', dimensions: 3 })
    const entries = Array.from({ length: 20 }, (_, i) => ({ id: `d${i % 2}`, vector: [i, 1, 0], metadata: { i } }))
    expect(await call(sOn, 'POST', '/v1/vectors/add', { collection: 'dup', entries })).toMatchObject({ status: 200, json: { added: 20 } })
    const r = await call(sOn, 'POST', '/v1/vectors/search', { collection: 'dup', vector: [1, 0, 0], k: 5 })
    expect(r.json.search.hits.map((h: { id: string; metadata: { i: number } }) => [h.id, h.metadata.i]).sort()).toEqual([['d0', 18], ['d1', 19]])
  })

  it('a sync with no other holder completes with no peers', async () => {
    const r = await call(sOn, 'POST', '/v1/vectors/sync', { collections: ['docs'] })
    expect(r).toMatchObject({ status: 200, json: { sync: { collections: ['docs'], status: 'completed', shards_done: 2, shards_total: 2, peers: [] } } })
  })

  it('answers 503 ERR_SERVICE_OFF (reason vectors) on a node without the service', async () => {
    for (const [m, p] of [['GET', '/v1/vectors'], ['POST', '/v1/vectors/create']] as const) {
      expect(await call(sOff, m, p, m === 'POST' ? { name: 'a', dimensions: 2 } : undefined)).toMatchObject({ status: 503, json: { error: { code: 'ERR_SERVICE_OFF', reason: 'vectors' } } })
    }
  })
})

describe('restart on a LevelDB store with index files', () => {
  it('keeps the collection and its entries; the index is loaded from its file', async () => {
    const identity = generateIdentity()
    const dir = join(root, 'level')
    const mk = (): KosMeshNode => createNode({ identity, authority: 'vl.mesh.kai', transports: [memory()], listen: ['memory://vl'], storage: levelStore({ path: join(dir, 'db') }), vectors: { dataDir: join(dir, 'vectors'), syncIntervalMs: 0 } })
    let n = mk()
    await n.start()
    const v = n.service<NodeVectors>('vectors')
    await v.create({ name: 'keep', dimensions: 2 })
    await v.add('keep', [{ id: 'p', vector: [1, 0] }, { id: 'q', vector: [0, 1] }])
    await n.stop()
    n = mk()
    await n.start()
    try {
      const s = await n.service<NodeVectors>('vectors').status()
      expect(s.collections).toEqual([expect.objectContaining({ name: 'keep', entries: 2, shards: [expect.objectContaining({ held: true, entries: 2, indexed: 2, index_file_loaded: true })] })])
      const r = await n.service<NodeVectors>('vectors').search('keep', [0.1, 1], { k: 1 })
      expect(r.hits.map((h) => h.id)).toEqual(['q'])
    } finally {
      await n.stop()
    }
    // a collection in the config: the same as the stored one starts, another one does not
    n = createNode({ identity, authority: 'vl.mesh.kai', transports: [memory()], listen: ['memory://vl'], storage: levelStore({ path: join(dir, 'db') }), vectors: { dataDir: join(dir, 'vectors'), syncIntervalMs: 0, collections: [{ name: 'keep', dimensions: 2 }, { name: 'more', dimensions: 5, metric: 'l2sq' }] } })
    await n.start()
    expect((await n.service<NodeVectors>('vectors').status()).collections.map((c) => [c.name, c.entries, c.metric])).toEqual([['keep', 2, 'cos'], ['more', 0, 'l2sq']])
    await n.stop()
    n = createNode({ identity, authority: 'vl.mesh.kai', transports: [memory()], listen: ['memory://vl'], storage: levelStore({ path: join(dir, 'db') }), vectors: { dataDir: join(dir, 'vectors'), syncIntervalMs: 0, collections: [{ name: 'keep', dimensions: 3 }] } })
    await expect(n.start()).rejects.toMatchObject({ name: 'InvalidCollectionError' })
    expect(n.isStarted()).toBe(false)
  })
})

describe('placement on the vector_storage nodes discovery knows', () => {
  it('splits two shards over two nodes (one replica each); a search from either asks the other for its shard', async () => {
    const network = createMemoryNetwork()
    const mk = (name: string): KosMeshNode => createNode({ authority: `${name}.mesh.kai`, transports: [memory({ network })], listen: [`memory://${name}`], vectors: { syncIntervalMs: 0 } })
    const [x, y] = [mk('px'), mk('py')]
    await Promise.all([x.start(), y.start()])
    try {
      await x.connect('memory://py')
      await x.trust(y.did, 8)
      await y.trust(x.did, 8)
      const [vx, vy] = [x.service<NodeVectors>('vectors'), y.service<NodeVectors>('vectors')]
      const config = { name: 'split', dimensions: 2, sharding: { shard_count: 2, replication_factor: 1 } }
      await vx.create(config)
      await vy.create(config)
      // each node's view: both nodes are storage nodes, each shard has one holder, the two views agree
      let views: Array<Awaited<ReturnType<NodeVectors['status']>>> = []
      for (let i = 0; i < 200; i++) {
        views = await Promise.all([vx.status(), vy.status()])
        const holders = views.map((v) => v.collections[0]!.shards.map((s) => s.holders.join()))
        const both = views[0]!.collections[0]!.shards.some((sh) => sh.holders.includes(y.did)) || views[1]!.collections[0]!.shards.some((sh) => sh.holders.includes(x.did))
        if (both && holders[0]!.every((h) => h.split(',').length === 1) && holders[0]!.join('|') === holders[1]!.join('|')) break
        await new Promise((r) => setTimeout(r, 25))
      }
      // every shard has exactly one holder (rendezvous hashing may put both on one node), the same in both views
      const holderOf = views[0]!.collections[0]!.shards.map((sh) => sh.holders)
      expect(holderOf.every((h) => h.length === 1)).toBe(true)
      expect(views[1]!.collections[0]!.shards.map((sh) => sh.holders)).toEqual(holderOf)
      const held = views.map((v) => v.collections[0]!.shards.filter((sh) => sh.held).map((sh) => sh.shard))
      expect(held.flat().sort()).toEqual([0, 1])
      // x writes 20 entries: those of a shard y holds are pushed there (x keeps only its own shards)
      await vx.add('split', Array.from({ length: 20 }, (_, i) => ({ id: `k${i}`, vector: [Math.cos(i / 3), Math.sin(i / 3)] })))
      const [sx, sy] = await Promise.all([vx.status(), vy.status()])
      expect(sx.collections[0]!.entries + sy.collections[0]!.entries).toBe(20)
      expect(sy.collections[0]!.entries).toBe(sy.collections[0]!.shards.filter((sh) => sh.held).reduce((n, sh) => n + sh.entries, 0))
      // a search from either node: every shard answered by its holder, all 20 entries found
      for (const v of [vx, vy]) {
        const r = await v.search('split', [1, 0], { k: 20 })
        expect(r.complete).toBe(true)
        expect(r.hits).toHaveLength(20)
        expect(r.shards.map((sh) => [sh.shard, sh.answeredBy])).toEqual(holderOf.map((h, i) => [i, h[0]]))
      }
    } finally {
      await Promise.allSettled([x.stop(), y.stop()])
    }
  }, 60_000)
})
