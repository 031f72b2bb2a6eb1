import { describe, expect, it } from 'vitest'
import { WriteTurns } from '../src/index.js'

describe('WriteTurns', () => {
  it('hands turns out FIFO, one at a time, only while not blocked; abort and rejectAll end waiters', async () => {
    let blocked = false
    const turns = new WriteTurns(() => blocked)
    const order: number[] = []
    expect(turns.busy).toBe(false)
    await turns.wait()
    expect(turns.running).toBe(true)
    const second = turns.wait().then(() => order.push(2))
    const third = turns.wait().then(() => order.push(3))
    const ctl = new AbortController()
    const aborted = turns.wait(ctl.signal)
    ctl.abort()
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' })
    expect(turns.waiting).toBe(2)
    blocked = true
    turns.release()
    await Promise.resolve()
    expect(order).toEqual([]) // blocked: nobody gets a turn
    blocked = false
    turns.pump() // the drain event
    await second
    expect(order).toEqual([2])
    turns.release()
    await third
    expect(order).toEqual([2, 3])
    const last = turns.wait()
    turns.rejectAll(new Error('closed'))
    await expect(last).rejects.toThrow('closed')
    expect(turns.waiting).toBe(0)
  })
})
