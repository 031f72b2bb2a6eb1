import { packageConfig } from '../../tsup.shared.js'

// two entries: the router, and the testnet (subpath `./testnet`, which needs the memory transport)
export default packageConfig({ entry: { index: 'src/index.ts', testnet: 'src/testnet/index.ts' } })
