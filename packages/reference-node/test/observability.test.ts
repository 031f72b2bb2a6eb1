/**
 * Issue 10, "seeing what a node does": rate-limited operator events, the log file and `kos-mesh
 * logs`, and the Prometheus metrics of the control API (parsed with a strict text-format parser).
 */
import { appendFile, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { KLPMessageType } from '@kos-mesh/interface'
import { ManualClock, waitFor } from '@kos-mesh/interface-compliance-tests'
import { createMessage, signMessage } from '@kos-mesh/klp-codec'
import { generateIdentity } from '@kos-mesh/did-security'
import { createMemoryNetwork, type MemoryNetwork } from '@kos-mesh/transport-memory'
import { tcp } from '@kos-mesh/transport-tcp'
import { EventLog } from '../src/events.js'
import { openLogFile, readLogTail } from '../src/logfile.js'
import { Histogram, renderPrometheus } from '../src/metrics.js'
import { startControlServer, type ControlServer } from '../src/control.js'
import { runCli, type CliIo } from '../src/cli-app.js'
import { createNode, echoAgent, jsonLogger, mathAgent, memory, type KosMeshNode, type NodeInit } from '../src/index.js'
import { parsePrometheus, sampleValue } from './prometheus-parser.js'

let root: string
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-obs-'))
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

interface Line {
  level: string
  msg: string
  event?: string
  [k: string]: unknown
}

/** A logger that keeps every line (parsed). */
function capture(): { lines: Line[]; logger: ReturnType<typeof jsonLogger> } {
  const lines: Line[] = []
  return { lines, logger: jsonLogger('debug', (l) => void lines.push(JSON.parse(l) as Line)) }
}

describe('EventLog: a token bucket per event kind', () => {
  it('writes a burst, counts what it suppresses, and summarises it when the kind may write again', () => {
    const clock = new ManualClock()
    const { lines, logger } = capture()
    const ev = new EventLog(logger, clock, { burst: 3, perSecond: 1 })
    for (let i = 0; i < 5; i++) ev.emit('replay', 'warn', 'message rejected', { n: i })
    ev.emit('trust', 'info', 'trust changed') // another kind has its own bucket
    expect(lines.map((l) => `${l.event}:${String(l.n ?? '')}`)).toEqual(['replay:0', 'replay:1', 'replay:2', 'trust:'])
    expect(ev.suppressed()).toEqual({ replay: 2 })
    clock.advance(999)
    expect(ev.emit('replay', 'warn', 'message rejected', { n: 5 })).toBe(false) // not a whole token yet
    clock.advance(1)
    expect(ev.emit('replay', 'warn', 'message rejected', { n: 6 })).toBe(true)
    expect(lines.slice(-2)).toEqual([
      expect.objectContaining({ level: 'warn', msg: 'log events suppressed', event: 'log_suppressed', kind: 'replay', suppressed: 3, window_ms: 1000 }),
      expect.objectContaining({ event: 'replay', n: 6 }),
    ])
    expect(ev.suppressed()).toEqual({ replay: 3 })
  })

  it('summaries are written by the periodic flush even when the flood stops, and at stop()', () => {
    const clock = new ManualClock()
    const { lines, logger } = capture()
    const ev = new EventLog(logger, clock, { burst: 1, perSecond: 0, summaryIntervalMs: 10_000 })
    ev.start()
    for (let i = 0; i < 100; i++) ev.emit('flood', 'info', 'x')
    expect(lines).toHaveLength(1)
    clock.advance(10_000)
    expect(lines.at(-1)).toMatchObject({ msg: 'log events suppressed', kind: 'flood', suppressed: 99 })
    ev.emit('flood', 'info', 'x')
    ev.stop()
    expect(lines.at(-1)).toMatchObject({ msg: 'log events suppressed', kind: 'flood', suppressed: 1 })
    expect(clock.pending).toBe(0)
  })

  it('bounds the number of kinds (further kinds share one bucket)', () => {
    const clock = new ManualClock()
    const { lines, logger } = capture()
    const ev = new EventLog(logger, clock, { burst: 1, perSecond: 0, maxKinds: 2 })
    for (const k of ['a', 'b', 'c', 'd', 'e']) ev.emit(k, 'info', k)
    expect(lines.map((l) => l.event)).toEqual(['a', 'b', 'c'])
    expect(ev.suppressed()).toEqual({ other: 2 })
  })
})

describe('jsonLogger', () => {
  it('never lets a field overwrite the line\'s own keys', () => {
    const lines: string[] = []
    const log = jsonLogger('info', (l) => void lines.push(l), 'n1')
    log.warn('hello', { level: 7, msg: 'x', time: 1, name: 'y', other: true })
    expect(JSON.parse(lines[0] as string)).toEqual({ time: expect.any(String), level: 'warn', name: 'n1', msg: 'hello', field_level: 7, field_msg: 'x', field_time: 1, field_name: 'y', other: true })
  })
})

describe('the log file', () => {
  it('rotates by size, keeps a bounded number of files, and reads back the last lines in order', async () => {
    const path = join(root, 'rot', 'node.log')
    const f = openLogFile({ path, maxBytes: 100, keep: 2 })
    for (let i = 0; i < 30; i++) f.write(`${JSON.stringify({ level: 'info', msg: `line ${String(i).padStart(2, '0')}` })}\n`)
    f.close()
    expect((await readdir(join(root, 'rot'))).sort()).toEqual(['node.log', 'node.log.1', 'node.log.2'])
    const tail = readLogTail(path, 4, 2).map((l) => (JSON.parse(l) as Line).msg)
    expect(tail).toEqual(['line 26', 'line 27', 'line 28', 'line 29'])
  })
})

describe('kos-mesh logs', () => {
  it('prints the last lines for people, as one JSON document with --json, filtered by --level', async () => {
    const dir = join(root, 'logs-cmd')
    expect((await runCli(['init', '--data-dir', dir, '--listen', 'tcp://127.0.0.1:0'], { stdout: () => {}, stderr: () => {}, env: { KOS_MESH_PASSPHRASE: 'pw' } }))).toBe(0)
    await mkdir(join(dir, 'logs'), { recursive: true })
    await writeFile(join(dir, 'logs', 'node.log.1'), `${JSON.stringify({ time: 't1', level: 'info', msg: 'connection opened', peer: 'did:key:a' })}\n`)
    await writeFile(
      join(dir, 'logs', 'node.log'),
      [
        { time: 't2', level: 'warn', msg: 'no peers connected', event: 'no_peers', known: 2 },
        { time: 't3', level: 'info', msg: 'task served', from: 'did:key:b', duration_ms: 3 },
      ]
        .map((o) => JSON.stringify(o) + '\n')
        .join(''),
    )
    const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = ''
      let err = ''
      const code = await runCli([...args, '--data-dir', dir], { stdout: (s) => (out += s), stderr: (s) => (err += s), env: {} })
      return { code, out, err }
    }
    const human = await run(['logs', '--lines', '3'])
    expect(human.code, human.err).toBe(0)
    expect(human.out.split('\n').filter(Boolean)).toEqual([
      't1  INFO   connection opened  peer=did:key:a',
      't2  WARN   no peers connected  event=no_peers known=2',
      't3  INFO   task served  from=did:key:b duration_ms=3',
    ])
    const j = await run(['logs', '--lines', '2', '--json'])
    expect(j.out.trim().split('\n')).toHaveLength(1)
    expect(JSON.parse(j.out)).toEqual({ file: join(dir, 'logs', 'node.log'), lines: [expect.objectContaining({ msg: 'no peers connected' }), expect.objectContaining({ msg: 'task served' })] })
    const warn = await run(['logs', '--level', 'warn', '--json'])
    expect((JSON.parse(warn.out) as { lines: Line[] }).lines.map((l) => l.msg)).toEqual(['no peers connected'])
    const bad = await run(['logs', '--level', 'loud', '--json'])
    expect(bad.code).toBe(2)
    expect(JSON.parse(bad.out)).toMatchObject({ exitCode: 2, error: { name: 'UsageError' } })
    let out = ''
    expect(await runCli(['logs', '--data-dir', join(root, 'nothing'), '--json'], { stdout: (t) => (out += t), stderr: () => {}, env: {} })).toBe(6)
    expect(JSON.parse(out)).toMatchObject({ exitCode: 6, error: { name: 'NotInitializedError' } })
  })

  it('--follow prints lines as they are appended, across a rotation, until the signal', async () => {
    const dir = join(root, 'follow')
    expect(await runCli(['init', '--data-dir', dir, '--listen', 'tcp://127.0.0.1:0'], { stdout: () => {}, stderr: () => {}, env: { KOS_MESH_PASSPHRASE: 'pw' } })).toBe(0)
    await mkdir(join(dir, 'logs'), { recursive: true })
    const log = join(dir, 'logs', 'node.log')
    await writeFile(log, `${JSON.stringify({ level: 'info', msg: 'old' })}\n`)
    let out = ''
    let stop: (() => void) | undefined
    const io: CliIo = { stdout: (s) => (out += s), stderr: () => {}, env: {}, onSignal: (h) => (stop = h) }
    const following = runCli(['logs', '--follow', '--lines', '0', '--json', '--data-dir', dir], io)
    await new Promise((r) => setTimeout(r, 50))
    await appendFile(log, `${JSON.stringify({ level: 'info', msg: 'first' })}\n`)
    await waitFor(() => out.includes('"first"'), 'the appended line', 5000)
    await rename(log, `${log}.1`)
    await writeFile(log, `${JSON.stringify({ level: 'warn', msg: 'after rotation' })}\n`)
    await waitFor(() => out.includes('after rotation'), 'the line of the new file', 5000)
    stop?.()
    expect(await following).toBe(0)
    expect(out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as Line).msg)).toEqual(['first', 'after rotation'])
  })
})

