import { createHash } from 'node:crypto'
import { NodeHistory, verificationProbability } from '../compute/verification.js'
import { stream } from './random.js'
import { availability, MESH, onlineAt, type World } from './world.js'

/** One compute job a simulated builder ran on a node, as the verifiers come to know it. */
export interface SimJob {
  epoch: number
  identity: number
  jobId: string
  /** The quoted price (base units). */
  value: bigint
  /** When the receipt (or the fraud evidence) reaches the verifiers, ms. */
  atMs: number
  /** Re-run on an independent node and matched: a work receipt. */
  verified: boolean
  /** Re-run and mismatched: the node's signed wrong result is fraud evidence (slashed). */
  fraud: boolean
  /** `sha256(jobId)`: the evidence hash, for a fraud. */
  evidenceHash: `0x${string}`
  /** The cohort of the builder that paid for it; undefined: an outside builder. */
  builder?: string
}

/** Wash trading: a builder paying the nodes of its own cohort for jobs at an inflated price. */
export interface WashTrade {
  cohort: string
  /** Jobs per identity of the cohort and epoch, each re-run on another identity of the cohort. */
  jobsPerEpoch: number
  price: bigint
}

/** The fee burned from a payment of `value` at `feeBps` (as Payments computes it). */
export function paymentFee(value: bigint, feeBps: number): bigint {
  return (value * BigInt(feeBps)) / 10_000n
}

/** Jobs a builder sends each registered node per epoch, and their price. */
export const JOBS_PER_NODE_EPOCH = 4
export const JOB_PRICE = 1n * MESH

/**
 * The compute demand of a run: a builder sends every registered, online node
 * {@link JOBS_PER_NODE_EPOCH} jobs an epoch and re-runs each on an independent node with the
 * probability of the compute market's adaptive rule (`verificationProbability` of the node's clean
 * checks, kept in the market's `NodeHistory`); nodes of `forgers` sign a result without running
 * the job, so a re-run catches them, after which the builder sends them nothing more. Only verified
 * jobs become work receipts (what the reward function's compute pool counts).
 */
export function drawJobs(world: World, forgers: string | undefined, wash?: WashTrade): SimJob[] {
  const { protocol, fleet, epochs } = world
  const history = new NodeHistory()
  const jobs: SimJob[] = []
  const epochMs = protocol.epochDuration * 1000
  const spans = fleet.identities.map((id) => availability(world, id.index))
  for (let epoch = 0; epoch < epochs; epoch++) {
    const random = stream(world.seed, 'jobs', epoch)
    const start = (protocol.genesisTime + epoch * protocol.epochDuration) * 1000
    for (const id of fleet.identities) {
      if (!id.memberships.some((m) => m.from <= epoch && epoch < m.to)) continue
      const peer = world.peerIds[id.index] as string
      for (let j = 0; j < JOBS_PER_NODE_EPOCH; j++) {
        // Within the challenge window: after the seed block, before observations go out.
        const atMs = start + Math.floor(epochMs * (0.15 + 0.6 * random.uniform()))
        const checked = random.uniform() < verificationProbability(history.clean(peer))
        if (history.caught(peer) || !onlineAt(world, spans[id.index] ?? [], atMs)) continue
        const forged = id.cohort === forgers
        const jobId = `${world.seed}/${epoch}/${id.index}/${j}`
        const evidenceHash = `0x${createHash('sha256').update(jobId).digest('hex')}` as const
        if (checked && forged) history.recordCaught(peer)
        else if (checked) history.recordClean(peer)
        jobs.push({
          epoch,
          identity: id.index,
          jobId,
          value: JOB_PRICE,
          atMs,
          verified: checked && !forged,
          fraud: checked && forged,
          evidenceHash,
        })
      }
    }
  }
  if (wash !== undefined) jobs.push(...washJobs(world, wash, spans))
  return jobs.sort((a, b) => a.atMs - b.atMs || a.identity - b.identity)
}

/**
 * The wash trader's jobs: its builder sends each of its online identities `jobsPerEpoch` trivial
 * jobs at `price`, re-run on another of its identities, so every one is a verified work receipt;
 * it pays them by voucher, and its nodes redeem (the fee burns).
 */
function washJobs(world: World, wash: WashTrade, spans: ReturnType<typeof availability>[]): SimJob[] {
  const { protocol, fleet, epochs } = world
  const epochMs = protocol.epochDuration * 1000
  const jobs: SimJob[] = []
  for (let epoch = 0; epoch < epochs; epoch++) {
    const random = stream(world.seed, 'wash', epoch)
    const start = (protocol.genesisTime + epoch * protocol.epochDuration) * 1000
    for (const id of fleet.identities) {
      if (id.cohort !== wash.cohort || !id.memberships.some((m) => m.from <= epoch && epoch < m.to)) continue
      for (let j = 0; j < wash.jobsPerEpoch; j++) {
        const atMs = start + Math.floor(epochMs * (0.15 + 0.6 * random.uniform()))
        if (!onlineAt(world, spans[id.index] ?? [], atMs)) continue
        const jobId = `${world.seed}/${epoch}/${id.index}/wash/${j}`
        jobs.push({
          epoch,
          identity: id.index,
          jobId,
          value: wash.price,
          atMs,
          verified: true,
          fraud: false,
          evidenceHash: `0x${createHash('sha256').update(jobId).digest('hex')}`,
          builder: wash.cohort,
        })
      }
    }
  }
  return jobs
}
