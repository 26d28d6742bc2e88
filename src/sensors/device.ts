import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import type { Clock } from '../core/clock.js'
import { InvalidArgumentError } from '../core/errors.js'
import { readSecretFile, writeSecretFile } from '../core/secret-file.js'
import { createPeerSigner, type PeerSigner } from '../mesh/peer-key.js'
import { createWireCodec, type SignedEnvelope, type WireCodec } from '../mesh/wire-codec.js'
import type { MakerCertificate } from './maker.js'
import {
  coarseCellOf,
  SENSOR_DEVICE,
  SENSOR_KINDS,
  SENSOR_READING,
  type SensorDeviceBody,
  type SensorKind,
} from './reading.js'
import type { Measurement } from './sources.js'

/**
 * A sensor's device key and what it signs: the node certifies the key (kinds, coarse cell, and the
 * maker's certificate of the device when it has one) with its own peer key, and the device key
 * signs each reading with the certificate inside. The key lives in
 * the node's directory (`sensors/NAME.key`, mode 0600), so a restarted node keeps its sensors'
 * identities and their seniority.
 */

/** How long a certificate is valid (the wire codec's longest validity). */
export const CERTIFICATE_TTL_MS = 3_600_000
/** A certificate with less than this left is renewed before the next reading. */
export const CERTIFICATE_RENEW_MS = 20 * 60_000

/** The coarse cell (resolution 5) that a node at `h3Cell` publishes its sensors under. */
export function sensorCellOf(h3Cell: string): string {
  const cell = coarseCellOf(h3Cell)
  if (cell === undefined)
    throw new InvalidArgumentError(`the node's cell ${h3Cell} is not a cell of resolution 5 or finer`, {
      hint: 'Set [node] h3Cell to a cell of resolution 5 or finer (7 is plenty)',
    })
  return cell
}

/** Loads the device key of sensor `name` from `dir`, creating it on first use. */
export async function loadDeviceKey(dir: string, name: string): Promise<Ed25519PrivateKey> {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name))
    throw new InvalidArgumentError(`sensor name ${JSON.stringify(name)} is not allowed`, {
      hint: 'Use letters, digits, _ and - (at most 64)',
    })
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const path = join(dir, `${name}.key`)
  if (existsSync(path)) {
    const key = privateKeyFromProtobuf(readSecretFile(path))
    if (key.type !== 'Ed25519')
      throw new InvalidArgumentError(`${path} is not an Ed25519 key`, {
        hint: `Remove ${path} to make a new one`,
      })
    return key
  }
  const key = await generateKeyPair('Ed25519')
  writeSecretFile(path, privateKeyToProtobuf(key))
  return key
}

/** Signs one sensor's readings, renewing the node's certificate of it as it nears its expiry. */
export class DeviceSigner {
  readonly device: string
  readonly kinds: readonly SensorKind[]
  readonly cell: string
  /** The maker's certificate of this device, carried in every node certificate; undefined: none. */
  readonly maker: MakerCertificate | undefined
  readonly #network: string
  readonly #nodeCodec: WireCodec
  readonly #deviceCodec: WireCodec
  readonly #clock: Pick<Clock, 'now'>
  #certificate: SignedEnvelope<SensorDeviceBody> | undefined

  /**
   * @param init.nodeCodec - encodes with the node's peer key and knows `SENSOR_DEVICE`.
   * @param init.key - the sensor's device key.
   * @param init.maker - the maker's certificate of that key (a RangeError if it is another key's).
   */
  constructor(init: {
    network: string
    key: Ed25519PrivateKey
    kinds: readonly SensorKind[]
    cell: string
    nodeCodec: WireCodec
    clock: Pick<Clock, 'now'>
    maker?: MakerCertificate
  }) {
    const signer: PeerSigner = createPeerSigner(init.key)
    this.device = signer.peerId
    if (init.maker !== undefined && init.maker.device !== this.device)
      throw new RangeError(`the maker's certificate is for device ${init.maker.device}, not ${this.device}`)
    this.maker = init.maker
    this.kinds = [...init.kinds]
    this.cell = init.cell
    this.#network = init.network
    this.#nodeCodec = init.nodeCodec
    this.#clock = init.clock
    // Sequence numbers from the clock: strictly increasing across restarts without a database
    // (as a device signing for itself would do), so verifiers never take a new reading for a replay.
    let last = 0
    this.#deviceCodec = createWireCodec({
      network: init.network,
      signer,
      clock: init.clock,
      types: [SENSOR_READING],
      nextSeq: () => {
        last = Math.max(last + 1, init.clock.now())
        return last
      },
    })
  }

  /** The current certificate, renewed when it has less than {@link CERTIFICATE_RENEW_MS} left. */
  certificate(): SignedEnvelope<SensorDeviceBody> {
    const now = this.#clock.now()
    if (this.#certificate === undefined || this.#certificate.exp - now < CERTIFICATE_RENEW_MS) {
      const { bytes } = this.#nodeCodec.encode(
        SENSOR_DEVICE,
        {
          device: this.device,
          kinds: [...this.kinds],
          cell: this.cell,
          ...(this.maker === undefined ? {} : { maker: this.maker }),
        },
        { ttlMs: CERTIFICATE_TTL_MS },
      )
      this.#certificate = JSON.parse(new TextDecoder().decode(bytes)) as SignedEnvelope<SensorDeviceBody>
    }
    return this.#certificate
  }

  /** Signs a measurement as a `sensor/reading` (valid for a minute). */
  sign(m: Pick<Measurement, 'kind' | 'value' | 'at'>): Uint8Array {
    if (!this.kinds.includes(m.kind)) throw new RangeError(`this sensor is not certified for ${m.kind}`)
    return this.#deviceCodec.encode(
      SENSOR_READING,
      {
        kind: m.kind,
        value: m.value,
        unit: SENSOR_KINDS[m.kind].unit,
        at: m.at,
        cell: this.cell,
        device: this.certificate(),
      },
      { ttlMs: 60_000 },
    ).bytes
  }

  /** The network the readings are for. */
  get network(): string {
    return this.#network
  }
}
