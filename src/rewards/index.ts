export {
  buildCumulativeTree,
  type CumulativeEntry,
  type CumulativeTree,
  leafHash,
} from './cumulative-tree.js'
