import { AbortError, type Connection } from '@kos-mesh/interface'
import { describe, expect, it } from 'vitest'
import {
  AddressInUseError,
  createMemoryNetwork,
  FrameTooLargeError,
  memoryTransport,
  parseMemoryAddress,
  SendTimeoutError,
  TransportClosedError,
  VirtualTimeError,
  type MemoryNetwork,
} from '../src/index.js'

async function connect(network: MemoryNetwork, init: { maxBufferedBytes?: number; sendTimeoutMs?: number } = {}): Promise<{ out: Connection; inb: Connection }> {
  const a = memoryTransport({ peerId: 'did:key:a', network, ...init })
  const b = memoryTransport({ peerId: 'did:key:b', network, ...init })
  let inb: Connection | undefined
  await b.listen('memory://b', (c) => { inb = c })
  const out = await a.dial('memory://b')
  if (inb === undefined) throw new Error('expected an inbound connection')
  return { out, inb }
}

describe('addresses', () => {
  it('parses memory:// addresses with an optional DID', () => {
    expect(parseMemoryAddress('memory://node-a')).toEqual({ name: 'node-a' })
    expect(parseMemoryAddress('memory://node-a/did:key:z6Mk')).toEqual({ name: 'node-a', peer: 'did:key:z6Mk' })
    expect(parseMemoryAddress('memory://')).toEqual({ name: '' })
  })

  it.each(['tcp://1.2.3.4:5', 'memory://a b', 'memory://a/notadid', 'memory://a/did:x/y', `memory://${'x'.repeat(2000)}`])('rejects %s with InvalidAddressError', (addr) => {
    expect(() => parseMemoryAddress(addr)).toThrow(expect.objectContaining({ name: 'InvalidAddressError', code: 'ERR_INVALID_ADDRESS' }))
  })

  it('canDial only memory addresses with a listener name', () => {
    const t = memoryTransport({ peerId: 'did:key:a', network: createMemoryNetwork() })
    expect(t.canDial('memory://x')).toBe(true)
    expect(t.canDial('memory://x/did:key:b')).toBe(true)
    expect(t.canDial('memory://')).toBe(false)
    expect(t.canDial('memory://~3')).toBe(false)
    expect(t.canDial('tcp://127.0.0.1:1')).toBe(false)
  })
})

