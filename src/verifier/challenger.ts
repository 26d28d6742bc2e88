import type { Clock, Timer } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { NetworkPort } from '../mesh/network-port.js'
import type { PeerVerifier } from '../mesh/peer-key.js'
import type { WireCodec } from '../mesh/wire-codec.js'
import { challengeUptime } from '../node/uptime.js'
import { challengedChunk, challengeShard } from '../storage/challenge.js'
import {
  BANDWIDTH_OBSERVATION,
  COMPUTE_OBSERVATION,
  SENSOR_OBSERVATION,
  STORAGE_OBSERVATION,
  UPTIME_OBSERVATION,
} from './observation.js'
import { locationProbe, type VerifierPlace } from './probe.js'
import { challengeTimes } from './schedule.js'
import type { SensorJudge } from './sensor-judge.js'
import type { HeldShardRecord, VerifierStore } from './store.js'

/** The gossip topic of observations. */
export function observationTopic(network: string): string {
  return `meshwork/${network}/observations/1`
}

/** What the challenger needs to know about an epoch. */
export interface EpochPlan {
  epoch: number
  /** The hash of the epoch's first block. */
  seed: string
  startMs: number
  durationMs: number
  /** Peer ids of the registered nodes (the registry at the seed block). */
  nodes: readonly string[]
  /** Each node's registered H3 cell (hex), for the location probe in its uptime observation. */
  cells?: ReadonlyMap<string, string>
}

/** Options of {@link Challenger}. */
export interface ChallengerInit {
  network: string
  /** Challenges per node per epoch. */
  challengesPerEpoch: number
  /** An answer later than this is missed. */
  timeoutMs: number
  /** When, as a fraction of the epoch, the observations go out (after the last challenge window). */
  publishFraction?: number
  /** Chunk challenges per stored shard per epoch (default 2; 0: no proof of storage). */
  storageChallengesPerShard?: number
  /** A chunk later than this fails its challenge (default `timeoutMs`): a disk read, not a download. */
  storageTimeoutMs?: number
  /** Where this verifier is: its uptime observations then carry a location probe of each node. */
  place?: VerifierPlace
}

/** The parts the challenger works with. */
export interface ChallengerComponents {
  port: Pick<NetworkPort, 'peerId' | 'request' | 'publish'>
  clock: Clock
  store: VerifierStore
  codec: WireCodec
  verifier: PeerVerifier
  logger: Logger
  /**
   * Resolves once the compute checks under way (fraud re-runs) are done, so that the epoch's compute
   * observations include them; the challenger waits for it at most {@link COMPUTE_SETTLE_MS}.
   */
  computeSettled?: () => Promise<void>
  /** Judges the sensors heard this epoch (none: no sensor observations). */
  sensors?: Pick<SensorJudge, 'observations'>
}

/** The longest the epoch's compute observations wait for re-runs under way. */
export const COMPUTE_SETTLE_MS = 3_000

/**
 * Challenges every registered node on the epoch's schedule and publishes one signed observation per
 * node when the challenge window has closed. Every result is stored before the next step depends on
 * it, and a slot already in the store is not challenged again: a verifier restarted in the middle
 * of an epoch continues where it was (slots that passed while it was down are simply not counted,
 * for anyone: its observation reports only the challenges it sent).
 */
export class Challenger {
  readonly #init: ChallengerInit
  readonly #c: ChallengerComponents
  readonly #timers = new Set<Timer>()
  readonly #running = new Set<Promise<void>>()

  constructor(init: ChallengerInit, components: ChallengerComponents) {
    this.#init = init
    this.#c = components
  }

