/**
 * Issue 13, the node side: nodes on @kos-mesh/transport-libp2p (`libp2p()`), in one process on
 * loopback. Addresses are `libp2p:///ip4/.../tcp/<port>/p2p/<PeerId>/did:...` (the PeerId is the
 * node's key), a task makes the round trip, the receiver's trust policy still refuses an untrusted
 * sender, a wrong DID is refused by the libp2p handshake, and a node record carries libp2p
 * addresses so that a peer learnt through a peer table can be dialled. Then the config keys
 * (`transport`, `libp2p`) and the CLI flags (`--transport`, `--listen <multiaddr>`).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { networkInterfaces, tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { peerIdFromDid } from '@kos-mesh/transport-libp2p'
import { createNode, echoAgent, libp2p, mathAgent, type KosMeshNode } from '../src/index.js'
import { fromRecordAddress, parseLibp2pAddress, toRecordAddress } from '../src/addresses.js'
import { checkNodeAddress, DEFAULT_LIBP2P_LISTEN, defaultConfig, libp2pInit, listenAddresses, parseConfig } from '../src/config.js'
import { ExitCode, runCli } from '../src/cli-app.js'

const LOOPBACK = 'libp2p:///ip4/127.0.0.1/tcp/0'
const nodes: KosMeshNode[] = []

afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
})

async function start(init: Parameters<typeof createNode>[0]): Promise<KosMeshNode> {
  const n = createNode({ transports: [libp2p()], listen: [LOOPBACK], ...init })
  nodes.push(n)
  await n.start()
  return n
}

async function until(what: string, cond: () => boolean): Promise<void> {
  // bounded by the test timeout; polls, no timing assertion
  while (!cond()) await new Promise((r) => setTimeout(r, 25))
  expect(cond(), what).toBe(true)
}

describe('two nodes over libp2p', () => {
  it('addresses carry the PeerId and the DID; a task makes the round trip', async () => {
    const b = await start({ authority: 'b.mesh.kai', agents: [mathAgent()] })
    const a = await start({ authority: 'a.mesh.kai', agents: [echoAgent()] })
    const addr = b.addrs()[0] as string
    const parsed = parseLibp2pAddress(addr)
    expect(addr.startsWith('libp2p:///ip4/127.0.0.1/tcp/')).toBe(true)
    expect(parsed.peerId).toBe(peerIdFromDid(b.did).toString())
    expect(parsed.did).toBe(b.did)
    const info = await a.connect(addr)
    expect(info.did).toBe(b.did)
    const r = await a.task('klp://b.mesh.kai/agents/math', { capability: 'math', input: '6 * 7' })
    expect((r.result as { value: number }).value).toBe(42)
    // and back the other way, on the same connection
    const e = await b.task('klp://a.mesh.kai/agents/echo', { capability: 'echo', input: 'over libp2p' })
    expect(e.result).toBe('over libp2p')
    expect(a.peers().find((p) => p.did === b.did)?.connected).toBe(true)
  })

  it('the receiver\'s trust policy is enforced: untrusted refused, trusted accepted', async () => {
    const b = await start({ authority: 'vault.mesh.kai', agents: [mathAgent()], taskMinTrust: 5 })
    const a = await start({ authority: 'a.mesh.kai' })
    await a.connect(b.addrs()[0] as string)
    const ask = (): Promise<unknown> => a.task('klp://vault.mesh.kai/agents/math', { capability: 'math', input: '2 ^ 10' })
    await expect(ask()).rejects.toMatchObject({ reason: 'insufficient_trust' })
    await b.trust(a.did, 7)
    await expect(ask()).resolves.toMatchObject({ result: { value: 1024 } })
  })

  it('an address naming another DID is refused by the handshake (PeerMismatchError)', async () => {
    const b = await start({ authority: 'b.mesh.kai' })
    const a = await start({ authority: 'a.mesh.kai' })
    const other = generateIdentity().did
    const base = (b.addrs()[0] as string).split('/p2p/')[0] as string
    await expect(a.connect(`${base}/${other}`)).rejects.toMatchObject({ name: 'PeerMismatchError' })
    expect(a.peers().some((p) => p.connected)).toBe(false)
  })

  it('node records carry libp2p addresses: a peer learnt from a peer table is dialled there', async () => {
    const seed = await start({ authority: 'seed.mesh.kai' })
    const a = await start({ authority: 'a.mesh.kai', agents: [echoAgent()], seeds: [seed.addrs()[0] as string] })
    const c = await start({ authority: 'c.mesh.kai', seeds: [seed.addrs()[0] as string] })
    const record = seed.record()
    expect(record?.network_info.addresses[0]).toMatchObject({ protocol: 'libp2p', address: expect.stringMatching(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/) })
    await until('c knows a with a libp2p address from its record', () => (c.peers().find((p) => p.did === a.did)?.addresses ?? []).some((x) => x.startsWith('libp2p:///ip4/127.0.0.1/tcp/')))
    const addr = (c.peers().find((p) => p.did === a.did)?.addresses ?? []).find((x) => x.startsWith('libp2p://')) as string
    await c.connect(`${addr}/${a.did}`)
    expect(c.peers().find((p) => p.did === a.did)?.connected).toBe(true)
    const r = await c.task(a.did, { capability: 'echo', input: 'found you' })
    expect(r.result).toBe('found you')
  })
})

describe('a libp2p listen address in use', () => {
  it('fails start with AddressInUseError naming the address', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as { port: number }).port
    try {
      const n = createNode({ transports: [libp2p()], listen: [`libp2p:///ip4/127.0.0.1/tcp/${port}`] })
      nodes.push(n)
      await expect(n.start()).rejects.toMatchObject({ name: 'AddressInUseError', message: expect.stringContaining(`libp2p:///ip4/127.0.0.1/tcp/${port}`) })
    } finally {
      server.close()
    }
  })
})

describe('libp2p addresses in node records', () => {
  it('converts both ways, dropping the DID and the trailing /p2p', () => {
    const did = generateIdentity().did
    const pid = peerIdFromDid(did).toString()
    const na = toRecordAddress(`libp2p:///ip4/192.0.2.7/tcp/4747/p2p/${pid}/${did}`, { is_public: true })
    expect(na).toEqual({ protocol: 'libp2p', address: '/ip4/192.0.2.7/tcp/4747', port: 4747, is_public: true, is_relay: false })
    expect(fromRecordAddress(na!)).toBe('libp2p:///ip4/192.0.2.7/tcp/4747')
    expect(toRecordAddress('tcp://192.0.2.7:4747')).toMatchObject({ protocol: 'tcp', address: '192.0.2.7', port: 4747 })
    expect(fromRecordAddress({ protocol: 'libp2p', address: '/ip4/1.2.3.4/tcp/1/did:key:z6Mk', port: 1, is_public: false, is_relay: false })).toBeUndefined()
    expect(fromRecordAddress({ protocol: 'libp2p', address: 'not a multiaddr', port: 1, is_public: false, is_relay: false })).toBeUndefined()
  })

  it('listening on 0.0.0.0, the record leaves loopback out when the host has another interface', async () => {
    const n = await start({ listen: ['libp2p:///ip4/0.0.0.0/tcp/0'] })
    const printed = n.addrs()
    expect(printed.length).toBeGreaterThan(0)
    const published = (n.record()?.network_info.addresses ?? []).map((a) => a.address)
    const external = Object.values(networkInterfaces()).flat().some((i) => i !== undefined && i.family === 'IPv4' && !i.internal)
    if (external) {
      expect(published.length).toBeGreaterThan(0)
      expect(published.some((a) => a.startsWith('/ip4/127.'))).toBe(false)
    } else {
      expect(published.every((a) => a.startsWith('/ip4/127.'))).toBe(true)
    }
  })

  it('a node publishes a libp2p address given with publish', async () => {
    const n = await start({ publish: ['libp2p:///ip4/203.0.113.7/tcp/4747'] })
    expect(n.record()?.network_info.addresses).toEqual([{ protocol: 'libp2p', address: '/ip4/203.0.113.7/tcp/4747', port: 4747, is_public: true, is_relay: false }])
    expect(() => createNode({ publish: ['libp2p:///ip4/203.0.113.7/tcp/4747/did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'] })).toThrow(/no DID/)
  })
})

describe('config: transport and libp2p', () => {
  const base = (): Record<string, unknown> => JSON.parse(JSON.stringify(defaultConfig('n1'))) as Record<string, unknown>
  const did = generateIdentity().did
  const pid = peerIdFromDid(did).toString()

  it('accepts transport libp2p with listen multiaddrs and transport options', () => {
    const c = parseConfig({ ...base(), transport: 'libp2p', listen: [], libp2p: { listen: ['/ip4/0.0.0.0/tcp/4747', 'libp2p:///ip6/::/tcp/4747'], dialTimeoutMs: 5000, maxFrameSize: 65536 }, seeds: [`/ip4/192.0.2.7/tcp/4747/p2p/${pid}/${did}`] })
    expect(c.transport).toBe('libp2p')
    expect(c.libp2p).toEqual({ listen: ['/ip4/0.0.0.0/tcp/4747', '/ip6/::/tcp/4747'], dialTimeoutMs: 5000, maxFrameSize: 65536 })
    // seeds are kept in the libp2p:// form
    expect(c.seeds).toEqual([`libp2p:///ip4/192.0.2.7/tcp/4747/p2p/${pid}/${did}`])
    expect(listenAddresses(c)).toEqual(['libp2p:///ip4/0.0.0.0/tcp/4747', 'libp2p:///ip6/::/tcp/4747'])
    expect(libp2pInit(c.libp2p)).toEqual({ dialTimeoutMs: 5000, maxFrameSize: 65536, features: {} })
    // an old config has no transport: tcp, unchanged
    const old = parseConfig(base())
    expect(old.transport).toBeUndefined()
    expect(listenAddresses(old)).toEqual(['tcp://127.0.0.1:4747'])
  })

  it('refuses what does not fit, with InvalidConfigError naming the key', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ transport: 'quic' }, /^transport: expected one of tcp, libp2p/],
      [{ transport: 'libp2p' }, /^listen: expected \[\] with transport libp2p/],
      [{ transport: 'libp2p', listen: [], seeds: [`tcp://127.0.0.1:4747/${did}`] }, /^seeds\[0\]: expected a libp2p address/],
      [{ seeds: [`libp2p:///ip4/127.0.0.1/tcp/4747/${did}`] }, /^seeds\[0\]: expected a TCP address.*transport is tcp/],
      [{ transport: 'libp2p', listen: [], libp2p: { listen: ['/ip4/1.2.3/tcp/1'] } }, /^libp2p\.listen\[0\]: expected an IPv4 address/],
      [{ transport: 'libp2p', listen: [], libp2p: { listen: ['/ip4/127.0.0.1/udp/1/quic-v1'] } }, /^libp2p\.listen\[0\]: expected multiaddr components/],
      [{ transport: 'libp2p', listen: [], libp2p: { listen: [`/ip4/127.0.0.1/tcp/1/p2p/${pid}`] } }, /^libp2p\.listen\[0\]: expected a listen multiaddr without \/p2p/],
      [{ libp2p: { listen: [], announced: [] } }, /^libp2p: expected one of listen, .*unknown key "announced"/],
      [{ libp2p: { maxFrameSize: 0 } }, /^libp2p\.maxFrameSize: expected an integer/],
      [{ libp2p: { streamWindowBytes: 1024 } }, /^libp2p\.streamWindowBytes: expected an integer in 262144/],
      [{ libp2p: { maxFrameSize: 4096, maxOutboundBufferBytes: 1024 } }, /^libp2p\.maxOutboundBufferBytes: expected at least maxFrameSize/],
      [{ transport: 'libp2p', listen: [], publish: ['libp2p:///ip4/0.0.0.0/tcp/4747'] }, /^publish\[0\]: expected a host other nodes can dial/],
      [{ transport: 'libp2p', listen: [], seeds: ['libp2p:///ip4/127.0.0.1/tcp/0'] }, /^seeds\[0\]: expected a port in 1\.\.65535/],
      [{ transport: 'libp2p', listen: [], seeds: ['libp2p:///ip4/127.0.0.1/tcp/1/did:key:nope'] }, /^seeds\[0\]: /],
    ]
    for (const [patch, re] of bad) {
      let err: unknown
      try {
        parseConfig({ ...base(), ...patch })
      } catch (e) {
        err = e
      }
      expect(err, JSON.stringify(patch)).toMatchObject({ name: 'InvalidConfigError' })
      expect((err as Error).message, JSON.stringify(patch)).toMatch(re)
    }
  })

  it('checkNodeAddress takes either transport unless told, and names libp2p addresses canonically', () => {
    expect(checkNodeAddress(`/ip4/127.0.0.1/tcp/4747/p2p/${pid}`, 'dial', 'address')).toBe(`libp2p:///ip4/127.0.0.1/tcp/4747/p2p/${pid}`)
    expect(checkNodeAddress(`tcp://127.0.0.1:4747/${did}`, 'dial', 'address')).toBe(`tcp://127.0.0.1:4747/${did}`)
    expect(() => checkNodeAddress('libp2p:///ip4/127.0.0.1/tcp/4747', 'dial', 'address', 'tcp')).toThrow(/transport is tcp/)
    expect(() => checkNodeAddress('libp2p://', 'dial', 'address')).toThrow(/expected libp2p:\/\/<multiaddr>/)
  })
})

describe('CLI: --transport libp2p', () => {
  let root: string
  const ENV = { KOS_MESH_PASSPHRASE: 'pw' }
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'kos-libp2p-cli-'))
  })
  afterAll(async () => {
    await rm(root, { recursive: true, force: true })
  })
  async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = ''
    let err = ''
    const code = await runCli(args, { stdout: (s) => (out += s), stderr: (s) => (err += s), env: ENV })
    return { code, out, err }
  }
  const config = async (dir: string): Promise<Record<string, any>> => JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, any>

  it('init --transport libp2p writes the libp2p listen multiaddr (default port 4747); --listen takes multiaddrs', async () => {
    const dir = join(root, 'a')
    const r = await run(['init', '--data-dir', dir, '--name', 'a', '--transport', 'libp2p'])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain(`listen:     libp2p://${DEFAULT_LIBP2P_LISTEN}`)
    expect(await config(dir)).toMatchObject({ transport: 'libp2p', listen: [], libp2p: { listen: ['/ip4/127.0.0.1/tcp/4747'] } })
    const f = await run(['init', '--force', '--data-dir', dir, '--listen', '/ip4/0.0.0.0/tcp/4800'])
    expect(f.code, f.err).toBe(0)
    expect(await config(dir)).toMatchObject({ transport: 'libp2p', listen: [], libp2p: { listen: ['/ip4/0.0.0.0/tcp/4800'] } })
    // and back to tcp: its default listen address returns
    const t = await run(['init', '--force', '--data-dir', dir, '--transport', 'tcp'])
    expect(t.code, t.err).toBe(0)
    expect(await config(dir)).toMatchObject({ transport: 'tcp', listen: ['tcp://127.0.0.1:4747'] })
  })

  it('bad values are usage errors (exit 2) naming the option', async () => {
    const dir = join(root, 'bad')
    const t = await run(['init', '--json', '--data-dir', dir, '--transport', 'quic'])
    expect(t.code).toBe(ExitCode.USAGE)
    expect(JSON.parse(t.out)).toMatchObject({ error: { name: 'UsageError', message: expect.stringMatching(/^--transport: expected one of tcp, libp2p/) } })
    const l = await run(['init', '--json', '--data-dir', dir, '--transport', 'libp2p', '--listen', 'tcp://127.0.0.1:4747'])
    expect(l.code).toBe(ExitCode.USAGE)
    expect(JSON.parse(l.out)).toMatchObject({ error: { code: 'ERR_INVALID_ADDRESS', message: expect.stringMatching(/^--listen: /) } })
    const s = await run(['init', '--json', '--data-dir', dir, '--transport', 'libp2p', '--seed', 'tcp://127.0.0.1:4747'])
    expect(s.code).toBe(ExitCode.USAGE)
    expect(JSON.parse(s.out)).toMatchObject({ error: { message: expect.stringMatching(/^--seed: expected a libp2p address/) } })
    const c = await run(['connect', '--json', '--data-dir', dir, 'libp2p:///ip4/127.0.0.1/tcp/0'])
    expect(c.code).toBe(ExitCode.USAGE)
  })
})
