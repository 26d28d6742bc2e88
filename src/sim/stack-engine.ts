import type { Ed25519PrivateKey } from '@libp2p/interface'
import type { Timer } from '../core/clock.js'
import { createLogger, type Logger } from '../core/logger.js'
import { VirtualClock } from '../core/virtual-clock.js'
import type { NetworkPort } from '../mesh/network-port.js'
import { createPeerVerifier } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import { serveUptimeChallenges } from '../node/uptime.js'
import { SENSOR_READING } from '../sensors/reading.js'
import { BANDWIDTH_RECEIPT, STORAGE_RECEIPT } from '../storage/protocol.js'
import { bundleCid, checkBundle, settleBundle } from '../verifier/bundle.js'
import { EpochCloser } from '../verifier/epoch-closer.js'
import { EPOCH_ATTESTATION, EPOCH_PROPOSAL } from '../verifier/leader.js'
import {
  BANDWIDTH_OBSERVATION,
  COMPUTE_OBSERVATION,
  SENSOR_OBSERVATION,
  STORAGE_OBSERVATION,
  UPTIME_OBSERVATION,
} from '../verifier/observation.js'
import { StorageRepairer } from '../verifier/storage-repairer.js'
import { openVerifierStore, type VerifierStore } from '../verifier/store.js'
import { VerifierAgent } from '../verifier/verifier-agent.js'
import { colludersPostForgedRoot } from './colluders.js'
import type { EngineRun, EpochOutcome } from './engine.js'
import { SimError } from './errors.js'
import { seedBytes } from './random.js'
import { SimLedger } from './sim-ledger.js'
import { runStation, stationKeys } from './stations.js'
import { SimStorage } from './storage-files.js'
import {
  availability,
  MESH,
  registrationMs,
  SIM_NETWORK_ID,
  SLASH_AMOUNT,
  signerFromSeed,
  type World,
} from './world.js'

/** Largest network the stack engine takes (every challenge is a signed message on the simulated mesh). */
export const STACK_ENGINE_MAX_NODES = 2_000

/**
 * How often simulated verifiers look at the chain (production polls every second; five seconds of
 * virtual time keeps the event count down without changing any outcome: leader timeouts are 30 s).
 */
const CLOSER_TICK_MS = 5_000

/** Progress of a run: the epochs posted so far. */
export type Progress = (posted: number, total: number) => void

/**
 * Runs `world` through the production code on the simulated network in virtual time: each identity
 * serves uptime challenges with its own peer key (`serveUptimeChallenges`, the node's side) while its
 * machine is on and it is registered; each verifier runs a `VerifierAgent` (schedule from the
 * epoch's seed block, challenges, signed observations gossiped to the others, an in-memory SQLite
 * store) and an `EpochCloser` (leader, canonical bundle, the pure reward function, the cumulative
 * tree, EIP-712 attestations, post at quorum) against a {@link SimLedger}. Each epoch's payouts are
 * then recomputed from the posted bundle as an auditor would (`checkBundle` + `settleBundle`).
 */
