import { locationConfidence } from '../sensors/location.js'
import type { WashTrade } from './compute-jobs.js'
import { SimError } from './errors.js'
import { addIdentities, addMachine, type ChurnModel, type Fleet, HARDWARE, honestFleet } from './fleet.js'
import { drawPlace, greatCircleKm, type Place } from './geography.js'
import { type SimRandom, stream } from './random.js'
import type { SensorDemand } from './stations.js'
import type { StorageDemand } from './storage-files.js'
import { buildWorld, MESH } from './world.js'

/** The size of a run. */
export interface ScenarioSize {
  seed: number
  nodes: number
  verifiers: number
  epochs: number
}

/** A scenario built for one run: the fleet, and which verifiers collude. */
export interface ScenarioBuild {
  fleet: Fleet
  colluders: number
}

/** A scenario: its world, and for an attack the same resources behaving honestly (its twin). */
export interface Scenario {
  name: string
  summary: string
  /** The cohort whose profit is measured (attacks only). */
  attacker?: string
  /**
   * Builders run compute jobs on the nodes; `forgers` (if any) forges every result; `wash` (if any)
   * is a builder paying its own cohort's nodes (not in the twin run).
   */
  compute?: { forgers?: string; wash?: WashTrade }
  /** Weather stations on the nodes (the twin run keeps the honest ones, without `spoofers`). */
  sensors?: SensorDemand
  /** Files a builder stores on the nodes (the twin run without `deleters`). */
  storage?: StorageDemand
  defaults: Omit<ScenarioSize, 'seed'>
  build(size: ScenarioSize): ScenarioBuild
  /** The attacker's resources (machines, stake) run honestly: what it would earn without attacking. */
  twin?(size: ScenarioSize): ScenarioBuild
}

/** Churn of the honest baseline: a few nodes leave, half of them come back, a few join. */
export const BASELINE_CHURN: ChurnModel = { leave: 0.05, rejoin: 0.5, join: 0.05 }
const HEAVY_CHURN: ChurnModel = { leave: 0.3, rejoin: 0.5, join: 0.3 }

const honest = (size: ScenarioSize, churn = BASELINE_CHURN) =>
  honestFleet({ seed: size.seed, nodes: size.nodes, epochs: size.epochs, churn })

/** Attackers are a small share of the network: at least `min`, about `share` of the honest nodes. */
const attackers = (size: ScenarioSize, share: number, min: number) =>
  Math.max(min, Math.round(size.nodes * share))

/** Lazy nodes: their own machines, each on about half the time in sessions of half an epoch. */
function lazy(size: ScenarioSize, twin: boolean): ScenarioBuild {
  const fleet = honest(size)
  const random = stream(size.seed, 'lazy')
  const count = attackers(size, 0.03, 2)
  const uptime = twin ? HARDWARE['home-server'] : { meanOnEpochs: 0.5, meanOffEpochs: 0.5 }
  for (let i = 0; i < count; i++) {
    const machine = addMachine(fleet, size.seed, 'home-server', drawPlace(random), uptime, size.epochs)
    addIdentities(fleet, { cohort: 'lazy', machine, count: 1, stakeMesh: 5_000, epochs: size.epochs })
  }
  return { fleet, colluders: 0 }
}

/** Identities in one Sybil farm (or behind one forwarding machine). */
const farmSize = (size: ScenarioSize) => attackers(size, 0.02, 4)
/** Stake of each farm identity (below the cap, so splitting escapes it). */
const FARM_STAKE_MESH = 5_000

/** A Sybil farm: many identities in one cell behind one machine; its twin is one identity with all their stake. */
function sybil(size: ScenarioSize, twin: boolean): ScenarioBuild {
  const fleet = honest(size)
  const machine = addMachine(
    fleet,
    size.seed,
    'home-server',
    drawPlace(stream(size.seed, 'sybil')),
    HARDWARE['home-server'],
    size.epochs,
  )
  const count = farmSize(size)
  if (twin)
    addIdentities(fleet, {
      cohort: 'sybil',
      machine,
      count: 1,
      stakeMesh: count * FARM_STAKE_MESH,
      epochs: size.epochs,
    })
  else
    addIdentities(fleet, { cohort: 'sybil', machine, count, stakeMesh: FARM_STAKE_MESH, epochs: size.epochs })
  return { fleet, colluders: 0 }
}

/**
 * Identities of one machine claiming cells in other cities; its twin is one identity with all their
 * stake at the machine's own place. `forwarded`: a relay in each city forwards the challenges to the
 * machine (5 ms a hop); `location-spoofer`: the machine answers from where it is; `careful`: it
 * claims only cells at least 300 km away that no verifier's best round trip to the machine rules
 * out (it measures its own round trips to the verifiers, whose places are public, before it
 * registers).
 */
