/**
 * Shared vitest settings. Workspace packages resolve to their `src/` in tests, so a package's
 * tests never depend on another package's build output (and can run while it is being rebuilt).
 */
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const root = dirname(fileURLToPath(import.meta.url))
const alias = readdirSync(join(root, 'packages')).flatMap((dir) => [
  { find: new RegExp(`^@kos-mesh/${dir}$`), replacement: join(root, 'packages', dir, 'src', 'index.ts') },
  // subpath exports (`@kos-mesh/klp-router/testnet` -> src/testnet/index.ts)
  { find: new RegExp(`^@kos-mesh/${dir}/([a-z-]+)$`), replacement: join(root, 'packages', dir, 'src', '$1', 'index.ts') },
])

export function config(overrides: { testTimeout?: number; include?: string[] } = {}) {
  return defineConfig({
    resolve: { alias },
    test: {
      include: overrides.include ?? ['test/**/*.test.ts'],
      testTimeout: overrides.testTimeout ?? 30_000,
      hookTimeout: 30_000,
      // A test that blocks its process's main thread (a native deadlock, an endless loop) cannot run
      // vitest's own timeout; the watchdog turns it into a failed run instead of a hang.
      setupFiles: [join(root, 'scripts', 'test-watchdog.ts')],
      // The JSON report feeds scripts/test-summary.mjs, which prints the suite's closing line.
      reporters: ['default', ['json', { outputFile: '.test-results/vitest.json' }]],
    },
  })
}