export async function runStack(
  world: World,
  options: { onProgress?: Progress; logger?: Logger } = {},
): Promise<EngineRun> {
  const nodes = world.fleet.identities.length
  if (nodes > STACK_ENGINE_MAX_NODES)
    throw new SimError(
      'SIM_TOO_LARGE',
      `the stack engine runs at most ${STACK_ENGINE_MAX_NODES} nodes, not ${nodes}`,
      {
        hint:
          world.stations.length > 0 || world.storage !== undefined
            ? `This scenario runs sensors or storage, which only the stack engine runs: use at most ${STACK_ENGINE_MAX_NODES} --nodes`
            : 'Use --engine fast for larger networks',
        details: { nodes },
      },
    )
  const { protocol, epochs } = world
  const logger = options.logger ?? createLogger({ level: 'silent' })
  const network = SIM_NETWORK_ID
  const genesisMs = protocol.genesisTime * 1000
  const clock = new VirtualClock(genesisMs - 60_000)
  const net = new SimNetwork({ seed: world.seed, clock, latency: world.latency })
  const ledger = new SimLedger({
    clock,
    seed: world.seed,
    genesisTime: protocol.genesisTime,
    epochDuration: protocol.epochDuration,
    blockSeconds: protocol.blockSeconds,
    quorum: world.quorum,
    emission: protocol.emission,
    params: protocol.params,
    paymentFeeBps: protocol.paymentFeeBps,
  })
  const timers: Timer[] = []
  const at = (ms: number, fn: () => void) => timers.push(clock.setTimer(Math.max(0, ms - clock.now()), fn))
  const epochMs = protocol.epochDuration * 1000

  // Storage: every identity's holder while its machine is on, a builder, deleters (docs/simulation.md).
  const storage =
    world.storage === undefined ? undefined : new SimStorage(world, world.storage, { clock, network, logger })

  // Nothing may await real work once the verifiers run, or real time would order the events: the
  // device keys first (`stationKeys`; signatures are recovered synchronously, `recoverSignerSync`).
  const deviceKeys = await stationKeys(world, world.stations)

  // Verifiers: registered before genesis, each with its agent and closer.
  const stops: (() => Promise<void>)[] = []
  const stores: VerifierStore[] = []
  for (const v of world.verifiers) {
    ledger.registerVerifier({
      peerId: v.signer.peerId,
      address: ledger.poster(v.evmKey).address,
      stake: 100_000n * MESH,
    })
  }
  const chain = ledger.chain()
  for (const v of world.verifiers) {
    const port = net.createPort(v.signer.peerId)
    const store = openVerifierStore(':memory:')
    stores.push(store)
    const codec = createWireCodec({
      network,
      signer: v.signer,
      clock,
      types: [
        UPTIME_OBSERVATION,
        COMPUTE_OBSERVATION,
        SENSOR_OBSERVATION,
        SENSOR_READING,
        STORAGE_OBSERVATION,
        STORAGE_RECEIPT,
        BANDWIDTH_OBSERVATION,
        BANDWIDTH_RECEIPT,
        EPOCH_PROPOSAL,
        EPOCH_ATTESTATION,
      ],
      nextSeq: (type) => store.nextSeq(type),
    })
    const schedule = { genesisTime: protocol.genesisTime, epochDuration: protocol.epochDuration }
    const common = { port, clock, store, codec, verifier: createPeerVerifier(), logger }
    const agent = new VerifierAgent(
      {
        network,
        schedule,
        challengesPerEpoch: protocol.challengesPerEpoch,
        challengeTimeoutMs: protocol.challengeTimeoutMs,
        storageChallengesPerShard: storage === undefined ? 0 : 2,
        pollMs: CLOSER_TICK_MS,
        place: { lat: v.place.lat, lon: v.place.lon },
      },
      {
        ...common,
        chain,
        ...(storage === undefined ? {} : { repairer: new StorageRepairer({ port, codec, store, logger }) }),
      },
    )
    const closer = new EpochCloser(
      {
        network,
        schedule,
        emission: protocol.emission,
        graceMs: 2_000,
        leaderTimeoutMs: 30_000,
        tickMs: CLOSER_TICK_MS,
      },
      { ...common, chain, poster: ledger.poster(v.evmKey), plan: (e) => agent.planned(e) },
    )
    agent.start()
    closer.start()
    stops.push(async () => {
      await closer.stop()
      await agent.stop()
      await port.close()
    })
  }

  // Nodes: registrations, and a port serving challenges while the machine is on.
  const ports = new Map<number, NetworkPort>()
  for (const id of world.fleet.identities) {
    const signer = world.signerOf(id.index)
    const operator = world.operators[id.index]
    if (signer === undefined || operator === undefined)
      throw new RangeError(`identity ${id.index} has no keys`)
    for (const m of id.memberships) {
      at(registrationMs(protocol, m.from), () =>
        ledger.registerNode({
          peerId: signer.peerId,
          operator,
          stake: BigInt(id.stakeMesh) * MESH,
          h3Cell: id.claimed.cell,
        }),
      )
      if (m.to < epochs) at(registrationMs(protocol, m.to), () => ledger.deregisterNode(signer.peerId))
    }
    for (const span of availability(world, id.index)) {
      at(genesisMs + span.from * epochMs, () => {
        if (ports.has(id.index)) return
        const port = net.createPort(signer.peerId)
        serveUptimeChallenges(port, { network, signer })
        ports.set(id.index, port)
        void storage?.start(id.index, port)
      })
      at(genesisMs + span.to * epochMs, () => {
        const port = ports.get(id.index)
        ports.delete(id.index)
        void (storage?.stop(id.index) ?? Promise.resolve()).then(() => port?.close())
      })
    }
  }
  // Weather stations: signed readings gossiped on their coarse cell while their node is online.
  world.stations.forEach((station, i) => {
    const key = deviceKeys[i] as Ed25519PrivateKey
    const stop = runStation(
      world,
      station,
      key,
      clock,
      network,
      (n) => ports.get(n),
      genesisMs + epochs * epochMs,
    )
    stops.push(async () => stop())
  })
  // The builder stores the run's files early in epoch 0, paying each holder the first epoch, and pays
  // each later epoch's rent 10 minutes in to the holders that prove their shards; deleters wipe what
  // they hold at the start of every later epoch; the builder reads every file back in the last.
  if (storage !== undefined) {
    const builder = signerFromSeed(seedBytes(world.seed, 'builder'))
    const port = net.createPort(builder.peerId)
    stops.push(async () => {
      await storage.close()
      await port.close()
    })
    storage.watch(port, builder)
    const online = (i: number) => ports.has(i)
    at(genesisMs + 5 * 60_000, () => {
      void storage.putAll(port, builder, online, epochs, (i, amount) =>
        ledger.redeemPayment(world.operators[i] as string, amount),
      )
    })
    for (let e = 1; e < epochs; e++) {
      at(genesisMs + e * epochMs + 1_000, () => storage.wipe())
      at(genesisMs + e * epochMs + 10 * 60_000, () => void storage.payRent(e))
    }
    if (epochs > 1)
      at(genesisMs + (epochs - 1) * epochMs + 20 * 60_000, () => void storage.checkAll(port, builder, online))
  }
  // Colluding verifiers try a forged root of their own just after each epoch ends.
  const forged = { attempted: 0, accepted: 0 }
  if (world.verifiers.some((v) => v.colluding))
    for (let e = 0; e < epochs; e++)
      at(genesisMs + (e + 1) * epochMs + 1_000, () => {
        forged.attempted++
        void colludersPostForgedRoot(world, ledger).then((taken) => {
          if (taken) forged.accepted++
        })
      })

  // Compute: each job's receipt or fraud evidence reaches every verifier (as the builder's gossip
  // and the verifiers' re-runs do); a confirmed fraud is slashed once, by quorum.
  for (const job of world.jobs) {
    at(job.atMs, () => {
      const node = world.peerIds[job.identity] as string
      // Paid by voucher and redeemed: Payments burns its fee (what the rebate cap reads).
      if (!job.fraud) ledger.redeemPayment(world.operators[job.identity] as string, job.value)
      for (const store of stores) {
        if (job.verified) store.recordWork({ epoch: job.epoch, node, jobId: job.jobId, value: job.value })
        if (job.fraud)
          store.recordFraud({ evidenceHash: job.evidenceHash, epoch: job.epoch, node, jobId: job.jobId })
      }
      if (job.fraud) ledger.slashNode(node, SLASH_AMOUNT)
    })
  }

  let reported = 0
  const done = await clock.runUntil(
    () => {
      const posted = ledger.posted().size
      if (posted !== reported) {
        reported = posted
        options.onProgress?.(posted, epochs)
      }
      return posted >= epochs
    },
    (epochs + 2) * epochMs + 60_000,
  )
  for (const t of timers) t.cancel()
  for (const stop of stops) await stop()
  for (const port of ports.values()) await port.close()
  if (!done) {
    for (const s of stores) s.close()
    throw new SimError('SIM_STALLED', `the verifiers posted ${ledger.posted().size} of ${epochs} roots`, {
      hint: 'Run with more verifiers online (a quorum must be honest) or report it as a bug',
    })
  }

  // Each posted epoch recomputed from its bundle, as `meshwork rewards verify` does.
  const outcomes: EpochOutcome[] = []
  const verifier = createPeerVerifier()
  let previousRoot: string | null = null
  for (let e = 0; e < epochs; e++) {
    const posted = ledger.posted().get(e)
    if (posted === undefined) throw new SimError('SIM_STALLED', `epoch ${e} has no posted root`)
    const cid = bundleCid(posted.digest)
    const bytes = stores.map((s) => s.bundle(cid)?.bytes).find((b) => b !== undefined)
    if (bytes === undefined) throw new SimError('SIM_STALLED', `no verifier holds the bundle of epoch ${e}`)
    const checked = checkBundle(bytes, { network, verifier, previousRoot })
    if (!checked.ok)
      throw new SimError('SIM_STALLED', `the bundle of epoch ${e} does not check: ${checked.fault}`)
    const settlement = settleBundle(checked.bundle)
    if (settlement.root !== posted.root)
      throw new SimError('SIM_STALLED', `epoch ${e} does not settle to its root`)
    const payouts = new Map<string, bigint>()
    for (let i = 0; i < settlement.rewards.payouts.size; i++) {
      const [account, amount] = settlement.rewards.payouts.at(i)
      payouts.set(account, amount)
    }
    outcomes.push({
      epoch: e,
      emission: settlement.rewards.emission,
      root: settlement.root,
      digest: posted.digest,
      totalCumulative: settlement.totalCumulative,
      payouts,
      pools: settlement.rewards.pools,
      registered: checked.bundle.input.nodes.length,
      scored: settlement.rewards.uptime.list().filter((n) => n.eligible).length,
    })
    previousRoot = settlement.root
  }
  for (const s of stores) s.close()
  const stats = net.stats()
  return {
    engine: 'stack',
    epochs: outcomes,
    refusals: [...ledger.refusals],
    slashed: new Map(ledger.slashed),
    forged,
    network: { delivered: stats.delivered, dropped: stats.dropped },
    ...(storage === undefined ? {} : { storage: storage.outcome }),
  }
}