describe('operator events of a node', () => {
  const nodes: KosMeshNode[] = []
  afterEach(async () => {
    await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
  })
  function node(network: MemoryNetwork, name: string, init: NodeInit = {}): KosMeshNode {
    const n = createNode({ authority: `${name}.mesh.kai`, transports: [memory({ network })], listen: [`memory://${name}`], reconnect: { initialDelayMs: 1_000_000, maxDelayMs: 1_000_000 }, ...init })
    nodes.push(n)
    return n
  }
  const events = (lines: Line[], msg: string): Line[] => lines.filter((l) => l.msg === msg)

  it('logs connections, tasks served and refused, trust changes, forged and replayed messages, refused handshakes and bootstrap', async () => {
    const network = createMemoryNetwork()
    const w = capture()
    const c = capture()
    const clientId = generateIdentity()
    const worker = node(network, 'worker', { agents: [mathAgent(), echoAgent()], logger: w.logger })
    const client = node(network, 'client', { identity: clientId, logger: c.logger })
    await worker.start()
    await client.start()
    await client.connect(worker.addrs()[0] as string)
    expect(events(w.lines, 'connection opened')[0]).toMatchObject({ level: 'info', event: 'connection', peer: client.did })

    await client.task('klp://worker.mesh.kai/agents/math', { capability: 'math', input: '6 * 7' })
    await expect(client.task('klp://worker.mesh.kai', { capability: 'translate', input: 'hola' })).rejects.toMatchObject({ reason: 'no_eligible_agents' })
    expect(events(w.lines, 'task served')).toEqual([expect.objectContaining({ event: 'task_served', from: client.did, capability: 'math', agent: 'klp://worker.mesh.kai/agents/math' })])
    expect(events(w.lines, 'task refused')).toEqual([expect.objectContaining({ event: 'task_refused', from: client.did, capability: 'translate', reason: 'no_eligible_agents' })])

    await worker.trust(client.did, 7)
    expect(events(w.lines, 'trust changed')).toEqual([expect.objectContaining({ level: 'info', did: client.did, trust_level: 7, previous: null })])
    await worker.untrust(client.did)
    expect(events(w.lines, 'trust removed')).toEqual([expect.objectContaining({ did: client.did, previous: 7 })])

    // a replayed message and a forged one (signed by another key than the authority's)
    const msg = await signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: 'klp://client.mesh.kai/', target: 'klp://worker.mesh.kai/agents/echo', data: { capability: 'echo', input: 'x' } }), clientId.signer)
    await client.router.send(msg)
    await client.router.send(msg)
    const forged = await signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: 'klp://client.mesh.kai/', target: 'klp://worker.mesh.kai/agents/echo', data: { capability: 'echo', input: 'y' } }), generateIdentity().signer)
    await client.router.send(forged)
    await waitFor(() => events(w.lines, 'message rejected (forged, replayed or invalid)').length >= 2, 'the rejects', 5000)
    expect(events(w.lines, 'message rejected (forged, replayed or invalid)').map((l) => [l.level, l.reason])).toEqual(
      expect.arrayContaining([
        ['warn', 'replay'],
        ['warn', expect.stringMatching(/source_mismatch|unknown_key|invalid_signature/)],
      ]),
    )

    // the peer at that address proves another DID than the one asked for
    await expect(client.connect(`memory://worker/${generateIdentity().did}`)).rejects.toMatchObject({ name: 'PeerMismatchError' })
    expect(events(c.lines, 'handshake refused')).toEqual([expect.objectContaining({ level: 'warn', direction: 'outbound', reason: 'peer_mismatch' })])

    // bootstrap progress of a third node
    const t = capture()
    const third = node(network, 'third', { seeds: worker.addrs(), logger: t.logger })
    await third.start()
    expect(events(t.lines, 'bootstrap started')).toHaveLength(1)
    expect(events(t.lines, 'bootstrap done')).toEqual([expect.objectContaining({ event: 'bootstrap', reached: 1 })])

    // the client goes: the worker logs why, and that it has no peers... after the third goes too
    await client.stop()
    await third.stop()
    await waitFor(() => events(w.lines, 'connection closed').length >= 2, 'closes', 5000)
    expect(events(w.lines, 'connection closed')[0]).toMatchObject({ peer: client.did, authority: 'client.mesh.kai', reason: expect.any(String), redialing: true })
    expect(events(w.lines, 'no peers connected')).toEqual([expect.objectContaining({ level: 'warn', event: 'no_peers', known: 2 })])
  })

  it('an inbound handshake that fails is logged as refused, with the reason (TCP)', async () => {
    const w = capture()
    const n = createNode({ authority: 'tcp-node.mesh.kai', transports: [tcp()], listen: ['tcp://127.0.0.1:0'], logger: w.logger })
    nodes.push(n)
    await n.start()
    const port = Number(/:(\d+)\//.exec(n.addrs()[0] as string)?.[1])
    const sock = connect(port, '127.0.0.1')
    await new Promise<void>((r) => sock.once('connect', () => r()))
    sock.write(Buffer.from([0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4])) // not a handshake message
    await waitFor(() => events(w.lines, 'handshake refused').length > 0, 'the refusal', 5000)
    sock.destroy()
    expect(events(w.lines, 'handshake refused')[0]).toMatchObject({ level: 'warn', event: 'handshake_refused', direction: 'inbound', remote: expect.stringContaining('127.0.0.1'), reason: expect.any(String) })
    expect(parsePrometheus(n.metricsText()).get('kos_mesh_handshakes_refused_total')?.samples.length).toBe(1)
  })

  it('a flood of replays cannot flood the log: a burst, then a count of what was left out', async () => {
    const network = createMemoryNetwork()
    const w = capture()
    const clientId = generateIdentity()
    const worker = node(network, 'worker', { agents: [echoAgent()], logger: w.logger, events: { burst: 5, perSecond: 0 } })
    const client = node(network, 'client', { identity: clientId })
    await worker.start()
    await client.start()
    await client.connect(worker.addrs()[0] as string)
    const msg = await signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: 'klp://client.mesh.kai/', target: 'klp://worker.mesh.kai/agents/echo', data: { capability: 'echo', input: 'x' } }), clientId.signer)
    for (let i = 0; i < 60; i++) await client.router.send(msg)
    await waitFor(() => (worker.router.metrics().rejects.replay ?? 0) + (worker.router.metrics().rejects.rate_limited ?? 0) >= 59, 'the replays', 5000)
    const replays = worker.router.metrics().rejects.replay ?? 0
    expect(replays).toBeGreaterThan(5)
    const written = w.lines.filter((l) => l.event === 'message_rejected.replay')
    expect(written).toHaveLength(5)
    await worker.stop() // flushes the summaries
    const summary = w.lines.filter((l) => l.msg === 'log events suppressed' && l.kind === 'message_rejected.replay')
    expect(summary.reduce((n, l) => n + (l.suppressed as number), 0)).toBe(replays - 5)
  })
})

