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
import { colludersPostForgedRoot } from './colluders.js'
import { paymentFee } from './compute-jobs.js'
import type { EngineRun, EpochOutcome } from './engine.js'
import { SimError } from './errors.js'
import type { Span } from './fleet.js'
import { streamSeed } from './random.js'
import { chainOrigin, firstBlockNumberAtOrAfter, SimLedger, simBlockHash } from './sim-ledger.js'
import type { Progress } from './stack-engine.js'
import { UptimeWorkers, type UptimeWorkersInit } from './uptime-workers.js'
import { availability, MESH, registeredEpochOf, registrationMs, SLASH_AMOUNT, type World } from './world.js'

const ZERO = '0x0000000000000000000000000000000000000000' as const

/**
 * The fast path for large networks: the same world (fleet, keys, sessions, links), the same challenge
 * schedule (`challengeTimes` from the epoch's seed block), the same registry rules and the same pure
 * reward function and cumulative tree as the stack engine, without the messages: a challenge counts
 * as answered when the node's machine is on when it arrives, neither the challenge nor the answer is
 * lost, and the round trip is within the deadline. Signatures, gossip and the leader's bundle are
 * skipped (their correctness is the stack engine's and the verifier tests' business), so the
 * observations are what honest verifiers would sign. With no loss it posts the same roots as the
 * stack engine (`src/sim/sim.test.ts`). The challenges, most of an epoch's work, run on a worker
 * thread per core (`UptimeWorkers`), with the same outcome for any number of them.
 */
export async function runFast(
  world: World,
  options: {
    onProgress?: Progress
    /** Threads that run the uptime challenges (default: one per core; the outcome does not depend on it). */
    workers?: number
  } = {},
): Promise<EngineRun> {
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

  const identityOf = new Map<string, number>()
  for (let i = 0; i < world.peerIds.length; i++) identityOf.set(world.peerIds[i] as string, i)
  // The verifiers' distances to the cells nodes claim (they do not change either).
  const distances = verifierIds.map(() => new Map<string, number>())
  const distanceKm = (v: number, cell: string, place: { lat: number; lon: number }) => {
    const known = distances[v] as Map<string, number>
    let km = known.get(cell)
    if (km === undefined) {
      km = distanceToCellKm(cell, place)
      known.set(cell, km)
    }
    return km
  }

  const jobsByEpoch = new Map<number, typeof world.jobs>()
  for (const job of world.jobs) {
    const list = jobsByEpoch.get(job.epoch) ?? []
    list.push(job)
    jobsByEpoch.set(job.epoch, list)
  }
  const outcomes: EpochOutcome[] = []
  const forged = { attempted: 0, accepted: 0 }
  const workers = new UptimeWorkers({
    ...identityTables(world, verifierIds),
    genesisTime,
    epochDuration,
    challengesPerEpoch: protocol.challengesPerEpoch,
    challengeTimeoutMs: protocol.challengeTimeoutMs,
    ...(options.workers === undefined ? {} : { workers: options.workers }),
  })
  try {
    let entries: CumulativeEntry[] = []
    for (let epoch = 0; epoch < epochs; epoch++) {
      const startMs = (genesisTime + epoch * epochDuration) * 1000
      const seedBlock = firstBlockNumberAtOrAfter(genesisTime, blockSeconds, startMs / 1000)
      // The registry as of the seed block: every registration made before it.
      advanceTo((chainOrigin(genesisTime) + Number(seedBlock) * blockSeconds) * 1000)
      const registry = ledger.registryAt(seedBlock)
      const seed = simBlockHash(world.seed, seedBlock)
      // The workers run the challenges while this thread builds the rest of the epoch's input.
      const counting = workers.epoch({
        seed,
        epochStartMs: startMs,
        epochDurationMs: epochDuration * 1000,
        streamSeeds: verifierIds.map((verifier) => streamSeed(world.seed, 'fast-links', epoch, verifier)),
        nodes: registry.nodes.map((node) => {
          const identity = identityOf.get(node.peerId)
          if (identity === undefined) throw new RangeError(`registered node ${node.peerId} is no identity`)
          return identity
        }),
        skip: verifierIds.map((verifier) => registry.nodes.findIndex((node) => node.peerId === verifier)),
      })
      // Awaited below; should this thread throw first, closing the workers rejects it unobserved.
      counting.catch(() => {})
      const nodes: RewardNode[] = registry.nodes.map((n) => ({
        peerId: n.peerId,
        operator: n.operator,
        stake: n.stake,
        registeredEpoch: registeredEpochOf(protocol, n.registeredAt * 1000),
        ...(n.h3Cell === undefined ? {} : { cell: n.h3Cell }),
      }))
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
      const counts = await counting
      const uptime: UptimeObservation[] = []
      for (let v = 0; v < verifierIds.length; v++) {
        const verifier = verifierIds[v] as string
        const place = places.get(verifier)
        for (let k = 0; k < nodes.length; k++) {
          const answered = counts.answered[v * nodes.length + k] as number
          if (answered < 0) continue
          const node = nodes[k] as RewardNode
          // The location probe the stack's verifiers put in their observations (`locationProbe`).
          const probe =
            place === undefined || node.cell === undefined || answered === 0
              ? undefined
              : {
                  rttMs: Math.min(MAX_PROBE_RTT_MS, counts.fastest[v * nodes.length + k] as number),
                  distanceKm: distanceKm(v, node.cell, place),
                }
          uptime.push({
            verifier,
            node: node.peerId,
            challenges: protocol.challengesPerEpoch,
            answered,
            ...(probe === undefined ? {} : { probe }),
          })
        }
      }
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
  } finally {
    await workers.close()
  }
  return {
    engine: 'fast',
    epochs: outcomes,
    refusals: [...ledger.refusals],
    slashed: new Map(ledger.slashed),
    forged,
  }
}

/**
 * Everything about the identities that no epoch changes, as the uptime workers take it: their peer
 * ids, their sessions and their links to each verifier (`world.latency` is a pure function of the
 * two peers).
 */
function identityTables(
  world: World,
  verifierIds: readonly string[],
): Pick<UptimeWorkersInit, 'peerIds' | 'verifiers' | 'spans' | 'spanStart' | 'links'> {
  const identities = world.peerIds.length
  const spanStart = new Int32Array(identities + 1)
  const sessions: Span[][] = []
  for (let i = 0; i < identities; i++) {
    const own = world.fleet.identities[i] === undefined ? [] : availability(world, i)
    sessions.push(own)
    spanStart[i + 1] = (spanStart[i] as number) + own.length
  }
  const spans = new Float64Array(2 * (spanStart[identities] as number))
  for (let i = 0, s = 0; i < identities; i++)
    for (const span of sessions[i] as Span[]) {
      spans[s++] = span.from
      spans[s++] = span.to
    }
  const links = new Float64Array(verifierIds.length * identities * 6)
  for (let v = 0, at = 0; v < verifierIds.length; v++) {
    const verifier = verifierIds[v] as string
    for (let i = 0; i < identities; i++) {
      const peerId = world.peerIds[i] as string
      const there = world.latency(verifier, peerId)
      const back = world.latency(peerId, verifier)
      links[at++] = there.latencyMs
      links[at++] = there.jitterMs
      links[at++] = there.lossRate ?? 0
      links[at++] = back.latencyMs
      links[at++] = back.jitterMs
      links[at++] = back.lossRate ?? 0
    }
  }
  return { peerIds: world.peerIds, verifiers: verifierIds, spans, spanStart, links }
}
