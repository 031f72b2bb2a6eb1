import { expect, it, vi } from 'vitest'

it('the README example runs as documented', async () => {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {})
  try {
    await import('./readme-example.js')
    expect(log.mock.calls).toEqual([[{ expression: '6 * 7', value: 42 }], ['no_eligible_agents']])
  } finally {
    log.mockRestore()
  }
})
