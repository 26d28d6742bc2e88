export {
  buildCumulativeTree,
  type CumulativeEntry,
  type CumulativeTree,
  leafHash,
} from './cumulative-tree.js'
export {
  type EmissionSchedule,
  emissionOf,
  emittedBefore,
  emittedThrough,
  totalEmission,
} from './emission.js'
