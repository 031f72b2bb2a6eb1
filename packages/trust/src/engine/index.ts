/**
 * The sans-I/O trust engine: a bounded store of verified statements, this node's anchors and own
 * observations, personalised attenuated widest-path scores, reputation, endorsements, verification
 * levels and revocation. See docs/TRUST.md for the model.
 */
import type { TrustEngineComponents, TrustEngineInit, TrustGraphEngine } from '../types.js'
import { TrustGraph } from './engine.js'

/** Creates the trust engine of the node `init.self`. Throws InvalidParametersError on bad options. */
export function createTrustEngine(init: TrustEngineInit, components: TrustEngineComponents = {}): TrustGraphEngine {
  return new TrustGraph(init, components)
}

export { DEFAULT_DELTA_WEIGHTS } from './config.js'
