import { type Access, drawPlace, type Place, placeOfCell } from './geography.js'
import { stream } from './random.js'

/** Kinds of rigs operators run, each with its access network, availability and running cost. */
export type HardwareClass = 'sbc' | 'home-server' | 'gaming-pc' | 'cloud-vm'

/** What a class of hardware is like. */
export interface HardwareProfile {
  /** Share of honest machines of this class. */
  share: number
  access: Access
  /** Mean length of an online session and of an offline gap, in epochs. */
  meanOnEpochs: number
  meanOffEpochs: number
  /** Running cost of one machine-epoch, relative to the network's unit cost (economics.ts). */
  costFactor: number
}

/** The hardware classes (documented in docs/simulation.md, "Network model"). */
export const HARDWARE: Readonly<Record<HardwareClass, HardwareProfile>> = Object.freeze({
  sbc: {
    share: 0.35,
    access: { accessMs: 8, jitterMs: 4, lossRate: 0.002 },
    meanOnEpochs: 300,
    meanOffEpochs: 4,
    costFactor: 0.5,
  },
  'home-server': {
    share: 0.35,
    access: { accessMs: 5, jitterMs: 2, lossRate: 0.001 },
    meanOnEpochs: 600,
    meanOffEpochs: 3,
    costFactor: 1,
  },
  'gaming-pc': {
    share: 0.25,
    access: { accessMs: 6, jitterMs: 3, lossRate: 0.002 },
    meanOnEpochs: 40,
    meanOffEpochs: 6,
    costFactor: 1.5,
  },
  'cloud-vm': {
    share: 0.05,
    access: { accessMs: 1, jitterMs: 1, lossRate: 0.0005 },
    meanOnEpochs: 2_000,
    meanOffEpochs: 1,
    costFactor: 2,
  },
})

const CLASSES = Object.keys(HARDWARE) as HardwareClass[]
const CLASS_CUMULATIVE = (() => {
  let sum = 0
  return CLASSES.map((c) => {
    sum += HARDWARE[c].share
    return sum
  })
})()

/** A span of virtual time, in epochs from genesis (fractional), `to` exclusive. */
export interface Span {
  from: number
  to: number
}

/** A physical machine: where it is, what it is, and when it is on. */
export interface Machine {
  index: number
  place: Place
  hardware: HardwareClass
  access: Access
  /** Online sessions over the run, in epochs from genesis, sorted and disjoint. */
  online: Span[]
}

/** An identity registered on the chain: a peer key on a machine, with a stake and an operator. */
export interface Identity {
  index: number
  /** Who it belongs to, for the economics: `honest` or an attacker cohort's name. */
  cohort: string
  machine: number
  /** The place it claims (its machine's, unless it lies). */
  claimed: Place
  /** Stake, whole MESH. */
  stakeMesh: number
  /** Registrations: whole epochs, `to` exclusive (a node that leaves and rejoins has two). */
  memberships: Span[]
  /** Extra one-way delay to reach its machine (a forwarding hop), ms. */
  forwardMs: number
}

/** Churn of honest nodes over a run. */
export interface ChurnModel {
  /** Share of the starting nodes that leave (deregister) at a random epoch. */
  leave: number
  /** Share of leavers that register again after 1 to 4 epochs (as a new registration: vetted again). */
  rejoin: number
  /** New nodes joining during the run, as a share of the starting nodes. */
  join: number
}

/** The simulated world: machines and the identities on them. */
export interface Fleet {
  machines: Machine[]
  identities: Identity[]
}

/** Draws online sessions from `from` to `to` epochs for a machine with these means. */
export function drawSessions(
  seed: number,
  label: (string | number)[],
  meanOn: number,
  meanOff: number,
  span: Span,
): Span[] {
  const random = stream(seed, 'sessions', ...label)
  const sessions: Span[] = []
  // Start in a state drawn by the long-run availability.
  let on = random.chance(meanOn / (meanOn + meanOff))
  let t = span.from
  while (t < span.to) {
    const length = Math.max(1 / 3_600, random.exponential(on ? meanOn : meanOff))
    const end = Math.min(span.to, t + length)
    if (on) sessions.push({ from: t, to: end })
    t = end
    on = !on
  }
  return sessions
}

