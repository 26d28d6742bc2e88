import { randomBytes } from 'node:crypto'
import type { JobLog } from '../api/job-log.js'
import { type ChainClient, claimMany, epochRewardsAbi, getEpochState, readContract } from '../chain/index.js'
import type { NetworkFile } from '../chain/network-file.js'
import type { Clock, Timer } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import { Meshwork } from '../sdk/index.js'
import { memoryLeaseStore } from '../storage/rent.js'

/**
 * What keeps a devnet busy once it runs, so that its dashboard has something to show: a demo builder
 * that submits a small job every few seconds (recorded in the API's job log) and keeps a small file
 * stored (put once, fetched now and then: shards for the verifiers to challenge and bytes served to
 * count; each holder paid the rent of every epoch it proves its shard), and a claimer that claims every operator's rewards once an epoch (so the claimed chart
 * moves). Both run in the devnet's process and stop with it.
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

/** The demo builder's file: its size, its code (any K of N shards give it back) and how long it is kept. */
export interface DemoStorage {
  bytes: number
  k: number
  n: number
  epochs: number
  /** Fetch it back every this many ticks (default 4). */
  getEvery?: number
}

/** A demo file for `nodes` storage nodes: 64 KiB, N = min(nodes, 6), K = ceil(N / 2); none below 2 nodes. */
export function demoStorageFor(nodes: number): DemoStorage | undefined {
  const n = Math.min(nodes, 6)
  return n < 2 ? undefined : { bytes: 64 * 1024, k: Math.ceil(n / 2), n, epochs: 1_000 }
}

/**
 * Connects a builder (paying with `privateKey`) and runs one demo job every `intervalMs`, one at a
 * time, recording each outcome (or failure) in `jobs`. With `storage`, it first stores a file of
 * random bytes (trying again each tick until it is placed), then fetches it back every few ticks,
 * and stores it again when it can no longer be fetched.
 */
export async function startDemoBuilder(
  init: {
    network: NetworkFile
    privateKey: `0x${string}`
    rpc: string
    intervalMs: number
    storage?: DemoStorage
  },
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
  let stored: { id: string; key: string } | undefined
  // The demo file's rent: each holder is paid every epoch it proves its shard.
  const rent = mw.storage.rent(memoryLeaseStore())
  const store = async () => {
    const s = init.storage
    if (s === undefined) return
    try {
      if (stored === undefined) {
        const f = await mw.storage.put(randomBytes(s.bytes), { k: s.k, n: s.n, epochs: s.epochs })
        stored = { id: f.id, key: f.key }
        rent.add(f.leases)
        logger.debug({ id: f.id, holders: f.holders }, 'stored the demo file')
      } else if (n % (s.getEvery ?? 4) === 0) {
        await mw.storage.get(stored.id, stored.key)
      }
      const r = await rent.settle(await mw.currentEpoch(), randomBytes(16).toString('hex'))
      if (r.voided.length > 0) logger.debug({ voided: r.voided.length }, 'demo file leases voided')
    } catch (err) {
      logger.debug({ err }, 'demo storage failed')
      // Not placed, or no longer retrievable: store a fresh one next time.
      stored = undefined
    }
  }
  const once = async () => {
    await store()
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
