import type { JobLog } from '../api/job-log.js'
import { type ChainClient, claimMany, epochRewardsAbi, getEpochState, readContract } from '../chain/index.js'
import type { NetworkFile } from '../chain/network-file.js'
import type { Clock, Timer } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import { Meshwork } from '../sdk/index.js'

/**
 * What keeps a devnet busy once it runs, so that its dashboard has something to show: a demo builder
 * that submits a small job every few seconds (recorded in the API's job log), and a claimer that
 * claims every operator's rewards once an epoch (so the claimed chart moves). Both run in the devnet's
 * process and stop with it.
 */

/** The jobs the demo builder takes turns with: small, deterministic, and cheap on 2 cores. */
const DEMO_JOBS: readonly { code: string; input: (n: number) => unknown }[] = [
  { code: '(xs) => xs.map((x) => x * x)', input: (n) => [n, n + 1, n + 2] },
  {
    code: '(n) => { let a = 0, b = 1; for (let i = 0; i < n; i++) [a, b] = [b, a + b]; return a }',
    input: (n) => 20 + (n % 40),
  },
  { code: '(s) => s.split("").reverse().join("")', input: (n) => `meshwork-${n}` },
]

/** A running demo builder. */
export interface DemoBuilder {
  stop(): Promise<void>
}

/**
 * Connects a builder (paying with `privateKey`) and runs one demo job every `intervalMs`, one at a
 * time, recording each outcome (or failure) in `jobs`.
 */
export async function startDemoBuilder(
  init: { network: NetworkFile; privateKey: `0x${string}`; rpc: string; intervalMs: number },
  components: { jobs: Pick<JobLog, 'record'>; clock: Clock; logger: Logger },
): Promise<DemoBuilder> {
  const { clock, logger, jobs } = components
  const mw = await Meshwork.connect({
    network: init.network,
    payer: { privateKey: init.privateKey, rpc: init.rpc },
    logger: logger.child({ module: 'demo-builder' }),
  })
  let stopped = false
  let timer: Timer | undefined
  let running: Promise<void> = Promise.resolve()
  let n = 0
  const once = async () => {
    const job = DEMO_JOBS[n % DEMO_JOBS.length] as (typeof DEMO_JOBS)[number]
    const at = clock.now()
    n++
    try {
      const r = await mw.jobs.run({ kind: 'js', code: job.code, input: job.input(n), tier: 'any' })
      jobs.record({
        id: r.jobId,
        kind: 'js',
        at,
        ok: true,
        provider: r.provider,
        tier: r.tier,
        latencyMs: Math.round(r.latencyMs * 100) / 100,
        verification: r.verification,
        price: r.price.toString(),
      })
    } catch (err) {
      logger.debug({ err }, 'demo job failed')
      jobs.record({
        id: `failed-${at}-${n}`,
        kind: 'js',
        at,
        ok: false,
        provider: null,
        tier: null,
        latencyMs: null,
        verification: null,
        price: null,
        error: ((err as { code?: string }).code ?? 'FAILED').slice(0, 64),
      })
    }
  }
  const loop = () => {
    if (stopped) return
    running = once().finally(() => {
      if (!stopped) timer = clock.setTimer(init.intervalMs, loop)
    })
  }
  loop()
  return {
    async stop() {
      stopped = true
      timer?.cancel()
      await running.catch(() => undefined)
      await mw.close()
    },
  }
}

/**
 * Claims every account in `accounts` (their tokens go to them; anyone may send a claim) against the
 * claimable root, with cumulative amounts and proofs from a verifier's `/proofs` route. Accounts with
 * nothing new are left out; returns how many were claimed.
 */
export async function claimForAll(
  client: ChainClient,
  accounts: readonly `0x${string}`[],
  proofsUrl: string,
): Promise<number> {
  const state = await getEpochState(client)
  if (/^0x0+$/.test(state.claimableRoot)) return 0
  const claims = []
  for (const account of accounts) {
    const res = await fetch(`${proofsUrl}/proofs/${account}?epoch=${state.claimableEpoch}`, {
      signal: AbortSignal.timeout(5_000),
    })
    if (!res.ok) {
      await res.body?.cancel()
      continue
    }
    const leaf = (await res.json()) as { cumulativeAmount: string; proof: `0x${string}`[]; root: string }
    if (leaf.root.toLowerCase() !== state.claimableRoot.toLowerCase()) continue
    const claimed = await readContract<bigint>(client, {
      address: client.contracts.EpochRewards,
      abi: epochRewardsAbi,
      functionName: 'claimed',
      args: [account],
    })
    if (BigInt(leaf.cumulativeAmount) > claimed)
      claims.push({ account, cumulativeAmount: BigInt(leaf.cumulativeAmount), proof: leaf.proof })
  }
  if (claims.length > 0) await claimMany(client, claims)
  return claims.length
}
