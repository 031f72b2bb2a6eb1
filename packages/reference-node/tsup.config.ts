import { packageConfig } from '../../tsup.shared.js'

export default packageConfig({
  // the library and the `kos-mesh` binary (dist/cli.js)
  entry: ['src/index.ts', 'src/cli.ts'],
  dts: { entry: 'src/index.ts' },
  // harmless in the library chunks, required for the bin
  banner: { js: '#!/usr/bin/env node' },
})
