import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { NetworkPort } from '../mesh/network-port.js'
import type { PeerVerifier } from '../mesh/peer-key.js'
import type { WireCodec } from '../mesh/wire-codec.js'
import { storageTopic } from '../storage/challenge.js'
import {
  BANDWIDTH_RECEIPT,
  type BandwidthReceiptBody,
  STORAGE_RECEIPT,
  type StorageReceiptBody,
} from '../storage/protocol.js'
import type { RegistrySnapshot, VerifierChain } from './chain-port.js'
import { Challenger, observationTopic } from './challenger.js'
import {
  BANDWIDTH_OBSERVATION,
  COMPUTE_OBSERVATION,
  SENSOR_OBSERVATION,
  STORAGE_OBSERVATION,
  UPTIME_OBSERVATION,
} from './observation.js'
import { SensorJudge } from './sensor-judge.js'
import type { StorageRepairer } from './storage-repairer.js'
import type { VerifierStore } from './store.js'

/** The protocol id a verifier serves stored bundles on: request = CID (UTF-8), response = bundle bytes. */
export const BUNDLE_PROTOCOL = '/meshwork/bundle/1'
/** Largest bundle served or fetched over the mesh. */
export const MAX_BUNDLE_BYTES = 256 * 1024 * 1024

/** The epoch schedule as the contracts hold it (immutable after deploy). */
export interface EpochSchedule {
  /** Unix seconds. */
  genesisTime: number
  /** Seconds. */
  epochDuration: number
}

/** Options of {@link VerifierAgent}. */
export interface VerifierAgentInit {
  network: string
  schedule: EpochSchedule
  challengesPerEpoch: number
  challengeTimeoutMs: number
  /** Chunk challenges per stored shard per epoch (default 2) and their deadline (default `challengeTimeoutMs`). */
  storageChallengesPerShard?: number
  storageTimeoutMs?: number
  /** How often the chain is polled for an epoch's seed block (default 1 s). */
  pollMs?: number
  /** Where this verifier is: its round trips to nodes then bound where their sensors can be. */
  place?: { lat: number; lon: number }
}

/** The parts a verifier agent works with. */
export interface VerifierAgentComponents {
  port: NetworkPort
  clock: Clock
  /** Only epochs' seed blocks and registry snapshots (the closer reads roots and parameters). */
  chain: Pick<VerifierChain, 'head' | 'firstBlockAtOrAfter' | 'registry'>
  store: VerifierStore
  /** Encodes with the verifier's peer key; knows UPTIME_OBSERVATION. */
  codec: WireCodec
  verifier: PeerVerifier
  logger: Logger
  /** See `ChallengerComponents.computeSettled`. */
  computeSettled?: () => Promise<void>
  /** Rebuilds shards that failed their challenges, after each epoch (none: no repairs). */
  repairer?: Pick<StorageRepairer, 'afterEpoch'>
}

/** An epoch the agent has planned: its seed block and registry snapshot. */
export interface PlannedEpoch {
  epoch: number
  seed: `0x${string}`
  seedBlock: bigint
  registry: RegistrySnapshot
}

/**
 * A verifier: follows the chain's epochs, challenges every registered node on each epoch's schedule
 * and publishes its observations (the {@link Challenger}), takes in other verifiers' observations
 * (checked by the wire codec, from verifiers active in that epoch only, stored), and serves the
 * bundles it holds by CID. Closing epochs (leader, attestations, posting) builds on it.
 */
export class VerifierAgent {
  readonly #init: VerifierAgentInit
  readonly #c: VerifierAgentComponents
  readonly #challenger: Challenger
  /** Takes in sensor readings and judges them each epoch. */
  readonly sensors: SensorJudge
  readonly #planned = new Map<number, PlannedEpoch>()
  readonly #stop = new AbortController()
  #loop: Promise<void> | undefined
  #unsubscribe: (() => void) | undefined
  #unsubscribeStorage: (() => void) | undefined
  /** Observations taken in and refused, for metrics and tests. */
  readonly counts = { accepted: 0, refused: 0 }

