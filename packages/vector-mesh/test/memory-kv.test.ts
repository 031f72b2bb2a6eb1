import { storeCompliance } from '@kos-mesh/interface-compliance-tests'
import { memoryKeyValueStore } from '../src/index.js'

storeCompliance('memoryKeyValueStore', async () => ({ store: memoryKeyValueStore() }), { volatile: true })
