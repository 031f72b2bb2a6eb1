/**
 * A node with TCP and libp2p at once: a TCP-only node and a libp2p-only node both reach it (and run
 * a task on it), its record carries both kinds of addresses, and the config / CLI take
 * `transport: ["tcp", "libp2p"]` / `--transport tcp,libp2p`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { runCli } from '../src/cli-app.js'
import { defaultConfig, hasTransport, listenAddresses, parseConfig, transportsOf } from '../src/config.js'
import { tcp } from '@kos-mesh/transport-tcp'
import { createNode, echoAgent, libp2p, type KosMeshNode } from '../src/index.js'

const nodes: KosMeshNode[] = []
afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
})

async function start(init: Parameters<typeof createNode>[0]): Promise<KosMeshNode> {
  const n = createNode(init)
  nodes.push(n)
  await n.start()
  return n
}

describe('a node on tcp and libp2p at once', () => {
  it('is reached by a TCP-only node and by a libp2p-only node; its record carries both kinds of addresses', async () => {
    const mixed = await start({
      authority: 'mixed.mesh.kai',
      transports: [tcp(), libp2p()],
      listen: ['tcp://127.0.0.1:0', 'libp2p:///ip4/127.0.0.1/tcp/0'],
      agents: [echoAgent()],
    })
    const addrs = mixed.addrs()
    const tcpAddr = addrs.find((a) => a.startsWith('tcp://'))
    const p2pAddr = addrs.find((a) => a.startsWith('libp2p://'))
    expect(tcpAddr).toBeDefined()
    expect(p2pAddr).toBeDefined()
    const kinds = (mixed.record()?.network_info.addresses ?? []).map((a) => a.protocol).sort()
    expect(kinds).toEqual(['libp2p', 'tcp'])

    const t = await start({ authority: 't.mesh.kai', transports: [tcp()], listen: ['tcp://127.0.0.1:0'] })
    const l = await start({ authority: 'l.mesh.kai', transports: [libp2p()], listen: ['libp2p:///ip4/127.0.0.1/tcp/0'] })
    // each one only has its own transport: it cannot use the other address
    await expect(t.connect(p2pAddr!)).rejects.toMatchObject({ name: expect.stringMatching(/^(InvalidAddressError|NoTransportError)$/) })
    expect((await t.connect(tcpAddr!)).did).toBe(mixed.did)
    expect((await l.connect(p2pAddr!)).did).toBe(mixed.did)
    expect(mixed.peers().filter((p) => p.connected).map((p) => p.did).sort()).toEqual([t.did, l.did].sort())
    // a task over each transport
    expect((await t.task('klp://mixed.mesh.kai/agents/echo', { capability: 'echo', input: 'over tcp' })).result).toBe('over tcp')
    expect((await l.task('klp://mixed.mesh.kai/agents/echo', { capability: 'echo', input: 'over libp2p' })).result).toBe('over libp2p')
  })
})

describe('config and CLI: transport tcp,libp2p', () => {
  it('parses a list of transports; listen addresses of both; seeds of either kind', () => {
    const c = parseConfig({
      ...defaultConfig(),
      transport: ['tcp', 'libp2p'],
      listen: ['tcp://127.0.0.1:4747'],
      libp2p: { listen: ['/ip4/127.0.0.1/tcp/4748'] },
      seeds: ['tcp://192.0.2.1:4747', 'libp2p:///ip4/192.0.2.2/tcp/4748/p2p/12D3KooWPwKkxKu9j9S2MLsu6CiqAhNBeC9KZBLXnSRs3CGvHhSQ'],
    })
    expect(transportsOf(c)).toEqual(['tcp', 'libp2p'])
    expect(hasTransport(c, 'libp2p') && hasTransport(c, 'tcp')).toBe(true)
    expect(listenAddresses(c)).toEqual(['tcp://127.0.0.1:4747', 'libp2p:///ip4/127.0.0.1/tcp/4748'])
    // one transport stays a string, as before
    expect(parseConfig({ ...defaultConfig(), transport: ['tcp'] }).transport).toBe('tcp')
    for (const bad of [['tcp', 'tcp'], [], ['tcp', 'quic'], 'tcp,quic']) {
      expect(() => parseConfig({ ...defaultConfig(), transport: bad }), JSON.stringify(bad)).toThrow(/^transport: expected/)
    }
  })

  const dirs: string[] = []
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  })

  it('init --transport tcp,libp2p writes both listen lists (libp2p on the next port); --listen sorts addresses by kind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-mixed-'))
    dirs.push(dir)
    const io = { stdout: () => {}, stderr: () => {}, env: { KOS_MESH_PASSPHRASE: 'mixed transport test' } }
    expect(await runCli(['init', '--data-dir', dir, '--name', 'm', '--transport', 'tcp,libp2p'], io)).toBe(0)
    let saved = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))
    expect(saved.transport).toEqual(['tcp', 'libp2p'])
    expect(saved.listen).toEqual(['tcp://127.0.0.1:4747'])
    expect(saved.libp2p.listen).toEqual(['/ip4/127.0.0.1/tcp/4748'])
    expect(await runCli(['init', '--force', '--data-dir', dir, '--listen', 'tcp://127.0.0.1:5000', '--listen', '/ip4/0.0.0.0/tcp/5001'], io)).toBe(0)
    saved = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))
    expect(saved.listen).toEqual(['tcp://127.0.0.1:5000'])
    expect(saved.libp2p.listen).toEqual(['/ip4/0.0.0.0/tcp/5001'])
    expect(await runCli(['init', '--force', '--data-dir', dir, '--transport', 'tcp,udp'], io)).toBe(2)
  })
})
