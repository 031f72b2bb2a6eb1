import { expect, it } from 'vitest'
import { runReadmeExample } from '@kos-mesh/interface-compliance-tests'

it('the README example runs as documented', async () => {
  expect(await runReadmeExample(import.meta.url, () => import('./readme-example.js'), { inReadme: false })).toEqual([[{ expression: '6 * 7', value: 42 }], ['no_eligible_agents']])
})
