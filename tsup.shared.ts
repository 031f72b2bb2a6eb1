/**
 * The tsup settings every package builds with: ESM only, Node 20, bundled .d.ts, source maps.
 * A package's tsup.config.ts is `export default packageConfig()`, with overrides where it needs
 * them (reference-node adds its CLI entry).
 */
import { defineConfig, type Options } from 'tsup'

export function packageConfig(overrides: Options = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    dts: true,
    sourcemap: true,
    clean: true,
    ...overrides,
  })
}
