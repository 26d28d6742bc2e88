import type { RewardParams, RewardService } from '../rewards/index.js'
import { locationConfidence } from '../sensors/location.js'
import { drawJobs, JOB_PRICE, paymentFee } from './compute-jobs.js'
import type { EngineRun } from './engine.js'
import { runFast } from './fast-engine.js'
import { HARDWARE, type HardwareClass } from './fleet.js'
import { greatCircleKm } from './geography.js'
import { type Scenario, type ScenarioSize, scenarioByName } from './scenarios.js'
import { type Progress, runStack } from './stack-engine.js'
import { drawStations } from './stations.js'
import { STORAGE_COST_MESH } from './storage-files.js'
import { buildWorld, DEFAULT_SIM_PROTOCOL, MESH, registeredEpochOf, type World } from './world.js'

/** Which engine runs the protocol: the production stack on the simulated mesh, or the fast path. */
export type SimEngine = 'stack' | 'fast'

/** Options of {@link simulate}. */
export interface SimulateOptions {
  scenario: string
  nodes?: number
  verifiers?: number
  epochs?: number
  seed?: number
  /** Default: `stack` up to {@link AUTO_STACK_MAX_NODES} nodes (and for scenarios with sensors or storage), `fast` above. */
  engine?: SimEngine
  /** Called as epochs are posted, with the run it belongs to (`attack` or `twin`). */
  onProgress?: (run: 'attack' | 'twin', posted: number, total: number) => void
  /**
   * Another reward parameter set than production's (e.g. without a mechanism, to measure what it
   * prevents); both runs use it.
   */
  params?: RewardParams
}

/** Up to this many nodes `simulate` runs the stack engine unless told otherwise. */
export const AUTO_STACK_MAX_NODES = 200

/** Running cost of a machine-epoch at cost factor 1, as a share of an even split of the emission. */
export const COST_SHARE = 0.4
/** What registering an identity costs in fees (gas), MESH. */
export const REGISTRATION_FEE_MESH = 1
/** Running a job costs its node this share of the job's price (power, wear). */
export const JOB_COST_SHARE = 0.25
/** Running a weather station for an epoch costs this share of a machine-epoch's unit cost (a fake one costs nothing). */
export const STATION_COST_SHARE = 0.05
/** What a reverted root post costs its sender (gas), MESH. */
export const FAILED_POST_FEE_MESH = 1

/** A cohort's economics over the run, in MESH. */
export interface CohortEconomics {
  identities: number
  machines: number
  rewards: number
  /** What builders paid for jobs (by voucher, after each result; a caught forgery is not paid). */
  payments: number
  runningCosts: number
  fees: number
  slashed: number
  /** rewards + payments − slashed − fees − running costs. */
  net: number
}

/** One epoch of a result. */
export interface EpochReport {
  epoch: number
  /** MESH released and paid. */
  emission: number
  paid: number
  registered: number
  /** Nodes that reached the uptime threshold. */
  scored: number
  /** What each service's pool paid, MESH (services nobody contributed to are left out). */
  pools: Partial<Record<RewardService, number>>
  root: string
  /** What each cohort was paid this epoch, MESH. */
  paidByCohort: Record<string, number>
  /** Each cohort's part of what was paid (0 to 1). */
  shares: Record<string, number>
}

/** What an attack earned compared with the same resources run honestly. */
export interface AttackReport {
  cohort: string
  /** The attacker's net with the attack, and its twin's (the same machines and stake, honest). */
  net: number
  twinNet: number
  /** net − twinNet: what the attack adds. Negative: the attack does not pay. */
  profit: number
  /** First epoch in which the protocol took something from the attack (paid it less than its twin, or refused it); null: never. */
  detectionEpoch: number | null
  forgedRoots: { attempted: number; accepted: number }
  /**
   * Identities whose claimed cell the verifiers' best round trips rule out (the light-in-fibre rule
   * of `locationConfidence`, src/sensors/location.ts), of the attacker's and of the honest ones.
   * Evidence the uptime pool does not use today (docs/simulation.md, "Findings").
   */
  claimsRuledOutByRtt: { attacker: number; honest: number }
}