  /** Arms the epoch's remaining challenges and its publication; resolves once it has published. */
  runEpoch(plan: EpochPlan): Promise<void> {
    const { clock, store, port } = this.#c
    const now = clock.now()
    for (const node of plan.nodes) {
      if (node === port.peerId) continue
      const done = store.challengedSlots(plan.epoch, node)
      const times = challengeTimes({
        seed: plan.seed,
        verifier: port.peerId,
        node,
        epochStartMs: plan.startMs,
        epochDurationMs: plan.durationMs,
        count: this.#init.challengesPerEpoch,
      })
      times.forEach((at, slot) => {
        if (done.has(slot) || at < now) return
        this.#after(at - now, () => this.#challenge(plan.epoch, node, slot))
      })
    }
    // Proof of storage: every shard a registered node holds by its receipt, on a schedule of its own.
    const registered = new Set(plan.nodes)
    const perShard = this.#init.storageChallengesPerShard ?? 2
    for (const held of perShard > 0 ? store.heldShards(plan.epoch) : []) {
      if (!registered.has(held.holder) || held.holder === port.peerId) continue
      const done = store.storageSlots(plan.epoch, held.holder, held.cid, held.shard)
      const times = challengeTimes({
        seed: plan.seed,
        verifier: port.peerId,
        node: `${held.holder}/${held.cid}/${held.shard}`,
        epochStartMs: plan.startMs,
        epochDurationMs: plan.durationMs,
        count: perShard,
      })
      times.forEach((at, slot) => {
        if (done.has(slot) || at < now) return
        this.#after(at - now, () => this.#challengeStorage(plan, held, slot))
      })
    }
    const publishAt = plan.startMs + Math.floor(plan.durationMs * (this.#init.publishFraction ?? 0.85))
    return new Promise((resolve) => {
      this.#after(Math.max(0, publishAt - now), () => {
        // Challenges still in flight finish first (their deadline is shorter than the gap).
        void Promise.allSettled([...this.#running])
          .then(() => this.publish(plan.epoch, plan.cells))
          .then(
            () => resolve(),
            () => resolve(),
          )
      })
    })
  }

  #after(ms: number, fn: () => void): void {
    const timer = this.#c.clock.setTimer(ms, () => {
      this.#timers.delete(timer)
      fn()
    })
    this.#timers.add(timer)
  }

  #challenge(epoch: number, node: string, slot: number): void {
    const { clock, store, port, verifier, logger } = this.#c
    const at = clock.now()
    const run = challengeUptime(port, {
      network: this.#init.network,
      epoch,
      node,
      timeoutMs: this.#init.timeoutMs,
      verifier,
      now: () => clock.now(),
    })
      .then((result) => {
        store.recordChallenge({
          epoch,
          node,
          slot,
          at,
          outcome: result.answered ? 'answered' : (result.missed ?? 'refused'),
          ...(result.rttMs === undefined ? {} : { rttMs: Math.round(result.rttMs) }),
        })
      })
      .catch((err: unknown) => logger.warn({ err, epoch, node, slot }, 'could not record a challenge'))
      .finally(() => this.#running.delete(run))
    this.#running.add(run)
  }

  #challengeStorage(plan: EpochPlan, held: HeldShardRecord, slot: number): void {
    const { clock, store, port, logger } = this.#c
    const at = clock.now()
    const chunk = challengedChunk(plan.seed, port.peerId, held, slot)
    const run = challengeShard(port, held, chunk, this.#init.storageTimeoutMs ?? this.#init.timeoutMs)
      .then((outcome) => {
        store.recordStorageChallenge({
          epoch: plan.epoch,
          holder: held.holder,
          cid: held.cid,
          shard: held.shard,
          slot,
          passed: outcome === 'passed',
          at,
        })
        if (outcome !== 'passed')
          logger.info(
            { epoch: plan.epoch, holder: held.holder, cid: held.cid, shard: held.shard, outcome },
            'storage challenge failed',
          )
      })
      .catch((err: unknown) =>
        logger.warn({ err, holder: held.holder }, 'could not record a storage challenge'),
      )
      .finally(() => this.#running.delete(run))
    this.#running.add(run)
  }

  /**
   * Signs, stores and gossips this verifier's observation of every node it challenged in `epoch`
   * (from the store, so a restarted verifier publishes what it measured before too).
   */
  async publish(epoch: number, cells?: ReadonlyMap<string, string>): Promise<number> {
    const { store, codec, port, logger } = this.#c
    let published = 0
    for (const [node, counts] of store.challengeCounts(epoch)) {
      if (counts.challenges === 0) continue
      const cell = cells?.get(node)
      const probe = cell === undefined ? null : locationProbe(store, epoch, node, cell, this.#init.place)
      const { bytes } = codec.encode(UPTIME_OBSERVATION, {
        epoch,
        node,
        challenges: counts.challenges,
        answered: counts.answered,
        ...(probe === null ? {} : { probe }),
      })
      const envelope = JSON.parse(new TextDecoder().decode(bytes))
      store.saveObservation(envelope)
      logger.debug({ epoch, from: port.peerId, node, seq: envelope.seq }, 'observation stored')
      try {
        await port.publish(observationTopic(this.#init.network), bytes)
        published++
      } catch (err) {
        // Stored: the bundle leader also fetches observations it missed (next step of the issue).
        logger.warn({ err, epoch, node }, 'could not gossip an observation')
      }
    }
    // Compute: every node with checked work or confirmed fraud this epoch (re-runs under way first).
    if (this.#c.computeSettled) {
      let timer: Timer | undefined
      await Promise.race([
        this.#c.computeSettled(),
        new Promise<void>((resolve) => {
          timer = this.#c.clock.setTimer(COMPUTE_SETTLE_MS, resolve)
        }),
      ])
      timer?.cancel()
    }
    const work = store.workOf(epoch)
    const frauds = new Set(store.frauds(epoch).map((f) => f.node))
    for (const node of [...new Set([...work.keys(), ...frauds])].sort()) {
      const w = work.get(node) ?? { jobs: 0, value: 0n }
      const { bytes } = codec.encode(COMPUTE_OBSERVATION, {
        epoch,
        node,
        jobs: w.jobs,
        value: w.value.toString(),
        fraud: frauds.has(node),
      })
      store.saveComputeObservation(JSON.parse(new TextDecoder().decode(bytes)))
      try {
        await port.publish(observationTopic(this.#init.network), bytes)
        published++
      } catch (err) {
        logger.warn({ err, epoch, node }, 'could not gossip a compute observation')
      }
    }
    // Delivery: every holder downloaders receipted bytes for this epoch.
    for (const [node, served] of store.servedOf(epoch)) {
      const { bytes } = codec.encode(BANDWIDTH_OBSERVATION, { epoch, node, ...served })
      store.saveBandwidthObservation(JSON.parse(new TextDecoder().decode(bytes)))
      try {
        await port.publish(observationTopic(this.#init.network), bytes)
        published++
      } catch (err) {
        logger.warn({ err, epoch, node }, 'could not gossip a bandwidth observation')
      }
    }
    // Storage: every holder challenged this epoch.
    for (const [node, counts] of store.storageCounts(epoch)) {
      if (counts.challenges === 0) continue
      const { bytes } = codec.encode(STORAGE_OBSERVATION, { epoch, node, ...counts })
      store.saveStorageObservation(JSON.parse(new TextDecoder().decode(bytes)))
      try {
        await port.publish(observationTopic(this.#init.network), bytes)
        published++
      } catch (err) {
        logger.warn({ err, epoch, node }, 'could not gossip a storage observation')
      }
    }
    // Sensors: every node whose sensors were heard this epoch.
    for (const body of this.#c.sensors?.observations(epoch) ?? []) {
      const { bytes } = codec.encode(SENSOR_OBSERVATION, body)
      store.saveSensorObservation(JSON.parse(new TextDecoder().decode(bytes)))
      try {
        await port.publish(observationTopic(this.#init.network), bytes)
        published++
      } catch (err) {
        logger.warn({ err, epoch, node: body.node }, 'could not gossip a sensor observation')
      }
    }
    return published
  }

  stop(): void {
    for (const timer of this.#timers) timer.cancel()
    this.#timers.clear()
  }
}
