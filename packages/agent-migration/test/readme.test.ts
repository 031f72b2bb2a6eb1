import { expect, it } from 'vitest'
import { runReadmeExample } from '@kos-mesh/interface-compliance-tests'

it('the README example runs as documented, and is the code of test/readme-example.ts', async () => {
  expect(await runReadmeExample(import.meta.url, () => import('./readme-example.js'))).toEqual([[1], ['completed'], [2, 'counter-1'], ['FencedAgentError']])
})
