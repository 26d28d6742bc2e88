import { gridDisk } from 'h3-js'
import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { NetworkPort, Unsubscribe, Verdict } from '../mesh/network-port.js'
import type { PeerVerifier } from '../mesh/peer-key.js'
import type { SignedEnvelope, WireCodec } from '../mesh/wire-codec.js'
import { type ReceivedReading, scoreSensor } from '../sensors/quality.js'
import {
  CertificateCache,
  checkReading,
  coarseCellOf,
  SENSOR_KINDS,
  SENSOR_READING,
  type SensorKind,
  type SensorReadingBody,
  sensorTopic,
} from '../sensors/reading.js'
import type { RegistrySnapshot } from './chain-port.js'
import { MAX_SENSORS_PER_NODE, type SensorObservationBody } from './observation.js'
import { locationProbe } from './probe.js'
import { SENSOR_READING_EPOCHS_KEPT, type VerifierStore } from './store.js'

/** Most cells whose readings one verifier follows. */
export const MAX_SENSOR_CELLS = 4_096

/** Why a reading was dropped (metrics count by these). */
export const readingDrops = [
  'undecodable',
  'bad_certificate',
  'certificate_mismatch',
  'certificate_expired',
  'kind_not_certified',
  'bad_maker_certificate',
  'maker_certificate_mismatch',
  'unregistered_node',
  'cell_mismatch',
  'device_taken',
  'too_many_sensors',
  'too_many_readings',
] as const
export type ReadingDrop = (typeof readingDrops)[number]

/** Options of {@link SensorJudge}. */
export interface SensorJudgeInit {
  network: string
  /** Where this verifier is (its H3 cell's centre is used): its probes bound the nodes' distance. */
  place?: { lat: number; lon: number }
}

/** The parts a sensor judge works with. */
export interface SensorJudgeComponents {
  port: Pick<NetworkPort, 'subscribe'>
  clock: Pick<Clock, 'now'>
  store: VerifierStore
  /** Decodes with replay protection; knows SENSOR_READING. */
  codec: WireCodec
  verifier: PeerVerifier
  logger: Logger
  /** The epoch (chain time) a moment of this machine's clock falls in. */
  epochAt(ms: number): number
  /** The registry to judge a message of `epoch` by. */
  registryAt(epoch: number): RegistrySnapshot | undefined
}

/**
 * A verifier's sensor duty: follows the reading topics of every registered node's coarse cell,
 * keeps each checked reading (device key's signature, the node's certificate and the maker's
 * certificate in it, a registered node, the cell it registered at), and at the epoch's end judges
 * every sensor it heard, naming the maker whose certificate of it was checked: data quality
 * (bounds, stuck values, rates, agreement with the sensors of the same and adjacent cells, clock
 * drift, duplicates), and a location probe of its node (this verifier's fastest answered challenge
 * and its distance to the claimed cell). The judgement is one signed observation per node.
 */
export class SensorJudge {
  readonly #init: SensorJudgeInit
  readonly #c: SensorJudgeComponents
  readonly #cells = new Map<string, Unsubscribe>()
  readonly #certificates = new CertificateCache()
  /** Each registry snapshot's nodes by peer id, with the coarse cell each registered at (built once per snapshot). */
  readonly #nodesOf = new WeakMap<RegistrySnapshot, Map<string, RegisteredNode>>()
  /** The write of the readings taken since the last turn of the event loop, once scheduled. */
  #flush: ReturnType<typeof setImmediate> | undefined
  /** Readings kept and dropped, by reason. */
  readonly counts: { kept: number; dropped: Record<ReadingDrop, number> } = {
    kept: 0,
    dropped: Object.fromEntries(readingDrops.map((r) => [r, 0])) as Record<ReadingDrop, number>,
  }

  constructor(init: SensorJudgeInit, components: SensorJudgeComponents) {
    this.#init = init
    this.#c = components
  }