describe('memoryTransport', () => {
  it('validates its init with InvalidParametersError', () => {
    const network = createMemoryNetwork()
    expect(() => memoryTransport({ peerId: '' })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => memoryTransport({ peerId: 'did:key:a', network, maxBufferedBytes: 0 })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => memoryTransport({ peerId: 'did:key:a', network, maxBufferedBytes: 10, maxFrameSize: 11 })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => createMemoryNetwork({ defaults: { loss: 2 } })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => network.setLink('a', 'b', { bandwidthBytesPerSec: 0 })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })

  it('refuses a second listener on the same name with AddressInUseError', async () => {
    const network = createMemoryNetwork()
    const a = memoryTransport({ peerId: 'did:key:a', network })
    const b = memoryTransport({ peerId: 'did:key:b', network })
    await a.listen('memory://x', () => {})
    await expect(b.listen('memory://x', () => {})).rejects.toBeInstanceOf(AddressInUseError)
    await expect(b.listen('memory://~1', () => {})).rejects.toMatchObject({ name: 'InvalidAddressError' })
    const auto = await b.listen('memory://', () => {})
    expect(auto.addrs()[0]).toMatch(/^memory:\/\/auto-\d+$/)
    expect(b.getListenAddrs()).toEqual(auto.addrs())
  })

  it('checks the DID appended to a dialed address', async () => {
    const network = createMemoryNetwork()
    const a = memoryTransport({ peerId: 'did:key:a', network })
    const b = memoryTransport({ peerId: 'did:key:b', network })
    await b.listen('memory://b', () => {})
    await expect(a.dial('memory://b/did:key:b')).resolves.toMatchObject({ remotePeer: 'did:key:b' })
    await expect(a.dial('memory://b/did:key:c')).rejects.toMatchObject({ name: 'PeerMismatchError', code: 'ERR_PEER_MISMATCH' })
    await expect(a.dial('memory://b/did:key:b', { remotePeer: 'did:key:c' })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    expect(network.metrics.dialFailures).toBe(1) // the InvalidParametersError is thrown before dialing
  })

  it('rejects an over-size frame with FrameTooLargeError (a LimitExceededError)', async () => {
    const network = createMemoryNetwork()
    const { out } = await connect(network)
    const err = await out.send(new Uint8Array(1024 * 1024 + 1)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FrameTooLargeError)
    expect(err).toMatchObject({ name: 'FrameTooLargeError', code: 'ERR_FRAME_TOO_LARGE' })
    await expect(out.send('nope' as unknown as Uint8Array)).rejects.toMatchObject({ name: 'InvalidParametersError' })
  })

  it('delivers frames that are copies (receiver mutation does not reach the sender or a duplicate)', async () => {
    const network = createMemoryNetwork({ defaults: { duplicate: 1 }, time: 'virtual' })
    const { out, inb } = await connect(network)
    const frame = new Uint8Array([1, 2, 3])
    await out.send(frame)
    await network.runUntilIdle()
    const it = inb[Symbol.asyncIterator]()
    const first = (await it.next()).value as Uint8Array
    first[0] = 99
    const second = (await it.next()).value as Uint8Array
    expect([...second]).toEqual([1, 2, 3])
    expect([...frame]).toEqual([1, 2, 3])
  })

  it('copies a Buffer frame too (Buffer#slice would share memory)', async () => {
    const network = createMemoryNetwork()
    const { out, inb } = await connect(network)
    const buf = Buffer.from([1, 2, 3, 4])
    await out.send(buf)
    buf.fill(0)
    const got = (await inb[Symbol.asyncIterator]().next()).value as Uint8Array
    expect([...got]).toEqual([1, 2, 3, 4])
    expect(Buffer.isBuffer(got)).toBe(false)
  })

  it('bounds the inbound buffer: a blocked send is released by reading, aborted by its signal', async () => {
    const network = createMemoryNetwork()
    const { out, inb } = await connect(network, { maxBufferedBytes: 1000 })
    await out.send(new Uint8Array(600))
    let released = false
    const blocked = out.send(new Uint8Array(600)).then(() => { released = true })
    const ac = new AbortController()
    const third = out.send(new Uint8Array(10), { signal: ac.signal })
    await new Promise((r) => setImmediate(r))
    expect(released).toBe(false)
    ac.abort()
    await expect(third).rejects.toBeInstanceOf(AbortError)
    const it = inb[Symbol.asyncIterator]()
    await it.next()
    await blocked
    expect(released).toBe(true)
    expect(((await it.next()).value as Uint8Array).byteLength).toBe(600)
  })

  it('times out a blocked send with SendTimeoutError after sendTimeoutMs of network time', async () => {
    const network = createMemoryNetwork({ time: 'virtual' })
    const { out } = await connect(network, { maxBufferedBytes: 100, sendTimeoutMs: 500 })
    await out.send(new Uint8Array(100))
    const blocked = out.send(new Uint8Array(1)).catch((e: unknown) => e)
    network.advance(499)
    await new Promise((r) => setImmediate(r))
    network.advance(1)
    expect(await blocked).toBeInstanceOf(SendTimeoutError)
    expect(out.status).toBe('open')
  })

  it('a pending dial aborted by its signal leaves no connection on either side', async () => {
    const network = createMemoryNetwork({ time: 'virtual', defaults: { latencyMs: 50 } })
    const a = memoryTransport({ peerId: 'did:key:a', network })
    const b = memoryTransport({ peerId: 'did:key:b', network })
    const inbound: Connection[] = []
    await b.listen('memory://b', (c) => inbound.push(c))
    // Aborted before the request reaches the listener.
    const early = new AbortController()
    const p1 = a.dial('memory://b', { signal: early.signal }).catch((e: unknown) => e)
    await network.runFor(10)
    early.abort()
    expect(await p1).toBeInstanceOf(AbortError)
    expect(inbound).toHaveLength(0)
    // Aborted while the answer travels back: the listener's connection is reset.
    const late = new AbortController()
    const p2 = a.dial('memory://b', { signal: late.signal }).catch((e: unknown) => e)
    await network.runFor(60)
    expect(inbound).toHaveLength(1)
    late.abort()
    expect(await p2).toBeInstanceOf(AbortError)
    await network.runFor(60)
    await inbound[0]?.closed
    expect(inbound[0]?.status).toBe('closed')
    expect(a.getConnections()).toHaveLength(0)
    expect(b.getConnections()).toHaveLength(0)
  })

  it('a throwing connection handler aborts the inbound connection', async () => {
    const network = createMemoryNetwork()
    const a = memoryTransport({ peerId: 'did:key:a', network })
    const b = memoryTransport({ peerId: 'did:key:b', network })
    await b.listen('memory://b', () => { throw new Error('handler bug') })
    const out = await a.dial('memory://b')
    await out.closed
    expect(out.status).toBe('closed')
  })

  it('a closed transport refuses dial and listen with TransportClosedError', async () => {
    const network = createMemoryNetwork()
    const a = memoryTransport({ peerId: 'did:key:a', network })
    await a.close()
    await expect(a.dial('memory://b')).rejects.toBeInstanceOf(TransportClosedError)
    await expect(a.listen('memory://a', () => {})).rejects.toMatchObject({ name: 'TransportClosedError', code: 'ERR_TRANSPORT_CLOSED' })
  })

  it('counts frames and bytes in the network metrics', async () => {
    const network = createMemoryNetwork()
    const { out, inb } = await connect(network)
    expect(network.metrics.openConnectionEnds).toBe(2)
    for (let i = 0; i < 10; i++) await out.send(new Uint8Array(100))
    const it = inb[Symbol.asyncIterator]()
    for (let i = 0; i < 10; i++) await it.next()
    const m = network.metrics
    expect(m).toMatchObject({ framesSent: 10, bytesSent: 1000, framesDelivered: 10, bytesDelivered: 1000, framesDropped: 0, dials: 1 })
    await out.close()
    await inb.closed
    expect(network.metrics.openConnectionEnds).toBe(0)
    network.resetMetrics()
    expect(network.metrics.framesSent).toBe(0)
  })

  it('virtual-time calls fail with VirtualTimeError on a real-time network', async () => {
    const network = createMemoryNetwork()
    expect(() => network.advance(1)).toThrow(VirtualTimeError)
    await expect(network.runFor(1)).rejects.toBeInstanceOf(VirtualTimeError)
    const v = createMemoryNetwork({ time: 'virtual' })
    const running = v.runFor(10)
    await expect(v.runFor(1)).rejects.toMatchObject({ name: 'VirtualTimeError' })
    await running
    expect(v.clock.now()).toBe(Date.UTC(2026, 0, 1) + 10)
  })

  it('uses the process-wide default network when none is given', async () => {
    const a = memoryTransport({ peerId: 'did:key:a' })
    const b = memoryTransport({ peerId: 'did:key:b' })
    await b.listen('memory://default-b', () => {})
    const c = await a.dial('memory://default-b', { remotePeer: 'did:key:b' })
    expect(c.remotePeer).toBe('did:key:b')
    await a.close()
    await b.close()
  })
})
