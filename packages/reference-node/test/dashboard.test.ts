/**
 * The dashboard without a browser: the traffic ring, the bounded event streams, and the HTTP side
 * on a real two-node mesh (the page needs no token, its data does, the stream is capped).
 */
import { request, type IncomingMessage } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { startControlServer, writeControlFiles, type ControlServer } from '../src/control.js'
import { ExitCode, runCli } from '../src/cli-app.js'
import { createNode, memory, type KosMeshNode } from '../src/index.js'
import { EventStreams, frameEvent, meshGraph, TrafficRing, type DashboardSnapshot } from '../src/dashboard/index.js'

const counters = (n: number, rejects: Record<string, number> = {}) => ({ messagesIn: n, messagesOut: 2 * n, bytesIn: 100 * n, bytesOut: 200 * n, forwarded: 0, rejects })

describe('TrafficRing', () => {
  it('turns counters into rates and rejects per interval, and keeps at most `capacity` samples', () => {
    const ring = new TrafficRing(3)
    expect(ring.add(0, counters(0))).toBeUndefined()
    const s = ring.add(2000, counters(10, { replay: 4 }))
    expect(s).toMatchObject({ t: 2000, dt: 2000, inPerSec: 5, outPerSec: 10, bytesInPerSec: 500, rejects: { replay: 4 } })
    ring.add(3000, counters(10, { replay: 4, invalid_signature: 1 }))
    expect(ring.samples()[1]?.rejects).toEqual({ invalid_signature: 1 })
    ring.add(4000, counters(11, { replay: 6, invalid_signature: 1 }))
    ring.add(5000, counters(12, { replay: 6, invalid_signature: 1 }))
    expect(ring.size).toBe(3)
    expect(ring.samples().map((x) => x.t)).toEqual([3000, 4000, 5000])
    expect(ring.rejectTotals()).toEqual({ replay: 6, invalid_signature: 1 })
  })

  it('refuses a capacity below 2', () => {
    expect(() => new TrafficRing(1)).toThrow(RangeError)
  })
})

/** A response that never drains: what a reader that stopped reading looks like to the server. */
function stuckResponse(): ServerResponse & { frames: string[] } {
  const frames: string[] = []
  const res = {
    frames,
    writableLength: 0,
    destroyed: false,
    writableEnded: false,
    writeHead: () => res,
    flushHeaders: () => {},
    on: () => res,
    write(chunk: string) {
      frames.push(chunk)
      res.writableLength += Buffer.byteLength(chunk)
      return false
    },
    end: () => {
      res.writableEnded = true
    },
    destroy: () => {
      res.destroyed = true
    },
  }
  return res as unknown as ServerResponse & { frames: string[] }
}

