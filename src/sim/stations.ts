import { createHash } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import type { Clock, Timer } from '../core/clock.js'
import type { NetworkPort } from '../mesh/network-port.js'
import { createPeerSigner } from '../mesh/peer-key.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import { DeviceSigner, sensorCellOf } from '../sensors/device.js'
import { signMakerCertificate } from '../sensors/maker.js'
import { SENSOR_DEVICE, sensorTopic } from '../sensors/reading.js'
import { simulatedWeather } from '../sensors/weather.js'
import { seedBytes, stream } from './random.js'
import { SIM_MAKER, type World } from './world.js'

/** How often a simulated station measures (temperature, humidity and pressure each time). */
export const STATION_EVERY_MS = 5 * 60_000

/** A weather station on a simulated node: the identity that certifies it and the weather it reports. */
export interface SimStation {
  identity: number
  /** The weather it reports: its area's (the coarse cell's seed) at its place. */
  weatherSeed: number
  reports: { lat: number; lon: number }
  /**
   * A spoofer's station: no hardware (so no maker's certificate), it reports the weather of the place
   * its identity claims. A real one carries {@link SIM_MAKER}'s certificate of its device key.
   */
  fake: boolean
}

/** Who runs stations in a run. */
export interface SensorDemand {
  /** Share of honest identities with a station. */
  share: number
  /** A cohort whose identities each run a fake station reporting the weather of the place they claim. */
  spoofers?: string
}

/**
 * The weather seed of an area: sensors in one coarse cell see the same weather system (a spoofer that
 * replays an area's public weather agrees with the honest stations there).
 */
function areaSeed(cell: string): number {
  return createHash('sha256')
    .update(`sim-weather\n${sensorCellOf(cell)}`)
    .digest()
    .readUInt32BE(0)
}

/**
 * The stations of a run: each honest identity has one with probability `share` (drawn in identity
 * order, so an attacker's identities, added after the honest ones, never shift the honest draws);
 * each identity of `spoofers` runs a fake one reporting the weather of the place it claims.
 */
export function drawStations(world: World, demand: SensorDemand): SimStation[] {
  const random = stream(world.seed, 'stations')
  const out: SimStation[] = []
  for (const id of world.fleet.identities) {
    if (id.cohort === 'honest') {
      if (!random.chance(demand.share)) continue
      const machine = world.fleet.machines[id.machine]
      if (machine === undefined) continue
      out.push({
        identity: id.index,
        weatherSeed: areaSeed(id.claimed.cell),
        reports: { lat: machine.place.lat, lon: machine.place.lon },
        fake: false,
      })
    } else if (id.cohort === demand.spoofers) {
      out.push({
        identity: id.index,
        weatherSeed: areaSeed(id.claimed.cell),
        reports: { lat: id.claimed.lat, lon: id.claimed.lon },
        fake: true,
      })
    }
  }
  return out
}

/**
 * The device keys of `stations`, from the seed. Made before anything runs: their derivation is
 * asynchronous, and awaiting it while verifiers run would let real time decide the order of their
 * timers.
 */
export function stationKeys(world: World, stations: readonly SimStation[]): Promise<Ed25519PrivateKey[]> {
  return Promise.all(
    stations.map((s) => generateKeyPairFromSeed('Ed25519', seedBytes(world.seed, 'device', s.identity))),
  )
}

/**
 * Runs `station` as a node's sensor plugin does: a device key (from the seed; a real station's
 * certified by {@link SIM_MAKER}) certified by the identity's peer key for its coarse cell, and every {@link STATION_EVERY_MS} three signed readings
 * gossiped on the cell's topic, through whatever port `portOf` gives while the identity is online.
 * Returns a function that stops it.
 */
export function runStation(
  world: World,
  station: SimStation,
  key: Ed25519PrivateKey,
  clock: Clock,
  network: string,
  portOf: (identity: number) => Pick<NetworkPort, 'publish'> | undefined,
  untilMs: number,
): () => void {
  const id = world.fleet.identities[station.identity]
  if (id === undefined) throw new RangeError(`no identity ${station.identity}`)
  let seq = 0
  const cell = sensorCellOf(id.claimed.cell)
  const device = new DeviceSigner({
    network,
    key,
    kinds: ['temperature', 'humidity', 'pressure'],
    cell,
    nodeCodec: createWireCodec({
      network,
      signer: world.signerOf(station.identity),
      clock,
      types: [SENSOR_DEVICE],
      nextSeq: () => ++seq,
    }),
    clock,
    ...(station.fake
      ? {}
      : { maker: signMakerCertificate(SIM_MAKER, createPeerSigner(key).peerId, 'sim-station') }),
  })
  const weather = simulatedWeather({ seed: station.weatherSeed, ...station.reports })
  const topic = sensorTopic(network, cell)
  const genesisMs = world.protocol.genesisTime * 1000
  let timer: Timer | undefined
  const tick = (atMs: number) => {
    const port = portOf(station.identity)
    if (port !== undefined)
      for (const kind of ['temperature', 'humidity', 'pressure'] as const)
        void port
          .publish(topic, device.sign({ kind, value: weather.read(kind, atMs), at: atMs }))
          .catch(() => {
            // Lost with the port (the machine went off): a station that is off sends nothing.
          })
    const next = atMs + STATION_EVERY_MS
    if (next < untilMs) timer = clock.setTimer(next - clock.now(), () => tick(next))
  }
  // Measurements on a common grid from genesis; the first once the clock reaches genesis.
  timer = clock.setTimer(Math.max(0, genesisMs - clock.now()), () => tick(genesisMs))
  return () => timer?.cancel()
}