function farAwayClaims(
  size: ScenarioSize,
  twin: boolean,
  cohort: string,
  forwardMs: number,
  careful = false,
): ScenarioBuild {
  const fleet = honest(size)
  const random = stream(size.seed, cohort)
  const hardware = forwardMs > 0 ? 'cloud-vm' : 'home-server'
  const machine = addMachine(fleet, size.seed, hardware, drawPlace(random), HARDWARE[hardware], size.epochs)
  const count = farmSize(size)
  if (twin) {
    addIdentities(fleet, {
      cohort,
      machine,
      count: 1,
      stakeMesh: count * FARM_STAKE_MESH,
      epochs: size.epochs,
    })
    return { fleet, colluders: 0 }
  }
  const claims = careful
    ? claimsNoRoundTripRulesOut(size, fleet, machine, cohort, random, count)
    : Array.from({ length: count }, () => drawPlace(random))
  addIdentities(fleet, {
    cohort,
    machine,
    count: claims.length,
    stakeMesh: FARM_STAKE_MESH,
    epochs: size.epochs,
    claimed: (i) => claims[i] as Place,
    forwardMs,
  })
  return { fleet, colluders: 0 }
}

/** Up to `count` places at least 300 km from `machine` that no verifier's best round trip to it rules out. */
function claimsNoRoundTripRulesOut(
  size: ScenarioSize,
  fleet: Fleet,
  machine: number,
  cohort: string,
  random: SimRandom,
  count: number,
): Place[] {
  // The machine's round trips to the verifiers, as the world's link model gives them to an identity
  // on it (a world built with one there, claiming the machine's own place).
  const probe = structuredClone(fleet)
  addIdentities(probe, { cohort, machine, count: 1, stakeMesh: FARM_STAKE_MESH, epochs: size.epochs })
  const world = buildWorld({
    seed: size.seed,
    epochs: size.epochs,
    fleet: probe,
    verifiers: size.verifiers,
    colluders: 0,
  })
  const self = world.peerIds[probe.identities.length - 1] as string
  const probes = world.verifiers.map((v) => ({
    verifier: v.signer.peerId,
    lat: v.place.lat,
    lon: v.place.lon,
    rttMs: world.latency(v.signer.peerId, self).latencyMs + world.latency(self, v.signer.peerId).latencyMs,
  }))
  const at = (fleet.machines[machine] as (typeof fleet.machines)[number]).place
  const claims: Place[] = []
  for (let tries = 0; claims.length < count && tries < 10_000; tries++) {
    const p = drawPlace(random)
    if (greatCircleKm(p, at) >= 300 && locationConfidence(p.cell, probes).confidence > 0) claims.push(p)
  }
  return claims
}

/**
 * The honest fleet plus `count` home servers of `cohort` (placed from the `label` stream), one
 * identity each staking 5,000 MESH: the attackers of the forger and wash-trading scenarios.
 */
function honestPlusOwnMachines(
  size: ScenarioSize,
  cohort: string,
  label: string,
  count: number,
): ScenarioBuild {
  const fleet = honest(size)
  const random = stream(size.seed, label)
  for (let i = 0; i < count; i++) {
    const machine = addMachine(
      fleet,
      size.seed,
      'home-server',
      drawPlace(random),
      HARDWARE['home-server'],
      size.epochs,
    )
    addIdentities(fleet, { cohort, machine, count: 1, stakeMesh: 5_000, epochs: size.epochs })
  }
  return { fleet, colluders: 0 }
}

/**
 * Wash trading: an operator runs two nodes (home servers, 5,000 MESH each) and a builder that sends
 * them 25 trivial jobs each an epoch at 40 MESH, re-run on each other (all verified), paid by voucher
 * and redeemed. Its twin runs the same nodes and takes the outside builders' jobs only.
 */
const washTrading = (size: ScenarioSize) => honestPlusOwnMachines(size, 'wash', 'wash-trading', 2)

/**
 * Storage deleters: their own machines, staked like the others, asking half the price for storage
 * (they keep no disk) so that placement gives them shards, and deleting every shard they are given.
 */
const deleter = (size: ScenarioSize) =>
  honestPlusOwnMachines(size, 'deleter', 'storage-deleter', attackers(size, 0.03, 2))

/** Result forgers: their own machines, staked like the others, signing results they never computed. */
const forger = (size: ScenarioSize) =>
  honestPlusOwnMachines(size, 'forger', 'forger', attackers(size, 0.03, 2))

/** The largest minority of `verifiers`: one less than a quorum. */
const minority = (verifiers: number) => Math.floor(verifiers / 2)