/** The result of `meshwork sim run`, the same bytes for the same options. */
export interface SimResult {
  version: 1
  scenario: string
  summary: string
  engine: SimEngine
  seed: number
  nodes: number
  verifiers: number
  epochs: number
  network: {
    identities: number
    machines: number
    cells: number
    centres: number
    hardware: Record<HardwareClass, number>
    /** Median great-circle distance from a node's machine to the verifiers, km. */
    medianVerifierKm: number
    messages?: { delivered: number; dropped: number }
  }
  perEpoch: EpochReport[]
  cohorts: Record<string, CohortEconomics>
  /** What honest operators got of everything paid over the run (0 to 1). */
  honestShare: number
  /**
   * Scenarios with storage: files stored, shards placed by the builder and rebuilt by verifiers'
   * repairs, and the files read back intact in the last epoch (of those checked).
   */
  storage?: { files: number; placed: number; repaired: number; checked: number; intact: number }
  attack: AttackReport | null
}

/** Rounds MESH to micro-MESH, so that outputs are short and stable. */
const mesh = (baseUnits: bigint) => Number(baseUnits / 10n ** 12n) / 1e6
const round6 = (x: number) => Math.round(x * 1e6) / 1e6

async function runOnce(
  scenario: Scenario,
  size: ScenarioSize,
  twin: boolean,
  engine: SimEngine,
  onProgress: Progress | undefined,
  params?: RewardParams,
): Promise<{ world: World; run: EngineRun }> {
  const build = twin && scenario.twin ? scenario.twin(size) : scenario.build(size)
  const world = buildWorld({
    seed: size.seed,
    epochs: size.epochs,
    fleet: build.fleet,
    verifiers: size.verifiers,
    colluders: build.colluders,
    protocol: params === undefined ? DEFAULT_SIM_PROTOCOL : { ...DEFAULT_SIM_PROTOCOL, params },
  })
  if (scenario.compute !== undefined)
    world.jobs = drawJobs(
      world,
      twin ? undefined : scenario.compute.forgers,
      twin ? undefined : scenario.compute.wash,
    )
  if (scenario.storage !== undefined) {
    // The twin stores honestly at the honest price: undercutting is part of the attack (a deleter
    // keeps no disk, so any price pays it; a holder that keeps its shards cannot live below cost).
    const { deleters: _deleters, undercut: _undercut, ...honestStorage } = scenario.storage
    world.storage = twin ? honestStorage : scenario.storage
  }
  if (scenario.sensors !== undefined)
    world.stations = drawStations(world, twin ? { share: scenario.sensors.share } : scenario.sensors)
  const options = onProgress === undefined ? {} : { onProgress }
  const run = engine === 'stack' ? await runStack(world, options) : await runFast(world, options)
  return { world, run }
}

