import { describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { formatTcpAddress, parseTcpAddress, tcp } from '../src/index.js'

describe('tcp addresses', () => {
  it('parses host, port and an optional DID', () => {
    expect(parseTcpAddress('tcp://127.0.0.1:4001')).toEqual({ host: '127.0.0.1', port: 4001 })
    expect(parseTcpAddress('tcp://[::1]:80')).toEqual({ host: '::1', port: 80 })
    expect(parseTcpAddress('tcp://node-a.example:9/did:key:z6MkabcDEF')).toEqual({ host: 'node-a.example', port: 9, peer: 'did:key:z6MkabcDEF' })
  })

  it('formats IPv4 and bracketed IPv6', () => {
    expect(formatTcpAddress('10.0.0.1', 5)).toBe('tcp://10.0.0.1:5')
    expect(formatTcpAddress('::1', 5)).toBe('tcp://[::1]:5')
    expect(parseTcpAddress(formatTcpAddress('fe80::1', 7))).toEqual({ host: 'fe80::1', port: 7 })
  })

  for (const bad of ['', 'tcp://', 'tcp://host', 'tcp://host:', 'tcp://host:99999', 'udp://h:1', 'tcp://[zz]:1', 'tcp://h:1/notadid', 'tcp://a b:1', `tcp://h:1/did:key:${'z'.repeat(2000)}`]) {
    it(`rejects ${JSON.stringify(bad.slice(0, 40))} with InvalidAddressError`, () => {
      let err: (Error & { code?: string }) | undefined
      try { parseTcpAddress(bad) } catch (e) { err = e as Error }
      expect(err?.name).toBe('InvalidAddressError')
      expect(err?.code).toBe('ERR_INVALID_ADDRESS')
    })
  }

  it('canDial accepts tcp addresses with a real port only', () => {
    const t = tcp()({ identity: generateIdentity() })
    expect(t.canDial('tcp://127.0.0.1:1')).toBe(true)
    expect(t.canDial('tcp://127.0.0.1:0')).toBe(false)
    expect(t.canDial('memory://x')).toBe(false)
  })

  it('validates init with InvalidParametersError', () => {
    const identity = generateIdentity()
    for (const init of [{ maxFrameSize: 0 }, { maxInboundBufferBytes: -1 }, { handshakeTimeoutMs: Number.NaN }, { keepAliveIntervalMs: -5 }]) {
      let err: Error | undefined
      try { tcp(init)({ identity }) } catch (e) { err = e as Error }
      expect(err?.name).toBe('InvalidParametersError')
    }
    expect(() => tcp({ keepAliveIntervalMs: 0 })({ identity })).not.toThrow()
  })
})