/** The scenarios `meshwork sim run` knows, by name. */
export const SCENARIOS: readonly Scenario[] = Object.freeze([
  {
    name: 'baseline',
    summary:
      'honest operators on real geography and hardware, light churn (5% leave, half come back, 5% join)',
    defaults: { nodes: 40, verifiers: 3, epochs: 6 },
    build: (size) => ({ fleet: honest(size), colluders: 0 }),
  },
  {
    name: 'churn',
    summary: 'heavy churn: 30% of the nodes leave, half of them rejoin (vetted again), 30% more join',
    defaults: { nodes: 40, verifiers: 3, epochs: 6 },
    build: (size) => ({ fleet: honest(size, HEAVY_CHURN), colluders: 0 }),
  },
  {
    name: 'lazy',
    summary: 'lazy nodes (3%, at least 2): online about half the time, in sessions of half an epoch',
    attacker: 'lazy',
    defaults: { nodes: 40, verifiers: 3, epochs: 6 },
    build: (size) => lazy(size, false),
    twin: (size) => lazy(size, true),
  },
  {
    name: 'sybil',
    summary:
      'a Sybil farm: 2% as many identities (at least 4) in one cell behind one machine, 5,000 MESH each',
    attacker: 'sybil',
    defaults: { nodes: 100, verifiers: 3, epochs: 6 },
    build: (size) => sybil(size, false),
    twin: (size) => sybil(size, true),
  },
  {
    name: 'forwarded',
    summary: 'forwarded challenges: one machine answers for identities claiming cells in other cities',
    attacker: 'forwarded',
    defaults: { nodes: 100, verifiers: 3, epochs: 6 },
    build: (size) => farAwayClaims(size, false, 'forwarded', 5),
    twin: (size) => farAwayClaims(size, true, 'forwarded', 5),
  },
  {
    name: 'location-spoofer',
    summary:
      'location spoofers: half the nodes run weather stations; one machine registers identities in other cities and runs a fake station for each, replaying the weather of the place it claims',
    attacker: 'spoofer',
    sensors: { share: 0.5, spoofers: 'spoofer' },
    defaults: { nodes: 100, verifiers: 3, epochs: 6 },
    build: (size) => farAwayClaims(size, false, 'spoofer', 0),
    twin: (size) => farAwayClaims(size, true, 'spoofer', 0),
  },
  {
    name: 'careful-spoofer',
    summary:
      "a careful location spoofer: like location-spoofer, but it claims only cells (300 km or more away) that no verifier's round trip to its machine rules out. Its fake stations carry no approved maker's certificate, so they are not paid (docs/simulation.md)",
    attacker: 'careful-spoofer',
    sensors: { share: 0.5, spoofers: 'careful-spoofer' },
    defaults: { nodes: 100, verifiers: 3, epochs: 6 },
    build: (size) => farAwayClaims(size, false, 'careful-spoofer', 0, true),
    twin: (size) => farAwayClaims(size, true, 'careful-spoofer', 0, true),
  },
  {
    name: 'forger',
    summary:
      'result forgers (3%, at least 2): builders run 4 jobs a node an epoch and re-run them adaptively; forgers sign results they never computed',
    attacker: 'forger',
    compute: { forgers: 'forger' },
    defaults: { nodes: 40, verifiers: 3, epochs: 6 },
    build: (size) => forger(size),
    twin: (size) => forger(size),
  },
  {
    name: 'wash-trading',
    summary:
      'wash trading: an operator pays its own 2 nodes 25 jobs each an epoch at 40 MESH, verified by each other, to farm the compute pool',
    attacker: 'wash',
    compute: { wash: { cohort: 'wash', jobsPerEpoch: 25, price: 40n * MESH } },
    defaults: { nodes: 40, verifiers: 3, epochs: 6 },
    build: (size) => washTrading(size),
    twin: (size) => washTrading(size),
  },
  {
    name: 'storage-deleter',
    summary:
      'storage deleters (3%, at least 2): a builder stores a file per 5 nodes (2-of-4 shards, prepaid); the deleters undercut the price, take shards and delete them',
    attacker: 'deleter',
    storage: { nodesPerFile: 5, bytes: 96 * 1024, k: 2, n: 4, undercut: 'deleter', deleters: 'deleter' },
    defaults: { nodes: 40, verifiers: 3, epochs: 6 },
    build: (size) => deleter(size),
    twin: (size) => deleter(size),
  },
  {
    name: 'colluding-verifiers',
    summary:
      'a minority of verifiers (2 of 5) sign and submit a forged root claiming the whole emission every epoch',
    attacker: 'colluders',
    defaults: { nodes: 40, verifiers: 5, epochs: 6 },
    build: (size) => ({ fleet: honest(size), colluders: minority(size.verifiers) }),
    twin: (size) => ({ fleet: honest(size), colluders: 0 }),
  },
])

/** The scenario called `name`. */
export function scenarioByName(name: string): Scenario {
  const found = SCENARIOS.find((s) => s.name === name)
  if (found === undefined)
    throw new SimError('SIM_UNKNOWN_SCENARIO', `there is no scenario "${name}"`, {
      hint: `Use one of: ${SCENARIOS.map((s) => s.name).join(', ')}`,
      details: { scenario: name },
    })
  return found
}