/** Each cohort's economics in a run. */
function economics(
  world: World,
  run: EngineRun,
  unitCost: number,
  forgerCohort: string | undefined,
): Record<string, CohortEconomics> {
  const cohorts: Record<string, CohortEconomics> = {}
  const of = (name: string) => {
    cohorts[name] ??= {
      identities: 0,
      machines: 0,
      rewards: 0,
      payments: 0,
      runningCosts: 0,
      fees: 0,
      slashed: 0,
      net: 0,
    }
    return cohorts[name] as CohortEconomics
  }
  const { fleet, epochs } = world
  const machineCohort = new Map<number, string>()
  const machineEpochs = new Map<number, Set<number>>()
  for (const id of fleet.identities) {
    const c = of(id.cohort)
    c.identities++
    c.fees += REGISTRATION_FEE_MESH * id.memberships.length
    machineCohort.set(id.machine, id.cohort)
    const registered = machineEpochs.get(id.machine) ?? new Set<number>()
    for (const m of id.memberships) for (let e = m.from; e < Math.min(m.to, epochs); e++) registered.add(e)
    machineEpochs.set(id.machine, registered)
  }
  for (const [index, cohort] of machineCohort) {
    const machine = fleet.machines[index]
    if (machine === undefined) continue
    const c = of(cohort)
    c.machines++
    const factor = HARDWARE[machine.hardware].costFactor
    for (const e of machineEpochs.get(index) ?? []) {
      let on = 0
      for (const s of machine.online) on += Math.max(0, Math.min(s.to, e + 1) - Math.max(s.from, e))
      // Half the cost is the rig (paid whether on or off), half power and bandwidth (paid when on).
      c.runningCosts += unitCost * factor * (0.5 + 0.5 * on)
    }
  }
  const rewards = new Map<string, bigint>()
  for (const e of run.epochs)
    for (const [account, amount] of e.payouts) {
      const cohort = world.cohortOf.get(account) ?? 'unknown'
      rewards.set(cohort, (rewards.get(cohort) ?? 0n) + amount)
    }
  for (const [cohort, amount] of rewards) of(cohort).rewards = mesh(amount)
  // Jobs: paid unless caught, less the fee Payments burns; running one costs its node a quarter of
  // an honest job's price (a forger runs none; a wash trader's jobs are trivial). A cohort that was
  // the builder paid the whole price.
  for (const job of world.jobs) {
    const id = fleet.identities[job.identity]
    if (id === undefined) continue
    const c = of(id.cohort)
    if (!job.fraud) c.payments += mesh(job.value - paymentFee(job.value, world.protocol.paymentFeeBps))
    if (job.builder !== undefined) of(job.builder).payments -= mesh(job.value)
    if (id.cohort !== forgerCohort) c.runningCosts += mesh(JOB_PRICE) * JOB_COST_SHARE
  }
  // Stations: an honest one costs its operator while its identity is registered; a fake one is free.
  for (const station of world.stations) {
    const id = fleet.identities[station.identity]
    if (id === undefined || station.fake) continue
    for (const m of id.memberships)
      of(id.cohort).runningCosts += unitCost * STATION_COST_SHARE * (Math.min(m.to, epochs) - m.from)
  }
  const cohortOfPeer = new Map(fleet.identities.map((id) => [world.peerIds[id.index] as string, id.cohort]))
  // Storage: what the builder paid each holder (the put's first epoch, then each proven epoch's
  // rent), less the fee Payments burns; holding a shard costs its holder every epoch from the one it
  // was stored in (a deleter holds it only until its wipe at the start of the next epoch).
  for (const payment of run.storage?.payments ?? [])
    of(cohortOfPeer.get(payment.holder) ?? 'unknown').payments += mesh(
      payment.amount - paymentFee(payment.amount, world.protocol.paymentFeeBps),
    )
  for (const shard of run.storage?.shards ?? []) {
    const cohort = cohortOfPeer.get(shard.holder) ?? 'unknown'
    const from = Math.floor(
      (shard.storedAtMs / 1000 - world.protocol.genesisTime) / world.protocol.epochDuration,
    )
    const held = cohort === world.storage?.deleters ? Math.min(1, epochs - from) : epochs - from
    of(cohort).runningCosts += STORAGE_COST_MESH * Math.max(0, held)
  }
  for (const [peer, amount] of run.slashed) of(cohortOfPeer.get(peer) ?? 'unknown').slashed += mesh(amount)
  if (run.forged.attempted > 0) {
    const c = of('colluders')
    c.identities = world.verifiers.filter((v) => v.colluding).length
    c.fees += FAILED_POST_FEE_MESH * (run.forged.attempted - run.forged.accepted)
  }
  for (const c of Object.values(cohorts)) {
    c.runningCosts = round6(c.runningCosts)
    c.fees = round6(c.fees)
    c.payments = round6(c.payments)
    c.slashed = round6(c.slashed)
    c.net = round6(c.rewards + c.payments - c.slashed - c.fees - c.runningCosts)
  }
  return Object.fromEntries(
    Object.keys(cohorts)
      .sort()
      .map((k) => [k, cohorts[k] as CohortEconomics]),
  )
}

