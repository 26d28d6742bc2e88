import type { RewardService } from '../rewards/index.js'
import type { RefusedPost } from './sim-ledger.js'
import type { StorageOutcome } from './storage-files.js'

/** What one simulated epoch paid, as its posted root commits to it. */
export interface EpochOutcome {
  epoch: number
  emission: bigint
  root: `0x${string}`
  /** The digest of the epoch's bundle as posted (the fast engine, which builds none, posts zeros). */
  digest: `0x${string}`
  /** PostRoot's `totalCumulative`: everything paid up to and including this epoch. */
  totalCumulative: bigint
  /** Paid this epoch, by operator (lower case). */
  payouts: Map<string, bigint>
  /** What each service's pool paid (the reward function's `pools`). */
  pools: Record<RewardService, bigint>
  /** Nodes in the epoch's registry. */
  registered: number
  /** Nodes whose uptime score reached the threshold. */
  scored: number
}

/** What an engine returns: each epoch's outcome and every post the chain refused. */
export interface EngineRun {
  engine: 'stack' | 'fast'
  epochs: EpochOutcome[]
  refusals: RefusedPost[]
  /** Stake slashed, by peer id (base units). */
  slashed: Map<string, bigint>
  /** Forged roots the colluding verifiers submitted, and how many the chain took. */
  forged: { attempted: number; accepted: number }
  /** What the builder stored, the repairs and the final read-back (scenarios with storage). */
  storage?: StorageOutcome
  /** Messages the simulated network carried and lost (the stack engine only). */
  network?: { delivered: number; dropped: number }
}
