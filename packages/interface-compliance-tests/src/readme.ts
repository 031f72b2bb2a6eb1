/**
 * README examples as tests: a package keeps its README's example as `test/readme-example.ts`; this
 * runs it and returns what it printed, so the test asserts the output the README documents.
 */
import { readFileSync } from 'node:fs'
import { expect, vi } from 'vitest'

/** How `runReadmeExample` checks an example. */
export interface ReadmeExampleOptions {
  /** Also assert that the README (`../README.md` from the test) contains the example file verbatim in a ```ts block. Default true. */
  inReadme?: boolean
}

/**
 * Runs a README example and returns the arguments of every `console.log` call it made (the log is
 * silenced meanwhile). `testUrl` is the calling test's `import.meta.url`; `load` imports the
 * example (`() => import('./readme-example.js')`, so the test runner resolves it).
 */
export async function runReadmeExample(testUrl: string, load: () => Promise<unknown>, options: ReadmeExampleOptions = {}): Promise<unknown[][]> {
  if (options.inReadme !== false) {
    const readme = readFileSync(new URL('../README.md', testUrl), 'utf8')
    const example = readFileSync(new URL('./readme-example.ts', testUrl), 'utf8')
    expect(readme).toContain('```ts\n' + example + '```')
  }
  const log = vi.spyOn(console, 'log').mockImplementation(() => {})
  try {
    await load()
    return [...log.mock.calls]
  } finally {
    log.mockRestore()
  }
}
