import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { cellToLatLng } from 'h3-js'
import { Gauge, type Registry } from 'prom-client'
import { systemClock } from '../core/clock.js'
import type { PeerSigner } from '../mesh/peer-key.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import type { NodeConfig } from '../node/config.js'
import { sensorCellOf } from './device.js'
import { SENSOR_DEVICE } from './reading.js'
import { type SensorCounts, SensorService, type SensorSpec } from './sensor-service.js'
import { jsonLinesSource, mqttSource, type SensorSource, simulatedSource } from './sources.js'

/**
 * The node's sensor plugin from its `[sensors]` config: simulated stations at the node's cell,
 * and named devices fed by a JSON-lines file (or stdin) and/or an MQTT broker. Undefined when the
 * node has no sensors.
 */
export function buildSensorService(init: {
  network: string
  h3Cell: string
  config: NodeConfig['sensors']
  signer: PeerSigner
  nextSeq: (type: string) => number
}): SensorService | undefined {
  const c = init.config
  if (c.simulated.length === 0 && c.devices.length === 0) return undefined
  const cell = sensorCellOf(init.h3Cell)
  const [lat, lon] = cellToLatLng(init.h3Cell)
  const everyMs = Math.round(c.simulatedEverySeconds * 1_000)
  const sensors: SensorSpec[] = [
    ...c.simulated.map((name): SensorSpec => ({ name, kinds: ['temperature', 'humidity', 'pressure'] })),
    ...c.devices,
  ]
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
