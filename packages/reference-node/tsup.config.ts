import { defineConfig } from 'tsup'

export default defineConfig({
  // the library and the `kos-mesh` binary (dist/cli.js)
  entry: ['src/index.ts', 'src/cli.ts'],
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  // harmless in the library chunks, required for the bin
  banner: { js: '#!/usr/bin/env node' },
})
