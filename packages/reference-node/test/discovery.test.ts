/**
 * Issue 12 in-process: the node runs the DHT and gossip by default. On a memory network
 * b <- c <- d and b <- a (seeds), with no discovery auto-dial, `a` finds `d`'s capability through
 * the DHT alone; `dht find` and `dht providers` return d's verified record; a broadcast reaches
 * every node and is counted; the DHT's contacts survive a restart in the node's store; and the
 * control API and the CLI commands (`discover`, `dht`, `broadcast`, `status`) with their JSON
 * documents and exit codes. Every wait polls with a deadline.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { DEFAULT_CONTACT_PREFIX, type DhtService, type GossipService, type PeerDiscovery } from '@kos-mesh/peer-discovery'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { ExitCode, runCli } from '../src/cli-app.js'
import { discoveryInit, parseConfig, defaultConfig } from '../src/config.js'
import { startControlServer, writeControlFiles, type ControlServer } from '../src/control.js'
import { createNode, memory, memoryStore, type KosMeshNode, type NodeInit, type NodeStore } from '../src/index.js'

const network = createMemoryNetwork()
const nodes: KosMeshNode[] = []
let root: string
let dirA: string
let dirOff: string
let server: ControlServer
let offServer: ControlServer
let a: KosMeshNode
let b: KosMeshNode
let c: KosMeshNode
let d: KosMeshNode
let off: KosMeshNode
const storeC: NodeStore = memoryStore()
const identityC = generateIdentity()

// discovery never dials on its own: what `a` learns of `d` comes from the DHT (or gossip)
const QUIET: NodeInit = { discovery: { autoDial: false, refreshIntervalMs: 0, announceIntervalMs: 0 } }

function node(name: string, init: NodeInit = {}): KosMeshNode {
  const n = createNode({ authority: `${name}.mesh.kai`, transports: [memory({ network })], listen: [`memory://${name}`], reconnect: false, ...QUIET, ...init })
  nodes.push(n)
  return n
}

async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`expected ${what} within ${ms} ms`)
}

async function run(args: string[], dir = dirA): Promise<{ code: number; out: string; err: string; doc: any }> {
  let out = ''
  let err = ''
  const code = await runCli([...args, '--data-dir', dir], { stdout: (s) => (out += s), stderr: (s) => (err += s), env: {} })
  let doc: unknown
  try {
    doc = JSON.parse(out)
  } catch {
    doc = undefined
  }
  return { code, out, err, doc }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-discovery-'))
  b = node('b')
  await b.start()
  c = node('c', { identity: identityC, seeds: b.addrs(), storage: storeC })
  await c.start()
  a = node('a', { seeds: b.addrs() })
  await a.start()
  // d starts last: a's bootstrap (b's peer table) could not tell it about d
  d = node('d', { seeds: c.addrs(), capabilities: { vector_storage: true } })
  await d.start()
  off = node('off', { dht: false, gossip: false, seeds: b.addrs() })
  await off.start()
  dirA = join(root, 'a')
  dirOff = join(root, 'off')
  await mkdir(dirA, { mode: 0o700 })
  await mkdir(dirOff, { mode: 0o700 })
  server = await startControlServer({ node: a })
  offServer = await startControlServer({ node: off })
  for (const [dir, n, srv] of [[dirA, a, server], [dirOff, off, offServer]] as const) {
    const s = n.status()
    await writeControlFiles(dir, { pid: 999_999, host: '127.0.0.1', port: srv.port, did: s.did, authority: s.authority, addrs: s.addrs, startedAt: 0 }, srv.token)
  }
})

afterAll(async () => {
  await server?.close()
  await offServer?.close()
  await Promise.allSettled(nodes.map((n) => n.stop()))
  await rm(root, { recursive: true, force: true })
})

describe('the node runs the DHT and gossip by default', () => {
  it('a finds d (vector_storage) through the DHT though it was never told about it', async () => {
    // (d's DHT may have dialled a, but no peer table ever carried d's record to a)
    expect(a.service<PeerDiscovery>('discovery').registry.has(d.did)).toBe(false)
    expect(d.service<DhtService>('dht').provided()).toEqual(['capability:vector_storage'])
    const r = await a.mesh.discover({ capabilities: ['vector_storage'] })
    expect(r.sources).toEqual({ dht: 'asked', gossip: 'asked' })
    expect(r.peers.map((p) => p.peer_id)).toEqual([d.did])
    expect(r.peers[0]).toMatchObject({ discovery_method: 'dht', authority: 'd.mesh.kai', capabilities: ['vector_storage'], addresses: ['memory://d'] })
    expect(r.peers[0]!.found_by).toContain('dht')
    // nobody offers archive_services
    expect((await a.mesh.discover({ capabilities: ['archive_services'], gossip: false })).peers).toEqual([])
  })

  it('dht find returns the verified record; dht providers the provider', async () => {
    const rec = await a.mesh.findNode(d.did)
    expect(rec).toMatchObject({ did: d.did, authority: 'd.mesh.kai', role: 'PeerNode', capabilities: ['vector_storage'], addresses: ['memory://d'] })
    expect(rec.expires_at).toBeGreaterThan(rec.timestamp)
    const providers = await a.mesh.findProviders('capability:vector_storage')
    expect(providers.map((p) => p.provider)).toEqual([d.did])
    await expect(a.mesh.findNode(generateIdentity().did)).rejects.toMatchObject({ name: 'NodeNotFoundError' })
  })

  it('a broadcast reaches every node once, through the gossip overlay, and is counted', async () => {
    const mesh = [a, b, c, d]
    await eventually('every node has a gossip neighbour', () => mesh.every((n) => n.service<GossipService>('gossip').neighbors().length > 0))
    const sent = await a.mesh.broadcast({ hello: 'mesh' })
    expect(sent.strategy).toBe('gossip')
    for (const n of [b, c, d]) {
      await eventually(`${n.authority} receives the broadcast`, () => n.mesh.broadcasts().some((x) => x.message_id === sent.message_id))
      expect(n.mesh.broadcasts().filter((x) => x.message_id === sent.message_id)).toEqual([expect.objectContaining({ from: a.did, authority: 'a.mesh.kai', data: { hello: 'mesh' } })])
    }
    expect(a.mesh.broadcasts()).toEqual([])
    expect(a.status().mesh?.broadcasts).toEqual({ sent: 1, received: 0 })
    expect(d.status().mesh?.broadcasts.received).toBe(1)
    const m = a.metricsText()
    expect(m).toMatch(/^kos_mesh_broadcasts_total\{direction="sent"\} 1$/m)
    expect(m).toMatch(/^kos_mesh_dht_contacts [1-9]\d*$/m)
    expect(m).toMatch(/^kos_mesh_gossip_view_size\{view="active"\} [1-9]\d*$/m)
    expect(d.metricsText()).toMatch(/^kos_mesh_dht_provided_names 1$/m)
  })

  it('status reports the DHT and gossip; a node with both off reports null', async () => {
    const s = d.status().mesh!
    expect(s.dht).toMatchObject({ joined: true, provided: ['capability:vector_storage'] })
    expect(s.dht!.contacts).toBeGreaterThan(0)
    expect(s.gossip!.active).toBeGreaterThan(0)
    expect(off.status().mesh).toEqual({ dht: null, gossip: null, broadcasts: { sent: 0, received: 0 } })
    await expect(off.mesh.findNode(d.did)).rejects.toMatchObject({ name: 'ServiceOffError', code: 'ERR_SERVICE_OFF' })
    expect(() => off.service('dht')).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })

  it('keeps the DHT contacts in the store across a restart', async () => {
    const before = c.service<DhtService>('dht').contacts().map((x) => x.did).sort()
    expect(before.length).toBeGreaterThan(0)
    await c.stop()
    const keys: string[] = []
    for await (const { key } of storeC.query(DEFAULT_CONTACT_PREFIX)) keys.push(key.slice(DEFAULT_CONTACT_PREFIX.length))
    expect(keys.sort()).toEqual(before)
    // the same identity and store, no seeds: the table is back before any connection
    const again = createNode({ identity: identityC, authority: 'c.mesh.kai', transports: [memory({ network })], listen: ['memory://c'], reconnect: false, storage: storeC, ...QUIET })
    nodes.push(again)
    await again.start()
    const dht = again.service<DhtService>('dht')
    expect(dht.stats().restored).toBe(before.length)
    expect(dht.contacts().map((x) => x.did).sort()).toEqual(before)
    // and the restored table is enough to look a node up
    expect((await again.mesh.findNode(d.did)).did).toBe(d.did)
  })
})

describe('config keys dht, gossip and discovery', () => {
  it('parses false, options and unknown keys', () => {
    const cfg = parseConfig({ ...defaultConfig('x'), dht: { k: 8, provide: ['agent:summarizer'], requestTimeoutMs: 2000 }, gossip: false, discovery: { autoDial: false, targetPeers: 3 } })
    expect(cfg).toMatchObject({ dht: { k: 8, provide: ['agent:summarizer'], requestTimeoutMs: 2000 }, gossip: false, discovery: { autoDial: false, targetPeers: 3 } })
    expect(discoveryInit(cfg)).toEqual({ dht: { provide: ['agent:summarizer'], requestTimeoutMs: 2000, kad: { k: 8 } }, gossip: false, discovery: { autoDial: false, targetPeers: 3 } })
    expect(discoveryInit(defaultConfig('y'))).toEqual({ dht: {}, gossip: {} })
    expect(parseConfig(defaultConfig('z'))).not.toHaveProperty('dht')
    for (const bad of [{ dht: { kk: 1 } }, { dht: 'off' }, { dht: { k: 0 } }, { gossip: { activeViewSize: 1.5 } }, { discovery: { autoDial: 'no' } }, { dht: { provide: ['has space'] } }]) {
      expect(() => parseConfig({ ...defaultConfig('x'), ...bad }), JSON.stringify(bad)).toThrow(expect.objectContaining({ name: 'InvalidConfigError' }))
    }
  })
})

describe('CLI and control API: discover, dht, broadcast', () => {
  it('discover --capability prints the ranked peers, with --json the document', async () => {
    const j = await run(['discover', '--capability', 'vector_storage', '--max', '10', '--json'])
    expect(j.code, j.err).toBe(0)
    expect(j.doc.peers.map((p: { peer_id: string }) => p.peer_id)).toEqual([d.did])
    expect(j.doc.peers[0]).toMatchObject({ discovery_method: 'dht', capabilities: ['vector_storage'], trust_score: expect.any(Number) })
    const h = await run(['discover', '--capability', 'vector_storage', '--no-gossip'])
    expect(h.code, h.err).toBe(0)
    expect(h.out).toMatch(/^DID +AUTHORITY +METHOD +FOUND BY +TRUST +CAPABILITIES +ADDRESSES$/m)
    expect(h.out).toContain(`${d.did}  d.mesh.kai  dht`)
    expect(h.out).toContain('dht asked, gossip skipped')
    const all = await run(['discover', '--no-dht', '--no-gossip', '--json'])
    expect(all.doc.sources).toEqual({ dht: 'skipped', gossip: 'skipped' })
  })

  it('dht find and dht providers', async () => {
    const f = await run(['dht', 'find', d.did, '--json'])
    expect(f.code, f.err).toBe(0)
    expect(f.doc).toMatchObject({ did: d.did, role: 'PeerNode', capabilities: ['vector_storage'], addresses: ['memory://d'] })
    const h = await run(['dht', 'find', d.did])
    expect(h.out).toMatch(/^role: +PeerNode$/m)
    expect(h.out).toMatch(/^capabilities: +vector_storage$/m)
    const p = await run(['dht', 'providers', 'vector_storage', '--json'])
    expect(p.code, p.err).toBe(0)
    expect(p.doc).toMatchObject({ name: 'capability:vector_storage', providers: [expect.objectContaining({ provider: d.did, authority: 'd.mesh.kai' })] })
    const missing = await run(['dht', 'find', generateIdentity().did, '--json'])
    expect(missing.code).toBe(ExitCode.UNREACHABLE)
    expect(missing.doc).toMatchObject({ exitCode: 5, error: { code: 'ERR_NODE_NOT_FOUND' } })
  })

  it('broadcast sends, --received lists, status counts', async () => {
    const r = await run(['broadcast', 'hello from a', '--json'])
    expect(r.code, r.err).toBe(0)
    expect(r.doc).toMatchObject({ message_id: expect.any(String), strategy: 'gossip' })
    await eventually('b receives it', () => b.mesh.broadcasts().some((x) => x.message_id === r.doc.message_id && x.data === 'hello from a'))
    const data = await run(['broadcast', '--data', '{"n":1}'])
    expect(data.code, data.err).toBe(0)
    expect(data.out).toMatch(/^broadcast \S+ sent \(gossip, \d+ neighbours?\)\n$/)
    const list = await run(['broadcast', '--received', '--json'])
    expect(list.doc).toMatchObject({ broadcasts: [], sent: 3 })
    const s = await run(['status'])
    expect(s.out).toMatch(/^dht: +[1-9]\d* contacts?, \d+ provider records? held, provides nothing$/m)
    expect(s.out).toMatch(/^gossip: +active view [1-9]\d*, passive view \d+$/m)
    expect(s.out).toMatch(/^broadcasts: 3 sent, 0 received$/m)
    const json = await run(['status', '--json'])
    expect(json.doc.mesh).toMatchObject({ broadcasts: { sent: 3, received: 0 }, dht: { joined: true } })
  })

  it('usage errors exit 2 before any request; a service turned off exits 6', async () => {
    for (const args of [
      ['discover', '--capability', 'teleport'],
      ['discover', '--max', '0'],
      ['discover', '--hops', '99'],
      ['discover', 'extra'],
      ['dht'],
      ['dht', 'lookup', d.did],
      ['dht', 'find'],
      ['dht', 'find', 'did:key:!!'],
      ['dht', 'find', d.did, '--count', '3'],
      ['dht', 'providers', 'has space'],
      ['broadcast'],
      ['broadcast', 'x', '--data', '1'],
      ['broadcast', '--data', '{nope'],
      ['broadcast', '--received', 'x'],
    ]) {
      const r = await run([...args, '--json'], join(root, 'nowhere'))
      expect(r.code, args.join(' ')).toBe(ExitCode.USAGE)
      expect(r.doc, args.join(' ')).toMatchObject({ exitCode: 2, error: { name: 'UsageError' } })
    }
    const offFind = await run(['dht', 'find', d.did, '--json'], dirOff)
    expect(offFind.code).toBe(ExitCode.CONFIG)
    expect(offFind.doc).toMatchObject({ error: { code: 'ERR_SERVICE_OFF', hint: expect.stringContaining('"dht": false') } })
    // discover still answers from the peer tables when the DHT and gossip are off
    const offDiscover = await run(['discover', '--json'], dirOff)
    expect(offDiscover.code, offDiscover.err).toBe(0)
    expect(offDiscover.doc.sources).toEqual({ dht: 'off', gossip: 'off' })
  })
})
