import { INITIAL_NETWORK_PARAMS, type NetworkParamsStruct } from '../chain/network-params.js'
import type { NetworkPort } from '../mesh/network-port.js'
import type { PeerVerifier } from '../mesh/peer-key.js'
import { ComputeError } from './errors.js'
import { type JobResult, runJob } from './job-protocol.js'
import type { JobSpec } from './job-spec.js'
import type { ScoredQuote } from './placement.js'

/**
 * Verification by re-execution: with probability p a client runs the same job (same id, so a JS
 * job's Math.random is the same) on an independent node and compares output hashes; on a mismatch a
 * third node decides by majority. The node whose signed output lost is caught: its signed result is
 * the fraud evidence verifiers turn into a slash (docs/protocol.md, "Verification").
 */

/**
 * The bounds of the re-run rule in parts per million, as NetworkParams holds them
 * (`computeVerifyMaxPpm` for a node with no history, falling to `computeVerifyMinPpm`).
 */
export interface VerifyBounds {
  minPpm: number
  maxPpm: number
}

/** One million: a probability of 1 in ppm. */
export const PPM = 1_000_000

/**
 * The bounds NetworkParams starts with ({@link INITIAL_NETWORK_PARAMS}: 5% to 100%), used where no
 * chain tells the current ones.
 */
export const DEFAULT_VERIFY_BOUNDS: Readonly<VerifyBounds> = Object.freeze({
  minPpm: INITIAL_NETWORK_PARAMS.computeVerifyMinPpm,
  maxPpm: INITIAL_NETWORK_PARAMS.computeVerifyMaxPpm,
})

/** The bounds of an on-chain parameter set. */
export function verifyBoundsOf(
  params: Pick<NetworkParamsStruct, 'computeVerifyMinPpm' | 'computeVerifyMaxPpm'>,
): VerifyBounds {
  return { minPpm: params.computeVerifyMinPpm, maxPpm: params.computeVerifyMaxPpm }
}

/**
 * The re-execution probability, in exact integer ppm, for a node this client has checked `clean`
 * times without a mismatch: `max(minPpm, floor(maxPpm × 20 / (20 + clean)))`, so `maxPpm` for a node
 * with no history, half of it after 20 clean checks, never below `minPpm` (the floor wins should a
 * caller pass `minPpm > maxPpm`, which NetworkParams refuses).
 *
 * @example
 * verificationPpm(0, { minPpm: 50_000, maxPpm: 1_000_000 }) // 1_000_000
 * verificationPpm(20, { minPpm: 50_000, maxPpm: 1_000_000 }) // 500_000
 */
export function verificationPpm(clean: number, bounds: VerifyBounds = DEFAULT_VERIFY_BOUNDS): number {
  const c = Math.max(0, Math.floor(clean))
  return Math.max(bounds.minPpm, Math.floor((bounds.maxPpm * 20) / (20 + c)))
}

/**
 * The same rule as a real-valued probability, `max(min, max / (1 + clean / 20))` (what the
 * simulator draws against; with the default bounds it is exactly the market's historic
 * `max(0.05, 1 / (1 + clean / 20))`). Clients decide with {@link verificationPpm}.
 */
export function verificationProbability(clean: number, bounds: VerifyBounds = DEFAULT_VERIFY_BOUNDS): number {
  return Math.max(bounds.minPpm / PPM, bounds.maxPpm / PPM / (1 + Math.max(0, clean) / 20))
}

/** What a client remembers of each node it checked (in memory; a real client keeps it on disk). */
export class NodeHistory {
  readonly #clean = new Map<string, number>()
  readonly #caught = new Set<string>()

  clean(peerId: string): number {
    return this.#clean.get(peerId) ?? 0
  }
  caught(peerId: string): boolean {
    return this.#caught.has(peerId)
  }
  recordClean(peerId: string): void {
    this.#clean.set(peerId, this.clean(peerId) + 1)
  }
  recordCaught(peerId: string): void {
    this.#caught.add(peerId)
    this.#clean.delete(peerId)
  }
  /** 0 to 1 for the placement score: 0 once caught, growing with clean checks. */
  reputation(peerId: string): number {
    return this.caught(peerId) ? 0 : Math.min(1, 0.5 + this.clean(peerId) / 40)
  }
}

/** A signed wrong result: the evidence against `node`. */
export interface FraudEvidence {
  node: string
  /** Who it answered (the signature binds it). */
  client: string
  jobId: string
  codeHash: string
  inputHash: string
  /** The output hash it signed, and the one the majority got. */
  signedOutputHash: string
  majorityOutputHash: string
  sig: string
}

/** Failures of one node that send the job to the next quoted node. */
const NEXT_NODE: readonly string[] = [
  'PEER_UNREACHABLE',
  'REQUEST_TIMEOUT',
  'PROTOCOL_NOT_SUPPORTED',
  'REMOTE_ERROR',
  'PAYMENT_REQUIRED',
]

