import {
  addPayouts,
  buildCumulativeTree,
  type ComputeObservation,
  type CumulativeEntry,
  computeEpochRewards,
  emissionOf,
  type RewardNode,
  type UptimeObservation,
} from '../rewards/index.js'
import { MAX_PROBE_RTT_MS } from '../verifier/observation.js'
import { distanceToCellKm } from '../verifier/probe.js'
import { challengeTimes } from '../verifier/schedule.js'
import { colludersPostForgedRoot } from './colluders.js'
import { paymentFee } from './compute-jobs.js'
import type { EngineRun, EpochOutcome } from './engine.js'
import { SimError } from './errors.js'
import type { Span } from './fleet.js'
import { stream } from './random.js'
import { chainOrigin, firstBlockNumberAtOrAfter, SimLedger, simBlockHash } from './sim-ledger.js'
import type { Progress } from './stack-engine.js'
import {
  availability,
  MESH,
  onlineAt,
  registeredEpochOf,
  registrationMs,
  SLASH_AMOUNT,
  type World,
} from './world.js'

const ZERO = '0x0000000000000000000000000000000000000000' as const

/**
 * The fast path for large networks: the same world (fleet, keys, sessions, links), the same challenge
 * schedule (`challengeTimes` from the epoch's seed block), the same registry rules and the same pure
 * reward function and cumulative tree as the stack engine, without the messages: a challenge counts
 * as answered when the node's machine is on when it arrives, neither the challenge nor the answer is
 * lost, and the round trip is within the deadline. Signatures, gossip and the leader's bundle are
 * skipped (their correctness is the stack engine's and the verifier tests' business), so the
 * observations are what honest verifiers would sign. With no loss it posts the same roots as the
 * stack engine (`src/sim/engines.test.ts`).
 */