  constructor(init: VerifierAgentInit, components: VerifierAgentComponents) {
    this.#init = init
    this.#c = components
    this.sensors = new SensorJudge(
      { network: init.network, ...(init.place === undefined ? {} : { place: init.place }) },
      {
        ...components,
        logger: components.logger.child({ module: 'sensors' }),
        epochAt: (ms) => this.epochAtLocal(ms),
        registryAt: (epoch) => this.registryAt(epoch),
      },
    )
    this.#challenger = new Challenger(
      {
        network: init.network,
        challengesPerEpoch: init.challengesPerEpoch,
        timeoutMs: init.challengeTimeoutMs,
        ...(init.storageChallengesPerShard === undefined
          ? {}
          : { storageChallengesPerShard: init.storageChallengesPerShard }),
        ...(init.storageTimeoutMs === undefined ? {} : { storageTimeoutMs: init.storageTimeoutMs }),
        ...(init.place === undefined ? {} : { place: init.place }),
      },
      { ...components, sensors: this.sensors },
    )
  }

  /** The epoch the clock is in (from 0; -1 before genesis). */
  epochAt(ms: number): number {
    const { genesisTime, epochDuration } = this.#init.schedule
    return Math.floor((ms / 1000 - genesisTime) / epochDuration)
  }

  /** An epoch's start in ms. */
  epochStartMs(epoch: number): number {
    const { genesisTime, epochDuration } = this.#init.schedule
    return (genesisTime + epoch * epochDuration) * 1000
  }

  /** The plan of `epoch`, once its seed block exists. */
  planned(epoch: number): PlannedEpoch | undefined {
    return this.#planned.get(epoch)
  }

  /**
   * The registry to judge messages by in `epoch`: that epoch's, or, right after it began and before
   * its seed block is planned, the newest one before it.
   */
  registryAt(epoch: number): RegistrySnapshot | undefined {
    const exact = this.#planned.get(epoch)
    if (exact) return exact.registry
    let best: PlannedEpoch | undefined
    for (const p of this.#planned.values())
      if (p.epoch < epoch && (best === undefined || p.epoch > best.epoch)) best = p
    return best?.registry
  }

  start(): void {
    const { port, store } = this.#c
    this.#unsubscribe = port.subscribe(observationTopic(this.#init.network), (message) => {
      const decoded = this.#c.codec.decode(message.data, { from: message.from })
      const type = decoded.ok ? decoded.envelope.type : ''
      if (
        !decoded.ok ||
        (type !== UPTIME_OBSERVATION.type &&
          type !== COMPUTE_OBSERVATION.type &&
          type !== STORAGE_OBSERVATION.type &&
          type !== BANDWIDTH_OBSERVATION.type &&
          type !== SENSOR_OBSERVATION.type)
      ) {
        this.counts.refused++
        return decoded.ok ? 'reject' : decoded.verdict
      }
      const body = decoded.envelope.body as { epoch: number }
      const plan = this.#planned.get(body.epoch)
      // Only epochs this verifier is running, and only verifiers active in them: nothing else is
      // stored, so a valid key alone cannot fill the disk with observations of far-off epochs.
      if (plan === undefined) return 'ignore'
      if (!plan.registry.verifiers.some((v) => v.peerId === decoded.envelope.from)) {
        this.counts.refused++
        return 'reject'
      }
      if (type === COMPUTE_OBSERVATION.type)
        store.saveComputeObservation(
          decoded.envelope as Parameters<VerifierStore['saveComputeObservation']>[0],
        )
      else if (type === BANDWIDTH_OBSERVATION.type)
        store.saveBandwidthObservation(
          decoded.envelope as Parameters<VerifierStore['saveBandwidthObservation']>[0],
        )
      else if (type === SENSOR_OBSERVATION.type)
        store.saveSensorObservation(decoded.envelope as Parameters<VerifierStore['saveSensorObservation']>[0])
      else if (type === STORAGE_OBSERVATION.type)
        store.saveStorageObservation(
          decoded.envelope as Parameters<VerifierStore['saveStorageObservation']>[0],
        )
      else store.saveObservation(decoded.envelope as Parameters<VerifierStore['saveObservation']>[0])
      // Committed before it is acknowledged (accepted, so gossip forwards it).
      this.#c.logger.debug(
        {
          epoch: body.epoch,
          from: decoded.envelope.from,
          node: (body as { node?: string }).node,
          seq: decoded.envelope.seq,
        },
        'observation stored',
      )
      this.counts.accepted++
      return 'accept'
    })
    // Holders' receipts: what to challenge, from the epoch after the shard was stored, for as many
    // epochs as it was stored for. Registered nodes only (checked at challenge time, by epoch).
    this.#unsubscribeStorage = port.subscribe(storageTopic(this.#init.network), (message) => {
      // Signed by their authors: storage receipts by the holder that publishes them, byte receipts by
      // the downloader (published by the holder that served it).
      const decoded = this.#c.codec.decode(message.data)
      if (!decoded.ok) return decoded.verdict
      // Kept for any signer (a node may register after this verifier's last plan): challenges go to
      // registered nodes only, and the store caps what one holder can put in it.
      if (decoded.envelope.type === BANDWIDTH_RECEIPT.type) {
        // A downloader's receipt, in the epoch of its signed time; a holder receipting itself counts nothing.
        const b = decoded.envelope.body as BandwidthReceiptBody
        if (b.holder === decoded.envelope.from) return 'ignore'
        store.recordServed({
          // Chain time (the builder's clock, shifted as this verifier's is): the epochs verifiers close.
          epoch: this.epochAtLocal(decoded.envelope.ts),
          holder: b.holder,
          downloader: decoded.envelope.from,
          session: b.session,
          bytes: b.bytes,
        })
        return 'accept'
      }
      if (decoded.envelope.type !== STORAGE_RECEIPT.type || decoded.envelope.from !== message.from)
        return 'reject'
      const r = decoded.envelope.body as StorageReceiptBody
      const fromEpoch = this.epochAt(r.storedAt) + 1
      store.saveHeldShard({
        holder: decoded.envelope.from,
        cid: r.cid,
        shard: r.shard,
        root: r.root,
        bytes: r.bytes,
        chunkBytes: r.chunkBytes,
        fromEpoch,
        untilEpoch: fromEpoch + r.epochs - 1,
      })
      return 'accept'
    })
    port.handle(
      BUNDLE_PROTOCOL,
      async (request) => {
        const bundle = store.bundle(new TextDecoder().decode(request))
        if (bundle === undefined) throw new RangeError('no such bundle')
        return bundle.bytes
      },
      { maxRequestBytes: 256 },
    )
    this.#loop = this.#run(this.#stop.signal).catch((err: unknown) => {
      if (!this.#stop.signal.aborted) this.#c.logger.error({ err }, 'the verifier loop stopped')
    })
  }

  /**
   * How far the chain's clock is ahead of this machine's, in ms (0 when behind or equal). Epochs are
   * chain time: a dev chain that mined many blocks in a second runs ahead of the wall clock (each
   * block is at least a second after the one before), and a public chain's block times drift a
   * little. Refreshed from the head block each epoch.
   */
  #offsetMs = 0

  async #refreshOffset(): Promise<void> {
    const head = await this.#c.chain.head()
    this.#offsetMs = Math.max(0, head.timestamp * 1000 - this.#c.clock.now())
  }

  /** The epoch a moment of this machine's clock (ms) falls in, in chain time. */
  epochAtLocal(ms: number): number {
    return this.epochAt(ms + this.#offsetMs)
  }

  /** Now in chain time (ms). */
  chainNow(): number {
    return this.#c.clock.now() + this.#offsetMs
  }

  /**
   * Plans and runs epoch after epoch: waits for each seed block, snapshots the registry, challenges.
   * A failed chain read (an RPC hiccup) is retried every `pollMs` for the same epoch: the loop never
   * stops until the agent does.
   */
  async #run(signal: AbortSignal): Promise<void> {
    const { clock, logger } = this.#c
    let epoch: number | undefined
    while (!signal.aborted) {
      try {
        if (epoch === undefined) {
          await this.#refreshOffset()
          epoch = Math.max(0, this.epochAt(this.chainNow()))
        }
        if (!(await this.#runEpoch(epoch, signal))) return
        // The next epoch; if this one took long to plan, skip to the one the chain is in.
        epoch = Math.max(epoch + 1, this.epochAt(this.chainNow()))
      } catch (err) {
        if (signal.aborted) return
        logger.warn({ err, epoch }, 'could not plan an epoch; retrying')
        await clock.sleep(this.#init.pollMs ?? 1_000, signal)
      }
    }
  }

  /** Waits for `epoch`'s seed block, plans it and starts its challenges; false once stopped. */
  async #runEpoch(epoch: number, signal: AbortSignal): Promise<boolean> {
    const { clock, chain, logger } = this.#c
    const start = this.epochStartMs(epoch)
    if (this.chainNow() < start) await clock.sleep(start - this.chainNow(), signal)
    let seed = await chain.firstBlockAtOrAfter(start / 1000)
    while (seed === undefined && !signal.aborted) {
      await clock.sleep(this.#init.pollMs ?? 1_000, signal)
      seed = await chain.firstBlockAtOrAfter(start / 1000)
    }
    if (seed === undefined) return false
    await this.#refreshOffset()
    const registry = await chain.registry(seed.number)
    const plan: PlannedEpoch = { epoch, seed: seed.hash, seedBlock: seed.number, registry }
    this.#planned.set(epoch, plan)
    this.sensors.follow(registry)
    for (const old of this.#planned.keys()) if (old < epoch - 8) this.#planned.delete(old)
    const durationMs = this.#init.schedule.epochDuration * 1000
    if (registry.verifiers.some((v) => v.peerId === this.#c.port.peerId)) {
      void this.#challenger
        .runEpoch({
          epoch,
          seed: seed.hash,
          // The schedule is in chain time; the challenger's timers run on this machine's clock.
          startMs: start - this.#offsetMs,
          durationMs,
          nodes: registry.nodes.map((n) => n.peerId),
          cells: new Map(
            registry.nodes.flatMap((n) => (n.h3Cell === undefined ? [] : [[n.peerId, n.h3Cell]])),
          ),
        })
        // Once the epoch's observations are out: rebuild what failed (this verifier's turn only).
        .then(() => (signal.aborted ? 0 : this.#c.repairer?.afterEpoch(epoch, registry)))
        .catch((err: unknown) => logger.warn({ err, epoch }, 'storage repair failed'))
    } else {
      logger.warn(
        { epoch, verifiers: registry.verifiers.length },
        'not an active verifier in this epoch: not challenging',
      )
    }
    return true
  }

  async stop(): Promise<void> {
    this.#stop.abort()
    this.#challenger.stop()
    this.sensors.stop()
    this.#unsubscribe?.()
    this.#unsubscribeStorage?.()
    this.#c.port.unhandle(BUNDLE_PROTOCOL)
    await this.#loop
  }
}
