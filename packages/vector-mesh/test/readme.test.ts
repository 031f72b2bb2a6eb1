import { readFileSync } from 'node:fs'
import { expect, it, vi } from 'vitest'

it('the README example runs as documented, and is the code of test/readme-example.ts', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const example = readFileSync(new URL('./readme-example.ts', import.meta.url), 'utf8')
  expect(readme).toContain('```ts\n' + example + '```')
  const log = vi.spyOn(console, 'log').mockImplementation(() => {})
  try {
    await import('./readme-example.js')
    expect(log.mock.calls).toEqual([[['Apple'], true], [['completed', 'completed'], 0]])
  } finally {
    log.mockRestore()
  }
})