function networkSummary(world: World, run: EngineRun): SimResult['network'] {
  const { fleet } = world
  const hardware: Record<HardwareClass, number> = { sbc: 0, 'home-server': 0, 'gaming-pc': 0, 'cloud-vm': 0 }
  for (const m of fleet.machines) hardware[m.hardware]++
  const distances = fleet.machines
    .flatMap((m) => world.verifiers.map((v) => greatCircleKm(m.place, v.place)))
    .sort((a, b) => a - b)
  return {
    identities: fleet.identities.length,
    machines: fleet.machines.length,
    cells: new Set(fleet.identities.map((i) => i.claimed.cell)).size,
    centres: new Set(fleet.machines.map((m) => m.place.centre)).size,
    hardware,
    medianVerifierKm: Math.round(distances[Math.floor(distances.length / 2)] ?? 0),
    ...(run.network === undefined ? {} : { messages: run.network }),
  }
}

/**
 * Runs a scenario (and, for an attack, its twin: the same seed, the attacker's resources honest) and
 * reports per-epoch payouts, each cohort's economics, the honest share and the attack's profit. The
 * same options give the same result, byte for byte once serialised.
 */
export async function simulate(options: SimulateOptions): Promise<SimResult> {
  const scenario = scenarioByName(options.scenario)
  const size: ScenarioSize = {
    seed: options.seed ?? 1,
    nodes: options.nodes ?? scenario.defaults.nodes,
    verifiers: options.verifiers ?? scenario.defaults.verifiers,
    epochs: options.epochs ?? scenario.defaults.epochs,
  }
  // Sensors and storage run on the stack engine only (the fast path has no readings or shards).
  const stackOnly = scenario.sensors !== undefined || scenario.storage !== undefined
  const engine = options.engine ?? (size.nodes <= AUTO_STACK_MAX_NODES || stackOnly ? 'stack' : 'fast')
  const progress = (run: 'attack' | 'twin'): Progress | undefined =>
    options.onProgress === undefined ? undefined : (p, t) => options.onProgress?.(run, p, t)
  const { world, run } = await runOnce(scenario, size, false, engine, progress('attack'), options.params)
  const emission = Number(DEFAULT_SIM_PROTOCOL.emission.initialEmission / MESH)
  const unitCost = (emission / size.nodes) * COST_SHARE
  const cohorts = economics(world, run, unitCost, scenario.compute?.forgers)

  const perEpoch: EpochReport[] = run.epochs.map((e) => {
    let paid = 0n
    const byCohort = new Map<string, bigint>()
    for (const [account, amount] of e.payouts) {
      paid += amount
      const cohort = world.cohortOf.get(account) ?? 'unknown'
      byCohort.set(cohort, (byCohort.get(cohort) ?? 0n) + amount)
    }
    const shares: Record<string, number> = {}
    const paidByCohort: Record<string, number> = {}
    for (const cohort of [...byCohort.keys()].sort()) {
      const amount = byCohort.get(cohort) as bigint
      paidByCohort[cohort] = mesh(amount)
      shares[cohort] = paid === 0n ? 0 : Number((amount * 1_000_000n) / paid) / 1e6
    }
    return {
      epoch: e.epoch,
      emission: mesh(e.emission),
      paid: mesh(paid),
      registered: e.registered,
      scored: e.scored,
      pools: Object.fromEntries(
        Object.entries(e.pools)
          .filter(([, amount]) => amount > 0n)
          .map(([service, amount]) => [service, mesh(amount)]),
      ),
      root: e.root,
      paidByCohort,
      shares,
    }
  })
  const totalRewards = Object.values(cohorts).reduce((s, c) => s + c.rewards, 0)
  const honestShare = totalRewards === 0 ? 0 : round6((cohorts.honest?.rewards ?? 0) / totalRewards)

  let attack: AttackReport | null = null
  if (scenario.attacker !== undefined && scenario.twin !== undefined) {
    const twin = await runOnce(scenario, size, true, engine, progress('twin'), options.params)
    const twinCohorts = economics(twin.world, twin.run, unitCost, undefined)
    const cohort = scenario.attacker
    const net = cohorts[cohort]?.net ?? 0
    const twinNet = twinCohorts[cohort]?.net ?? 0
    attack = {
      cohort,
      net,
      twinNet,
      profit: round6(net - twinNet),
      detectionEpoch: detectionEpoch(world, run, twin.world, twin.run, cohort),
      forgedRoots: run.forged,
      claimsRuledOutByRtt: claimsRuledOut(world, cohort),
    }
  }
  return {
    version: 1,
    scenario: scenario.name,
    summary: scenario.summary,
    engine,
    seed: size.seed,
    nodes: size.nodes,
    verifiers: size.verifiers,
    epochs: size.epochs,
    network: networkSummary(world, run),
    perEpoch,
    cohorts,
    honestShare,
    ...(run.storage === undefined
      ? {}
      : {
          storage: {
            files: run.storage.files,
            placed: run.storage.shards.filter((x) => x.put).length,
            repaired: run.storage.shards.filter((x) => !x.put).length,
            checked: run.storage.checked,
            intact: run.storage.intact,
          },
        }),
    attack,
  }
}