/** The outcome of a checked run. */
export interface VerifiedRun {
  result: JobResult
  quote: ScoredQuote
  /** `signed`: not re-run; `verified`: a second node agreed; `majority`: a third node decided. */
  verification: 'signed' | 'verified' | 'majority'
  evidence: FraudEvidence[]
  /** Every run that returned a checked result, the losers of a majority too (for paying the others). */
  runs: { quote: ScoredQuote; result: JobResult }[]
}

/**
 * Runs `spec` on the first reachable quote's node, then, with the node's {@link verificationPpm}
 * under `bounds` (or `probability` when given), re-runs it on the next independent node (another operator where
 * one is quoted) and settles a mismatch with a third. Never returns a result that lost a check.
 *
 * @throws ComputeError the node's code when the job fails; JOB_FAILED when no majority exists;
 *   JOB_NO_PROVIDER when no node can be reached.
 */
export async function runVerified(
  port: Pick<NetworkPort, 'peerId' | 'request'>,
  quotes: readonly ScoredQuote[],
  spec: JobSpec,
  options: {
    network: string
    verifier: PeerVerifier
    history: NodeHistory
    operatorOf?: (peerId: string) => string | undefined
    /** A fixed re-run probability, 0 to 1, instead of the adaptive rule. */
    probability?: number
    /**
     * The adaptive rule's bounds (default {@link DEFAULT_VERIFY_BOUNDS}); the SDK passes the
     * current NetworkParams' ones.
     */
    bounds?: VerifyBounds
    random?: () => number
    onProgress?: (stage: 'running' | 'verifying', detail: Record<string, unknown>) => void
    /** Runs the job on one quoted node (default {@link runJob}); the SDK pays around it. */
    run?: (quote: ScoredQuote) => Promise<JobResult>
  },
): Promise<VerifiedRun> {
  const random = options.random ?? Math.random
  const run = options.run ?? ((quote: ScoredQuote) => runJob(port, quote.node, spec, options))
  const remaining = quotes.filter((q) => !options.history.caught(q.node))
  const take = async (exclude: ReadonlySet<string>) => {
    let last: unknown
    for (;;) {
      // Independent: a node of an operator not used yet for this job.
      const at = remaining.findIndex((q) => !exclude.has(options.operatorOf?.(q.node) ?? q.node))
      if (at < 0) break
      const quote = remaining.splice(at, 1)[0] as ScoredQuote
      try {
        return { quote, result: await run(quote) }
      } catch (err) {
        last = err
        const code = (err as { code?: string }).code ?? ''
        if (!NEXT_NODE.includes(code)) throw err
      }
    }
    throw new ComputeError('JOB_NO_PROVIDER', 'no quoted node could be reached to run the job', {
      cause: last,
    })
  }
  const operator = (q: ScoredQuote) => options.operatorOf?.(q.node) ?? q.node

  options.onProgress?.('running', { provider: remaining[0]?.node })
  const first = await take(new Set())
  const draw = random()
  const checked =
    options.probability === undefined
      ? draw * PPM < verificationPpm(options.history.clean(first.quote.node), options.bounds)
      : draw < options.probability
  if (!checked) return { ...first, verification: 'signed', evidence: [], runs: [first] }

  options.onProgress?.('verifying', { provider: first.quote.node })
  const second = await take(new Set([operator(first.quote)])).catch(() => undefined)
  if (second === undefined) return { ...first, verification: 'signed', evidence: [], runs: [first] }
  if (second.result.outputHash === first.result.outputHash) {
    options.history.recordClean(first.quote.node)
    options.history.recordClean(second.quote.node)
    return { ...first, verification: 'verified', evidence: [], runs: [first, second] }
  }
  // A mismatch: a third, independent node decides.
  const third = await take(new Set([operator(first.quote), operator(second.quote)])).catch((err: unknown) => {
    throw new ComputeError(
      'JOB_FAILED',
      'two nodes returned different outputs and no third node could decide',
      {
        hint: 'Run it again where more nodes can take it (a wider `near`, tier any)',
        cause: err,
      },
    )
  })
  const runs = [first, second, third]
  const votes = new Map<string, number>()
  for (const r of runs) votes.set(r.result.outputHash, (votes.get(r.result.outputHash) ?? 0) + 1)
  const [majority, count] = [...votes].sort((a, b) => b[1] - a[1])[0] as [string, number]
  if (count < 2) throw new ComputeError('JOB_FAILED', 'three nodes returned three different outputs')
  const evidence: FraudEvidence[] = []
  for (const r of runs) {
    if (r.result.outputHash === majority) {
      options.history.recordClean(r.quote.node)
      continue
    }
    options.history.recordCaught(r.quote.node)
    evidence.push({
      node: r.quote.node,
      client: port.peerId,
      jobId: spec.id,
      codeHash: r.result.codeHash,
      inputHash: r.result.inputHash,
      signedOutputHash: r.result.outputHash,
      majorityOutputHash: majority,
      sig: r.result.sig,
    })
  }
  const winner = runs.find((r) => r.result.outputHash === majority) as (typeof runs)[number]
  return { ...winner, verification: 'majority', evidence, runs }
}