/** Whether `sessions` cover the instant `t`. */
export function isOnline(sessions: readonly Span[], t: number): boolean {
  let lo = 0
  let hi = sessions.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const s = sessions[mid] as Span
    if (t < s.from) hi = mid - 1
    else if (t >= s.to) lo = mid + 1
    else return true
  }
  return false
}

/** Options of {@link honestFleet}. */
export interface FleetInit {
  seed: number
  nodes: number
  epochs: number
  churn: ChurnModel
}

/**
 * Honest operators: one machine and one identity each, placed by population, hardware by the
 * shares of {@link HARDWARE}, stake from 1,000 to 20,000 MESH (log-uniform, so most stake little),
 * and churn: leavers, rejoiners and newcomers.
 */
export function honestFleet(init: FleetInit): Fleet {
  const fleet: Fleet = { machines: [], identities: [] }
  const random = stream(init.seed, 'fleet')
  const churn = stream(init.seed, 'churn')
  const newcomers = Math.round(init.nodes * init.churn.join)
  for (let i = 0; i < init.nodes + newcomers; i++) {
    const hardware = CLASSES[random.weighted(CLASS_CUMULATIVE)] as HardwareClass
    const place = drawPlace(random)
    const stakeMesh = Math.round(1_000 * 20 ** random.uniform())
    let memberships: Span[]
    if (i >= init.nodes) {
      memberships = [{ from: churn.int(1, Math.max(1, init.epochs - 1)), to: init.epochs }]
    } else if (init.epochs > 1 && churn.chance(init.churn.leave)) {
      const leaveAt = churn.int(1, init.epochs - 1)
      memberships = [{ from: 0, to: leaveAt }]
      const back = leaveAt + churn.int(1, 4)
      if (churn.chance(init.churn.rejoin) && back < init.epochs)
        memberships.push({ from: back, to: init.epochs })
    } else {
      memberships = [{ from: 0, to: init.epochs }]
    }
    addMachine(fleet, init.seed, hardware, place, HARDWARE[hardware], init.epochs)
    fleet.identities.push({
      index: fleet.identities.length,
      cohort: 'honest',
      machine: fleet.machines.length - 1,
      claimed: place,
      stakeMesh,
      memberships,
      forwardMs: 0,
    })
  }
  return fleet
}

/** Adds a machine with sessions drawn over the whole run; returns its index. */
export function addMachine(
  fleet: Fleet,
  seed: number,
  hardware: HardwareClass,
  place: Place,
  uptime: Pick<HardwareProfile, 'meanOnEpochs' | 'meanOffEpochs'>,
  epochs: number,
): number {
  const index = fleet.machines.length
  fleet.machines.push({
    index,
    place,
    hardware,
    access: HARDWARE[hardware].access,
    online: drawSessions(seed, ['machine', index], uptime.meanOnEpochs, uptime.meanOffEpochs, {
      from: 0,
      to: epochs,
    }),
  })
  return index
}

/** Adds identities of an attacker cohort on `machine`, each claiming `claimed(i)` (default: the machine's place). */
export function addIdentities(
  fleet: Fleet,
  init: {
    cohort: string
    machine: number
    count: number
    stakeMesh: number
    epochs: number
    claimed?: (i: number) => Place
    forwardMs?: number
  },
): void {
  const machine = fleet.machines[init.machine] as Machine
  for (let i = 0; i < init.count; i++) {
    fleet.identities.push({
      index: fleet.identities.length,
      cohort: init.cohort,
      machine: init.machine,
      claimed: init.claimed?.(i) ?? machine.place,
      stakeMesh: init.stakeMesh,
      memberships: [{ from: 0, to: init.epochs }],
      forwardMs: init.forwardMs ?? 0,
    })
  }
}

export { placeOfCell }