export async function runFast(world: World, options: { onProgress?: Progress } = {}): Promise<EngineRun> {
  const { protocol, epochs, fleet } = world
  if (world.stations.length > 0 || world.storage !== undefined)
    throw new SimError('SIM_ENGINE_UNSUPPORTED', 'the fast engine does not run sensors or storage', {
      hint: 'Run this scenario with --engine stack (at most 2,000 nodes)',
    })
  const { genesisTime, epochDuration, blockSeconds } = protocol
  let now = chainOrigin(genesisTime) * 1000
  const ledger = new SimLedger({
    clock: { now: () => now },
    seed: world.seed,
    genesisTime,
    epochDuration,
    blockSeconds,
    quorum: world.quorum,
    emission: protocol.emission,
    params: protocol.params,
    paymentFeeBps: protocol.paymentFeeBps,
  })
  for (const v of world.verifiers)
    ledger.registerVerifier({
      peerId: v.signer.peerId,
      address: ledger.poster(v.evmKey).address,
      stake: 100_000n * MESH,
    })
  const verifierIds = world.verifiers.map((v) => v.signer.peerId)
  const places = new Map(
    world.verifiers.map((v) => [v.signer.peerId, { lat: v.place.lat, lon: v.place.lon }]),
  )

  // Registrations in time order, replayed into the ledger as the clock passes them.
  const events: { ms: number; order: number; run: () => void }[] = []
  for (const id of fleet.identities) {
    const peerId = world.peerIds[id.index] as string
    const operator = world.operators[id.index] as `0x${string}`
    for (const m of id.memberships) {
      events.push({
        ms: registrationMs(protocol, m.from),
        order: events.length,
        run: () =>
          ledger.registerNode({
            peerId,
            operator,
            stake: BigInt(id.stakeMesh) * MESH,
            h3Cell: id.claimed.cell,
          }),
      })
      if (m.to < epochs)
        events.push({
          ms: registrationMs(protocol, m.to),
          order: events.length,
          run: () => ledger.deregisterNode(peerId),
        })
    }
  }
  for (const job of world.jobs)
    if (job.fraud) {
      const node = world.peerIds[job.identity] as string
      events.push({ ms: job.atMs, order: events.length, run: () => ledger.slashNode(node, SLASH_AMOUNT) })
    }
  events.sort((a, b) => a.ms - b.ms || a.order - b.order)
  let nextEvent = 0
  const advanceTo = (ms: number) => {
    while (nextEvent < events.length && (events[nextEvent] as (typeof events)[number]).ms <= ms) {
      const e = events[nextEvent++] as (typeof events)[number]
      now = e.ms
      e.run()
    }
    now = Math.max(now, ms)
  }

  const spans = new Map<string, Span[]>()
  for (const id of fleet.identities)
    spans.set(world.peerIds[id.index] as string, availability(world, id.index))

  const jobsByEpoch = new Map<number, typeof world.jobs>()
  for (const job of world.jobs) {
    const list = jobsByEpoch.get(job.epoch) ?? []
    list.push(job)
    jobsByEpoch.set(job.epoch, list)
  }
  const outcomes: EpochOutcome[] = []
  const forged = { attempted: 0, accepted: 0 }
  let entries: CumulativeEntry[] = []
  for (let epoch = 0; epoch < epochs; epoch++) {
    const startMs = (genesisTime + epoch * epochDuration) * 1000
    const seedBlock = firstBlockNumberAtOrAfter(genesisTime, blockSeconds, startMs / 1000)
    // The registry as of the seed block: every registration made before it.
    advanceTo((chainOrigin(genesisTime) + Number(seedBlock) * blockSeconds) * 1000)
    const registry = ledger.registryAt(seedBlock)
    const seed = simBlockHash(world.seed, seedBlock)
    const nodes: RewardNode[] = registry.nodes.map((n) => ({
      peerId: n.peerId,
      operator: n.operator,
      stake: n.stake,
      registeredEpoch: registeredEpochOf(protocol, n.registeredAt * 1000),
      ...(n.h3Cell === undefined ? {} : { cell: n.h3Cell }),
    }))
    const uptime: UptimeObservation[] = []
    for (const verifier of verifierIds) {
      const random = stream(world.seed, 'fast-links', epoch, verifier)
      for (const node of nodes) {
        if (node.peerId === verifier) continue
        const times = challengeTimes({
          seed,
          verifier,
          node: node.peerId,
          epochStartMs: startMs,
          epochDurationMs: epochDuration * 1000,
          count: protocol.challengesPerEpoch,
        })
        const there = world.latency(verifier, node.peerId)
        const back = world.latency(node.peerId, verifier)
        const sessions = spans.get(node.peerId) ?? []
        let answered = 0
        let fastest = Number.POSITIVE_INFINITY
        for (const t of times) {
          const lostThere = random.uniform() < (there.lossRate ?? 0)
          const oneWay = Math.round(there.latencyMs + random.uniform() * there.jitterMs)
          const lostBack = random.uniform() < (back.lossRate ?? 0)
          const backWay = Math.round(back.latencyMs + random.uniform() * back.jitterMs)
          if (lostThere || lostBack || oneWay + backWay > protocol.challengeTimeoutMs) continue
          if (onlineAt(world, sessions, t + oneWay)) {
            answered++
            fastest = Math.min(fastest, oneWay + backWay)
          }
        }
        // The location probe the stack's verifiers put in their observations (`locationProbe`).
        const place = places.get(verifier)
        const probe =
          place === undefined || node.cell === undefined || answered === 0
            ? undefined
            : { rttMs: Math.min(MAX_PROBE_RTT_MS, fastest), distanceKm: distanceToCellKm(node.cell, place) }
        uptime.push({
          verifier,
          node: node.peerId,
          challenges: times.length,
          answered,
          ...(probe === undefined ? {} : { probe }),
        })
      }
    }
    // Compute: every verifier saw every receipt and fraud of the epoch (the Challenger publishes one
    // observation per node with work or fraud).
    const work = new Map<string, { jobs: number; value: bigint; fraud: boolean }>()
    // The payment fees the epoch's redemptions burned, per provider (each job is paid and redeemed
    // within the epoch's blocks, as in the stack engine's ledger).
    const burned = new Map<string, bigint>()
    for (const job of jobsByEpoch.get(epoch) ?? []) {
      const node = world.peerIds[job.identity] as string
      if (!job.fraud) {
        const operator = (world.operators[job.identity] as string).toLowerCase()
        const fee = paymentFee(job.value, protocol.paymentFeeBps)
        if (fee > 0n) burned.set(operator, (burned.get(operator) ?? 0n) + fee)
      }
      const w = work.get(node) ?? { jobs: 0, value: 0n, fraud: false }
      if (job.verified) {
        w.jobs++
        w.value += job.value
      }
      if (job.fraud) w.fraud = true
      if (job.verified || job.fraud) work.set(node, w)
    }
    const compute: ComputeObservation[] = []
    for (const verifier of verifierIds)
      for (const [node, w] of [...work].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
        compute.push({ verifier, node, ...w })
    const emission = emissionOf(protocol.emission, BigInt(epoch))
    const rewards = computeEpochRewards(
      {
        epoch,
        emission,
        nodes,
        verifiers: registry.verifiers.map((v) => v.peerId),
        uptime,
        ...(compute.length > 0 ? { compute } : {}),
        ...(burned.size > 0 ? { burned: [...burned] } : {}),
      },
      protocol.params,
    )
    const added = addPayouts(entries, rewards.payouts)
    entries = added.length > 0 ? added : [{ account: ZERO, cumulativeAmount: 0n }]
    const tree = buildCumulativeTree(entries)
    let total = 0n
    for (const e of entries) total += e.cumulativeAmount
    // The epoch ends: colluders try their forged root first, then the honest quorum posts.
    advanceTo((genesisTime + (epoch + 1) * epochDuration) * 1000 + 1_000)
    if (world.verifiers.some((v) => v.colluding)) {
      forged.attempted++
      if (await colludersPostForgedRoot(world, ledger)) forged.accepted++
    }
    ledger.forcePost(epoch, { root: tree.root, digest: `0x${'00'.repeat(32)}`, totalCumulative: total })
    const payouts = new Map<string, bigint>()
    for (let i = 0; i < rewards.payouts.size; i++) {
      const [account, amount] = rewards.payouts.at(i)
      payouts.set(account, amount)
    }
    let scored = 0
    for (const n of rewards.uptime.list()) if (n.eligible) scored++
    outcomes.push({
      epoch,
      emission,
      root: tree.root,
      digest: `0x${'00'.repeat(32)}`,
      totalCumulative: total,
      payouts,
      pools: rewards.pools,
      registered: nodes.length,
      scored,
    })
    options.onProgress?.(epoch + 1, epochs)
  }
  return {
    engine: 'fast',
    epochs: outcomes,
    refusals: [...ledger.refusals],
    slashed: new Map(ledger.slashed),
    forged,
  }
}
