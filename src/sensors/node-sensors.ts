import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { cellToLatLng } from 'h3-js'
import { Gauge, type Registry } from 'prom-client'
import { systemClock } from '../core/clock.js'
import type { PeerSigner } from '../mesh/peer-key.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import type { NodeConfig } from '../node/config.js'
import { sensorCellOf } from './device.js'
import type { MakerCertificate } from './maker.js'
import { readMakerCertificate } from './maker-files.js'
import { SENSOR_DEVICE } from './reading.js'
import { type SensorCounts, SensorService, type SensorSpec } from './sensor-service.js'
import { jsonLinesSource, mqttSource, type SensorSource, simulatedSource } from './sources.js'

/** The kinds a simulated weather station measures. */
const STATION_KINDS = ['temperature', 'humidity', 'pressure'] as const

/** The file of sensor `name`'s maker certificate (`[sensors.certificates]`), resolved against `dir`. */
export function sensorCertificatePath(
  dir: string,
  config: NodeConfig['sensors'],
  name: string,
): string | undefined {
  const path = config.certificates[name]
  if (path === undefined) return undefined
  return isAbsolute(path) ? path : join(dir, path)
}

/**
 * Reads and checks the maker's certificate of sensor `name`, if it has one (size, schema, the
 * maker's signature); InvalidArgumentError naming the file and the fix otherwise. Whether it
 * certifies the sensor's own key is checked when the key is loaded (`SensorService.start`).
 */
export function loadSensorCertificate(
  dir: string,
  config: NodeConfig['sensors'],
  name: string,
): MakerCertificate | undefined {
  const path = sensorCertificatePath(dir, config, name)
  return path === undefined ? undefined : readMakerCertificate(path, { what: `sensor ${name}'s certificate` })
}

/**
 * The node's sensor plugin from its `[sensors]` config: simulated stations at the node's cell,
 * and named devices fed by a JSON-lines file (or stdin) and/or an MQTT broker, each with its maker's
 * certificate when `[sensors.certificates]` names one (read now, relative to `dir`). Undefined when
 * the node has no sensors.
 */
export function buildSensorService(init: {
  network: string
  h3Cell: string
  /** The node's directory (certificate paths are relative to it). */
  dir: string
  config: NodeConfig['sensors']
  signer: PeerSigner
  nextSeq: (type: string) => number
}): SensorService | undefined {
  const c = init.config
  if (c.simulated.length === 0 && c.devices.length === 0) return undefined
  const cell = sensorCellOf(init.h3Cell)
  const [lat, lon] = cellToLatLng(init.h3Cell)
  const everyMs = Math.round(c.simulatedEverySeconds * 1_000)
  const withMaker = (spec: SensorSpec): SensorSpec => {
    const maker = loadSensorCertificate(init.dir, c, spec.name)
    return maker === undefined ? spec : { ...spec, maker }
  }
  const sensors: SensorSpec[] = [
    ...c.simulated.map((name): SensorSpec => ({ name, kinds: STATION_KINDS })),
    ...c.devices,
  ].map(withMaker)
  const sources: SensorSource[] = c.simulated.map((name) =>
    simulatedSource({
      sensor: name,
      // Each station its own weather, the same across restarts.
      seed: createHash('sha256').update(`${init.signer.peerId}/${name}`).digest().readUInt32BE(0),
      lat,
      lon,
      startMs: Math.ceil(Date.now() / everyMs) * everyMs,
      everyMs,
    }),
  )
  if (c.jsonLines !== '')
    sources.push(
      jsonLinesSource(c.jsonLines === '-' ? process.stdin : createReadStream(c.jsonLines), {
        name: `json-lines ${c.jsonLines}`,
      }),
    )
  if (c.mqttUrl !== '') sources.push(mqttSource({ url: c.mqttUrl, topic: c.mqttTopic }))
  return new SensorService(
    { network: init.network, cell, sensors, sources },
    {
      codec: createWireCodec({
        network: init.network,
        signer: init.signer,
        clock: systemClock,
        types: [SENSOR_DEVICE],
        nextSeq: init.nextSeq,
      }),
    },
  )
}

/** The sensor service's Prometheus metrics on a node's registry, read when scraped. */
export function registerSensorMetrics(registry: Registry, counts: () => SensorCounts): void {
  const gauge = (name: string, help: string, read: (c: SensorCounts) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(counts()))
      },
    })
  gauge('meshwork_node_sensor_readings_published', 'Sensor readings signed and gossiped', (c) => c.published)
  gauge(
    'meshwork_node_sensor_measurements_refused',
    'Measurements skipped: malformed, an unknown sensor or a kind not certified',
    (c) => c.refused,
  )
  gauge(
    'meshwork_node_sensor_readings_failed',
    'Readings that could not be gossiped (no peer on the topic, mesh down)',
    (c) => c.failed,
  )
}