describe('EventStreams', () => {
  it('drops a reader whose queue would pass the bound, and refuses readers beyond the cap', () => {
    const streams = new EventStreams({ maxClients: 2, maxQueueBytes: 4096 })
    const stuck = stuckResponse()
    const other = stuckResponse()
    expect(streams.open(stuck, frameEvent('snapshot', '{}'))).toBe(true)
    expect(streams.open(other)).toBe(true)
    expect(streams.open(stuckResponse())).toBe(false)
    const data = JSON.stringify({ x: 'y'.repeat(1000) })
    for (let i = 0; i < 10; i++) streams.send('snapshot', data)
    expect(stuck.destroyed).toBe(true)
    expect(stuck.writableLength).toBeLessThanOrEqual(4096)
    expect(streams.stats()).toMatchObject({ clients: 0, opened: 2, refused: 1, dropped: 2 })
  })

  it('frames one-line events only', () => {
    expect(frameEvent('snapshot', '{"a":1}')).toBe('event: snapshot\ndata: {"a":1}\n\n')
    expect(() => frameEvent('snapshot', 'a\nb')).toThrow(RangeError)
  })
})

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingMessage['headers']; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => (text += d.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** Opens the event stream and resolves with the response once headers and the first event arrived. */
function openStream(port: number, token: string): Promise<{ status: number; first: string; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/dashboard/events', headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => {
        text += d.toString()
        if (text.includes('\n\n')) resolve({ status: res.statusCode ?? 0, first: text, close: () => req.destroy() })
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, first: text, close: () => req.destroy() }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('meshGraph', () => {
  it('shows a node reached through a neighbour as relayed, linked from that neighbour', async () => {
    const network = createMemoryNetwork()
    // no discovery services: nothing dials c from a, so a reaches it only through b
    const mk = (n: string) => createNode({ authority: `${n}.mesh.kai`, transports: [memory({ network })], listen: [`memory://${n}`], dht: false, gossip: false, services: { discovery: false } })
    const [a, b, c] = [mk('a'), mk('b'), mk('c')]
    try {
      await Promise.all([a.start(), b.start(), c.start()])
      await b.connect('memory://c')
      await a.connect('memory://b')
      for (let i = 0; i < 100 && !a.router.routingTable.routes().some((r) => r.authority === 'c.mesh.kai'); i++) await new Promise((r) => setTimeout(r, 50))
      const g = meshGraph(a)
      const relayed = g.nodes.find((n) => n.authority === 'c.mesh.kai')
      expect(relayed).toMatchObject({ state: 'relayed', hops: 2 })
      expect(g.links).toContainEqual({ from: b.did, to: relayed?.id, kind: 'relayed' })
      expect(g.links).toContainEqual({ from: a.did, to: b.did, kind: 'direct' })
    } finally {
      await Promise.allSettled([a.stop(), b.stop(), c.stop()])
    }
  })
})

describe('dashboard on the control API', () => {
  let a: KosMeshNode
  let b: KosMeshNode
  let server: ControlServer

  beforeAll(async () => {
    const network = createMemoryNetwork()
    a = createNode({ authority: 'a.mesh.kai', transports: [memory({ network })], listen: ['memory://a'] })
    b = createNode({ authority: 'b.mesh.kai', transports: [memory({ network })], listen: ['memory://b'] })
    await b.start()
    await a.start()
    await a.connect('memory://b')
    server = await startControlServer({ node: a, dashboard: { sampleIntervalMs: 50, maxClients: 1 } })
  })

  afterAll(async () => {
    await server?.close()
    await Promise.allSettled([a?.stop(), b?.stop()])
  })

  it('serves the page without the token, with a CSP and no referrer', async () => {
    const page = await get(server.port, '/dashboard')
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.headers['content-security-policy']).toContain("connect-src 'self'")
    expect(page.headers['referrer-policy']).toBe('no-referrer')
    expect(page.text).toContain('/dashboard/dashboard.js')
    expect((await get(server.port, '/dashboard/dashboard.js')).headers['content-type']).toMatch(/^text\/javascript/)
    expect((await get(server.port, '/dashboard/dashboard.css')).status).toBe(200)
    expect((await get(server.port, '/dashboard/nothing.js')).status).toBe(401)
  })

  it('answers the snapshot and the stream only with the token', async () => {
    expect((await get(server.port, '/v1/dashboard')).status).toBe(401)
    expect((await get(server.port, '/v1/dashboard/events')).status).toBe(401)
    expect((await get(server.port, '/v1/dashboard', { authorization: `Bearer ${server.token}x` })).status).toBe(401)
    const ok = await get(server.port, '/v1/dashboard', { authorization: `Bearer ${server.token}` })
    expect(ok.status).toBe(200)
    const snap = JSON.parse(ok.text) as DashboardSnapshot
    expect(snap.sections).toEqual(['mesh', 'trust', 'traffic', 'discovery'])
    expect(snap.self.did).toBe(a.did)
    expect(snap.mesh.nodes.map((n) => [n.id, n.state])).toEqual([
      [a.did, 'self'],
      [b.did, 'connected'],
    ])
    expect(snap.mesh.links).toEqual([{ from: a.did, to: b.did, kind: 'direct' }])
    expect(snap.discovery.health.gossip).toMatch(/^(ok|degraded)$/)
  })

  it('streams snapshots to at most maxClients readers', async () => {
    const first = await openStream(server.port, server.token)
    expect(first.status).toBe(200)
    expect(first.first.startsWith('event: snapshot\ndata: {')).toBe(true)
    const second = await openStream(server.port, server.token)
    expect(second.status).toBe(503)
    expect(JSON.parse(second.first).error.code).toBe('ERR_TOO_MANY_STREAMS')
    first.close()
    second.close()
    expect(server.dashboard?.stats().refused).toBe(1)
  })

  it('kos-mesh dashboard prints the address with the token in the fragment only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-dash-'))
    try {
      let out = ''
      let err = ''
      const io = { stdout: (x: string) => void (out += x), stderr: (x: string) => void (err += x), env: {} }
      expect(await runCli(['dashboard', '--data-dir', dir], io)).toBe(ExitCode.NOT_RUNNING)
      await writeControlFiles(dir, { pid: process.pid, host: '127.0.0.1', port: server.port, did: a.did, authority: a.authority, addrs: a.addrs(), startedAt: 0 }, server.token)
      out = ''
      const code = await runCli(['dashboard', '--data-dir', dir, '--json'], io)
      expect(code, err).toBe(ExitCode.OK)
      const url = new URL((JSON.parse(out) as { url: string }).url)
      expect(`${url.origin}${url.pathname}${url.search}`).toBe(`http://127.0.0.1:${server.port}/dashboard`)
      expect(url.hash).toBe(`#token=${encodeURIComponent(server.token)}`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
