import { describe, expect, it } from 'vitest'
import {
  AbortError, DecodeError, KLP_MESSAGE_TYPES, KLPMessageType, KosMeshError, LimitExceededError,
  MessagePriority, PeerRefusedError, isKosMeshError, throwIfAborted,
} from '../src/index.js'

describe('enums', () => {
  it('lists every message type once', () => {
    expect(KLP_MESSAGE_TYPES).toHaveLength(8)
    expect(new Set(KLP_MESSAGE_TYPES).size).toBe(8)
    expect(KLP_MESSAGE_TYPES).toContain(KLPMessageType.PEER_DISCOVERY)
  })
  it('keeps the spec priority values', () => {
    expect([MessagePriority.LOW, MessagePriority.NORMAL, MessagePriority.HIGH, MessagePriority.CRITICAL]).toEqual([1, 5, 8, 10])
  })
})

describe('errors', () => {
  it('have stable names and codes and a class hierarchy', () => {
    const err = new LimitExceededError('too big')
    expect(err.name).toBe('LimitExceededError')
    expect(err.code).toBe('ERR_LIMIT_EXCEEDED')
    expect(err).toBeInstanceOf(DecodeError)
    expect(err).toBeInstanceOf(KosMeshError)
    expect(isKosMeshError(err)).toBe(true)
    expect(isKosMeshError(new Error('x'))).toBe(false)
    expect(LimitExceededError.code).toBe('ERR_LIMIT_EXCEEDED')
  })
  it('a peer\'s refusal carries its wire code', () => {
    const err = new PeerRefusedError('refused', 'insufficient_trust')
    expect(err.reason).toBe('insufficient_trust')
    expect(err.code).toBe('ERR_PEER_REFUSED')
    expect(err).toBeInstanceOf(KosMeshError)
  })
  it('keeps the cause', () => {
    const cause = new Error('inner')
    expect(new DecodeError('outer', { cause }).cause).toBe(cause)
  })
  it('throwIfAborted throws AbortError only when aborted', () => {
    const ac = new AbortController()
    expect(() => throwIfAborted(ac.signal)).not.toThrow()
    ac.abort(new Error('why'))
    expect(() => throwIfAborted(ac.signal)).toThrow(AbortError)
  })
})