/** Claims the verifiers' round trips (twice the link's one-way latency, no jitter: their best) rule out. */
function claimsRuledOut(world: World, cohort: string): { attacker: number; honest: number } {
  const out = { attacker: 0, honest: 0 }
  for (const id of world.fleet.identities) {
    const peer = world.peerIds[id.index] as string
    const probes = world.verifiers.map((v) => ({
      verifier: v.signer.peerId,
      lat: v.place.lat,
      lon: v.place.lon,
      rttMs: world.latency(v.signer.peerId, peer).latencyMs + world.latency(peer, v.signer.peerId).latencyMs,
    }))
    if (locationConfidence(id.claimed.cell, probes).confidence > 0) continue
    if (id.cohort === cohort) out.attacker++
    else if (id.cohort === 'honest') out.honest++
  }
  return out
}

/**
 * The first epoch the attack was refused or caught (a forged root refused, a forged result re-run, a
 * shard it held rebuilt elsewhere), or paid less than its twin in the same epoch.
 */
function detectionEpoch(
  world: World,
  run: EngineRun,
  twinWorld: World,
  twinRun: EngineRun,
  cohort: string,
): number | null {
  if (run.forged.attempted > 0 && run.forged.accepted < run.forged.attempted) return 0
  const caught = world.jobs.filter((j) => j.fraud && world.fleet.identities[j.identity]?.cohort === cohort)
  if (caught.length > 0) return Math.min(...caught.map((j) => j.epoch))
  // Storage: the first epoch verifiers rebuilt elsewhere a shard the cohort held (it failed its challenges).
  const shards = run.storage?.shards ?? []
  const cohortOf = new Map(world.fleet.identities.map((id) => [world.peerIds[id.index], id.cohort]))
  const held = new Set(
    shards.filter((s) => s.put && cohortOf.get(s.holder) === cohort).map((s) => `${s.cid}/${s.shard}`),
  )
  const rebuilt = shards
    .filter((s) => !s.put && held.has(`${s.cid}/${s.shard}`))
    .map((s) => registeredEpochOf(world.protocol, s.storedAtMs))
  if (rebuilt.length > 0) return Math.min(...rebuilt)
  const paidTo = (w: World, r: EngineRun, e: number) => {
    let sum = 0n
    for (const [account, amount] of r.epochs[e]?.payouts ?? [])
      if (w.cohortOf.get(account) === cohort) sum += amount
    return sum
  }
  for (let e = 0; e < run.epochs.length; e++)
    if (paidTo(world, run, e) < paidTo(twinWorld, twinRun, e)) return e
  return null
}
