import { join } from 'node:path'
import { InvalidArgumentError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import { createPeerSigner } from '../mesh/peer-key.js'
import type { WireCodec } from '../mesh/wire-codec.js'
import type { ServiceOffer } from '../node/advertisement.js'
import type { NodeService, ServiceChallenge, ServiceContext } from '../node/service.js'
import { DeviceSigner, loadDeviceKey } from './device.js'
import type { MakerCertificate } from './maker.js'
import { type SensorKind, sensorTopic } from './reading.js'
import type { SensorSource } from './sources.js'

/** One sensor of the node: its name (as its source's measurements name it) and what it measures. */
export interface SensorSpec {
  name: string
  kinds: readonly SensorKind[]
  /**
   * The maker's certificate of the sensor's device key (checked good: `readMakerCertificate`);
   * starting fails when it certifies another key than the one in DIR/sensors/NAME.key.
   */
  maker?: MakerCertificate
}

/** Options of {@link SensorService}. */
export interface SensorServiceInit {
  network: string
  /** The coarse cell (resolution 5) the sensors are published under: `sensorCellOf(node's cell)`. */
  cell: string
  sensors: readonly SensorSpec[]
  /** Where measurements come from; each names its sensor (a name not in `sensors` is refused). */
  sources: readonly SensorSource[]
}

/** What the sensor service counts (for metrics and `node status`). */
export interface SensorCounts {
  /** Readings signed and gossiped. */
  published: number
  /** Measurements skipped: malformed at the source, an unknown sensor name, or a kind not certified. */
  refused: number
  /** Readings that could not be gossiped (no peer on the cell's topic yet, or the mesh is down). */
  failed: number
}

/**
 * The sensor plugin of a node: each configured sensor gets a device key (kept in DIR/sensors), the
 * node certifies it, and every measurement its source yields is signed by the device key and gossiped
 * on the topic of the node's coarse cell, for verifiers (who score it) and builders (who subscribe by
 * place). A source that fails is logged and restarted after a pause; it never takes the node down.
 */
export class SensorService implements NodeService {
  readonly name = 'sensor' as const
  readonly #counts = { published: 0, unknown: 0, failed: 0 }
  readonly #init: SensorServiceInit
  readonly #codec: WireCodec
  readonly #stop = new AbortController()
  readonly #loops: Promise<void>[] = []
  readonly #devices = new Map<string, DeviceSigner>()

  /** @param codec - encodes with the node's peer key and knows `SENSOR_DEVICE`. */
  constructor(init: SensorServiceInit, components: { codec: WireCodec }) {
    this.#init = init
    this.#codec = components.codec
    const names = new Set<string>()
    for (const s of init.sensors) {
      if (names.has(s.name)) throw new RangeError(`sensor ${s.name} is configured twice`)
      names.add(s.name)
    }
  }

  /** What it has done so far (the sources' own refusals included). */
  get counts(): SensorCounts {
    const sources = new Set(this.#init.sources)
    let refused = this.#counts.unknown
    for (const source of sources) refused += source.refused
    return { published: this.#counts.published, refused, failed: this.#counts.failed }
  }

  advertise(): ServiceOffer {
    return {
      name: 'sensor',
      price: '0',
      unit: 'reading',
      params: { sensors: this.#init.sensors.length, cell: this.#init.cell },
    }
  }

  /** Each sensor's device id (peer id of its key), by name, once started. */
  devices(): Map<string, string> {
    return new Map([...this.#devices].map(([name, d]) => [name, d.device]))
  }

  /** Each certified sensor's maker (its key's peer id), by name, once started. */
  makers(): Map<string, string> {
    return new Map(
      [...this.#devices].flatMap(([name, d]) => (d.maker === undefined ? [] : [[name, d.maker.maker]])),
    )
  }

  async start(context: ServiceContext): Promise<void> {
    const dir = join(context.dir, 'sensors')
    for (const spec of this.#init.sensors) {
      const key = await loadDeviceKey(dir, spec.name)
      const device = createPeerSigner(key).peerId
      if (spec.maker !== undefined && spec.maker.device !== device)
        throw new InvalidArgumentError(
          `sensor ${spec.name}'s maker certificate is for device ${spec.maker.device}, but its key (${join(dir, `${spec.name}.key`)}) is device ${device}`,
          {
            hint: `Set [sensors.certificates] ${spec.name} to the certificate of ${device}, or remove it`,
            details: { sensor: spec.name, device, certified: spec.maker.device },
          },
        )
      this.#devices.set(
        spec.name,
        new DeviceSigner({
          network: this.#init.network,
          key,
          kinds: spec.kinds,
          cell: this.#init.cell,
          nodeCodec: this.#codec,
          clock: context.clock,
          ...(spec.maker === undefined ? {} : { maker: spec.maker }),
        }),
      )
    }
    const logger = context.logger.child({ module: 'sensors' })
    for (const source of new Set(this.#init.sources)) this.#loops.push(this.#run(source, context, logger))
    logger.info(
      { sensors: [...this.devices()], makers: [...this.makers()], cell: this.#init.cell },
      'sensors started',
    )
  }

  async #run(source: SensorSource, context: ServiceContext, logger: Logger): Promise<void> {
    const signal = this.#stop.signal
    const topic = sensorTopic(this.#init.network, this.#init.cell)
    while (!signal.aborted) {
      try {
        for await (const m of source.measurements(signal)) {
          const device = this.#devices.get(m.sensor)
          if (device === undefined || !device.kinds.includes(m.kind)) {
            this.#counts.unknown++
            continue
          }
          const bytes = device.sign(m)
          context.port.publish(topic, bytes).then(
            () => this.#counts.published++,
            () => this.#counts.failed++,
          )
        }
        if (signal.aborted) return
        logger.info({ source: source.name }, 'sensor source ended')
        return
      } catch (err) {
        if (signal.aborted) return
        logger.warn({ err, source: source.name }, 'sensor source failed; restarting in 5 s')
        await context.clock.sleep(5_000, signal).catch(() => undefined)
      }
    }
  }

  async stop(): Promise<void> {
    this.#stop.abort()
    await Promise.allSettled(this.#loops)
  }

  answerChallenge(_challenge: ServiceChallenge): Promise<Record<string, unknown>> {
    return Promise.reject(new RangeError('sensors answer no challenges: verifiers judge their readings'))
  }
}