  /** The cells followed. */
  get cells(): string[] {
    return [...this.#cells.keys()].sort()
  }

  /** Follows the reading topics of the coarse cells of `registry`'s nodes (new ones only). */
  follow(registry: RegistrySnapshot): void {
    for (const n of registry.nodes) {
      const cell = coarseCellOf(n.h3Cell)
      if (cell === undefined || this.#cells.has(cell)) continue
      if (this.#cells.size >= MAX_SENSOR_CELLS) {
        this.#c.logger.warn({ cell, max: MAX_SENSOR_CELLS }, 'too many sensor cells to follow')
        return
      }
      this.#cells.set(
        cell,
        this.#c.port.subscribe(sensorTopic(this.#init.network, cell), (m) => this.take(m.data)),
      )
    }
  }

  /** Checks and keeps one reading as received now; the verdict for gossip. */
  take(data: Uint8Array): Verdict {
    const { codec, store, clock } = this.#c
    const drop = (reason: ReadingDrop, verdict: Verdict = 'reject'): Verdict => {
      this.counts.dropped[reason]++
      return verdict
    }
    const decoded = codec.decode(data)
    if (!decoded.ok) return drop('undecodable', decoded.verdict)
    if (decoded.envelope.type !== SENSOR_READING.type) return drop('undecodable')
    const reading = decoded.envelope as SignedEnvelope<SensorReadingBody>
    const checked = checkReading(reading, {
      network: this.#init.network,
      verifier: this.#c.verifier,
      certificates: this.#certificates,
    })
    if (!checked.ok) return drop(checked.fault)
    const receivedAt = clock.now()
    const epoch = this.#c.epochAt(receivedAt)
    const registry = this.#c.registryAt(epoch)
    const node = registry === undefined ? undefined : this.#nodeIn(registry, checked.node)
    if (node === undefined) return drop('unregistered_node')
    if (node.cell !== undefined && node.cell !== reading.body.cell) return drop('cell_mismatch')
    const kept = store.recordReading(
      {
        epoch,
        device: reading.from,
        node: checked.node,
        cell: reading.body.cell,
        kinds: checked.certificate.body.kinds,
        ...(checked.maker === undefined ? {} : { maker: checked.maker }),
        kind: reading.body.kind,
        at: reading.body.at,
        value: reading.body.value,
        receivedAt,
      },
      MAX_SENSORS_PER_NODE,
    )
    if (!kept.ok) return drop(kept.refusal, kept.refusal === 'too_many_readings' ? 'ignore' : 'reject')
    this.counts.kept++
    // The store writes readings in batches: whatever is pending once this turn of the event loop
    // is over is committed then (a full batch is committed at once, and every read of the readings
    // commits first, so no verdict or judgement depends on when this runs). Readings are never
    // acknowledged to anyone, so a verifier killed before the write loses them and nothing else.
    this.#flush ??= setImmediate(() => {
      this.#flush = undefined
      this.#flushReadings()
    })
    return 'accept'
  }

  #flushReadings(): void {
    try {
      this.#c.store.flushReadings()
    } catch (err) {
      this.#c.logger.warn({ err }, 'failed to write sensor readings: the batch is lost')
    }
  }

  #nodeIn(registry: RegistrySnapshot, peerId: string): RegisteredNode | undefined {
    let nodes = this.#nodesOf.get(registry)
    if (nodes === undefined) {
      nodes = new Map(
        registry.nodes.map((n) => [n.peerId, { h3Cell: n.h3Cell, cell: undefined, known: false }]),
      )
      this.#nodesOf.set(registry, nodes)
    }
    const node = nodes.get(peerId)
    // The coarse cell of a node's H3 cell is worked out once per snapshot, when a reading needs it.
    if (node !== undefined && !node.known) {
      node.cell = coarseCellOf(node.h3Cell)
      node.known = true
    }
    return node
  }

  /**
   * This verifier's judgement of every node whose sensors it heard in `epoch`, one body per node
   * (sorted by node), ready to sign; readings of epochs long past are forgotten.
   */
  observations(epoch: number): SensorObservationBody[] {
    const { store } = this.#c
    const heard = store.readingsOf(epoch)
    // Each sensor's median per kind: the neighbours' values.
    const medians = new Map<string, Map<SensorKind, number>>()
    const byCell = new Map<string, string[]>()
    for (const [device, { device: d, readings }] of heard) {
      const perKind = new Map<SensorKind, number>()
      for (const kind of new Set(readings.map((r) => r.kind)))
        perKind.set(kind as SensorKind, median(readings.filter((r) => r.kind === kind).map((r) => r.value)))
      medians.set(device, perKind)
      byCell.set(d.cell, [...(byCell.get(d.cell) ?? []), device])
    }
    const byNode = new Map<string, SensorObservationBody['sensors']>()
    const cellOf = new Map<string, string>()
    for (const [device, { device: d, readings }] of heard) {
      const around = gridDisk(d.cell, 1).flatMap((c) => byCell.get(c) ?? [])
      let quality = 1
      let agreement = 1
      let summary = 'good'
      for (const kind of Object.keys(SENSOR_KINDS) as SensorKind[]) {
        const own: ReceivedReading[] = readings
          .filter((r) => r.kind === kind)
          .map((r) => ({ at: r.at, value: r.value, receivedAt: r.receivedAt }))
        if (own.length === 0) continue
        const neighbours = around.flatMap((other) => {
          const v = other === device ? undefined : medians.get(other)?.get(kind)
          return v === undefined ? [] : [v]
        })
        const score = scoreSensor(kind, own, neighbours)
        if (score.score < quality) summary = `${kind}: ${score.summary}`
        quality = Math.min(quality, score.score)
        agreement = Math.min(agreement, score.agreement)
      }
      const sensors = byNode.get(d.node) ?? []
      if (sensors.length >= MAX_SENSORS_PER_NODE) continue
      sensors.push({
        device,
        ...(d.maker === undefined ? {} : { maker: d.maker }),
        since: d.since,
        readings: readings.length,
        qualityPpm: Math.round(quality * 1e6),
        agreementPpm: Math.round(agreement * 1e6),
        summary: summary.slice(0, 120),
      })
      byNode.set(d.node, sensors)
      if (!cellOf.has(d.node)) cellOf.set(d.node, d.cell)
    }
    const out: SensorObservationBody[] = []
    for (const node of [...byNode.keys()].sort()) {
      const cell = cellOf.get(node) as string
      out.push({
        epoch,
        node,
        cell,
        probe: this.#probe(epoch, node, cell),
        sensors: (byNode.get(node) ?? []).sort((a, b) => (a.device < b.device ? -1 : 1)),
      })
    }
    store.pruneReadings(epoch - SENSOR_READING_EPOCHS_KEPT + 1)
    return out
  }

  /** This verifier's location probe of `node`: its fastest answered challenge and its distance to `cell`. */
  #probe(epoch: number, node: string, cell: string): SensorObservationBody['probe'] {
    return locationProbe(this.#c.store, epoch, node, cell, this.#init.place)
  }

  /** Stops following the cells and commits the readings taken. */
  stop(): void {
    for (const unsubscribe of this.#cells.values()) unsubscribe()
    this.#cells.clear()
    if (this.#flush !== undefined) clearImmediate(this.#flush)
    this.#flush = undefined
    this.#flushReadings()
  }
}

/** A registered node as the judge checks readings against it. */
interface RegisteredNode {
  h3Cell: string | undefined
  /** The coarse cell of `h3Cell` (undefined when it has none), once `known`. */
  cell: string | undefined
  known: boolean
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}