/** GET with an optional bearer token. */
function get(port: number, path: string, token?: string): Promise<{ status: number; text: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'GET', path, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => (text += d.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, type: String(res.headers['content-type'] ?? '') }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('metrics in the Prometheus text format (GET /metrics)', () => {
  const nodes: KosMeshNode[] = []
  let server: ControlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
    await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
  })

  it('the strict parser refuses what a scraper would refuse', () => {
    const bad = [
      'kos_x 1\n', // no TYPE
      '# TYPE kos_x counter\nkos_x{a="\\q"} 1\n', // bad escape
      '# TYPE kos_x counter\nkos_x -1\n', // a negative counter
      '# TYPE kos_x gauge\nkos_x 1\nkos_x 2\n', // a series twice
      '# TYPE kos_h histogram\nkos_h_bucket{le="1"} 2\nkos_h_bucket{le="+Inf"} 1\nkos_h_sum 1\nkos_h_count 1\n', // not cumulative
      '# TYPE kos_h histogram\nkos_h_bucket{le="1"} 1\nkos_h_bucket{le="+Inf"} 2\nkos_h_sum 1\nkos_h_count 1\n', // count != +Inf
      '# TYPE kos_x gauge\nkos_x 1', // no final newline
      '# TYPE kos_x gauge\nkos_x one\n',
    ]
    for (const text of bad) expect(() => parsePrometheus(text), text).toThrow()
    const h = new Histogram([0.1, 1])
    h.observe(0.05)
    h.observe(0.5, {})
    h.observe(5)
    const text = renderPrometheus([
      { name: 'kos_h', help: 'a "histogram"\nof things', type: 'histogram', histograms: h.snapshot() },
      { name: 'kos_g', help: 'g', type: 'gauge', samples: [{ labels: { who: 'a "quoted" \\ back\nslash' }, value: 1.5 }] },
    ])
    const parsed = parsePrometheus(text)
    expect(sampleValue(parsed, 'kos_h', { le: '0.1' }, 'kos_h_bucket')).toBe(1)
    expect(sampleValue(parsed, 'kos_h', { le: '+Inf' }, 'kos_h_bucket')).toBe(3)
    expect(sampleValue(parsed, 'kos_h', {}, 'kos_h_sum')).toBe(5.55)
    expect(sampleValue(parsed, 'kos_g', { who: 'a "quoted" \\ back\nslash' })).toBe(1.5)
  })

  it('serves traffic, rejects by reason, queues, peers, pending requests, replay windows, pins, latency histograms and memory, behind the token', async () => {
    const network = createMemoryNetwork()
    const clientId = generateIdentity()
    const worker = createNode({ authority: 'worker.mesh.kai', transports: [memory({ network })], listen: ['memory://worker'], agents: [mathAgent()] })
    const client = createNode({ authority: 'client.mesh.kai', identity: clientId, transports: [memory({ network })], listen: ['memory://client'] })
    nodes.push(worker, client)
    await worker.start()
    await client.start()
    await client.connect(worker.addrs()[0] as string)
    await client.task('klp://worker.mesh.kai/agents/math', { capability: 'math', input: '1 + 1' })
    await expect(client.task('klp://worker.mesh.kai', { capability: 'translate', input: 'x' })).rejects.toMatchObject({ reason: 'no_eligible_agents' })
    const msg = await signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: 'klp://client.mesh.kai/', target: 'klp://worker.mesh.kai/agents/math', data: { capability: 'math', input: '2' } }), clientId.signer)
    await client.router.send(msg)
    await client.router.send(msg)
    await waitFor(() => (worker.router.metrics().rejects.replay ?? 0) >= 1, 'a replay', 5000)

    server = await startControlServer({ node: worker })
    const before = worker.router.metrics()
    expect((await get(server.port, '/metrics')).status).toBe(401) // the same token rules as the API
    expect((await get(server.port, '/metrics', 'wrong')).status).toBe(401)
    const r = await get(server.port, '/metrics', server.token)
    expect(r.status).toBe(200)
    expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8')
    const m = parsePrometheus(r.text)
    const rm = worker.router.metrics()
    // discovery traffic may go on between the reads: the scrape lies between them
    const types = Object.fromEntries([...m.values()].map((f) => [f.name, f.type]))
    expect(types).toMatchObject({
      kos_mesh_messages_total: 'counter',
      kos_mesh_bytes_total: 'counter',
      kos_mesh_rejects_total: 'counter',
      kos_mesh_inbound_queue_depth: 'gauge',
      kos_mesh_inbound_queue_bytes: 'gauge',
      kos_mesh_outbound_queue_bytes: 'gauge',
      kos_mesh_peers: 'gauge',
      kos_mesh_pending_requests: 'gauge',
      kos_mesh_replay_window_entries: 'gauge',
      kos_mesh_pinned_authorities: 'gauge',
      kos_mesh_handshake_duration_seconds: 'histogram',
      kos_mesh_task_request_duration_seconds: 'histogram',
      kos_mesh_tasks_served_total: 'counter',
      kos_mesh_tasks_refused_total: 'counter',
      kos_mesh_log_events_suppressed_total: 'counter',
      process_resident_memory_bytes: 'gauge',
    })
    for (const f of m.values()) expect(f.help.length, f.name).toBeGreaterThan(0)
    expect(sampleValue(m, 'kos_mesh_messages_total', { direction: 'in' })).toBeGreaterThanOrEqual(before.messagesIn)
    expect(sampleValue(m, 'kos_mesh_messages_total', { direction: 'in' })).toBeLessThanOrEqual(rm.messagesIn)
    expect(before.messagesIn).toBeGreaterThan(0)
    expect(sampleValue(m, 'kos_mesh_bytes_total', { direction: 'out' })).toBeGreaterThan(0)
    expect(sampleValue(m, 'kos_mesh_rejects_total', { reason: 'replay' })).toBe(rm.rejects.replay)
    expect(sampleValue(m, 'kos_mesh_rejects_total', { reason: 'no_eligible_agents' })).toBe(1)
    expect(sampleValue(m, 'kos_mesh_tasks_served_total')).toBe(2) // the task, and the first copy of the replayed one
    expect(sampleValue(m, 'kos_mesh_tasks_refused_total', { reason: 'no_eligible_agents' })).toBe(1)
    expect(sampleValue(m, 'kos_mesh_peers', { state: 'connected' })).toBe(1)
    expect(sampleValue(m, 'kos_mesh_peers', { state: 'known' })).toBe(1)
    expect(sampleValue(m, 'kos_mesh_pending_requests')).toBe(0)
    expect(sampleValue(m, 'kos_mesh_replay_window_entries', { pool: 'all' })).toBeGreaterThan(0)
    expect(sampleValue(m, 'kos_mesh_pinned_authorities')).toBe(1)
    expect(sampleValue(m, 'kos_mesh_inbound_queue_depth', { class: 'normal' })).toBe(0)
    expect(sampleValue(m, 'process_resident_memory_bytes')).toBeGreaterThan(1024 * 1024)
    expect(sampleValue(m, 'kos_mesh_node_info', { did: worker.did, authority: 'worker.mesh.kai', node_type: 'PeerNode' })).toBe(1)

    // the client's own requests and dials (the worker made none)
    const cm = parsePrometheus(client.metricsText())
    expect(sampleValue(cm, 'kos_mesh_task_request_duration_seconds', { outcome: 'completed' }, 'kos_mesh_task_request_duration_seconds_count')).toBe(1)
    expect(sampleValue(cm, 'kos_mesh_task_request_duration_seconds', { outcome: 'rejected' }, 'kos_mesh_task_request_duration_seconds_count')).toBe(1)
    expect(sampleValue(cm, 'kos_mesh_handshake_duration_seconds', {}, 'kos_mesh_handshake_duration_seconds_count')).toBe(1)
    expect(m.get('kos_mesh_handshake_duration_seconds')?.samples).toEqual([])
    // a task refused before it is sent (bad input) is no request latency
    await expect(client.task('klp://worker.mesh.kai/agents/math', { capability: '', input: 'x' })).rejects.toMatchObject({ name: 'InvalidTaskError' })
    expect(sampleValue(parsePrometheus(client.metricsText()), 'kos_mesh_task_request_duration_seconds', { outcome: 'failed' }, 'kos_mesh_task_request_duration_seconds_count')).toBeUndefined()
  })
})
