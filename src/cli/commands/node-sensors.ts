import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { isMeshworkError } from '../../core/errors.js'
import { createPeerSigner } from '../../mesh/peer-key.js'
import { loadNodeConfig } from '../../node/config.js'
import { NODE_FILES } from '../../node/identity.js'
import { DEFAULT_NODE_DIR } from '../../node/node-dir.js'
import { loadDeviceKey } from '../../sensors/device.js'
import { readMakerCertificate } from '../../sensors/maker-files.js'
import { sensorCertificatePath } from '../../sensors/node-sensors.js'
import { globalOptions } from '../context.js'
import { createOutput } from '../output.js'

/** One sensor as `meshwork node sensors` shows it. */
export interface SensorListing {
  name: string
  /** The device key's peer id (what its maker certifies). */
  device: string
  kinds: string[]
  simulated: boolean
  /** The key was made now: the node had not started with this sensor yet. */
  keyCreated: boolean
  /** Its maker's certificate: checked good, or what is wrong with it; null: none configured. */
  certificate: { file: string; maker: string; model: string } | { file: string; error: string } | null
}

/**
 * Each sensor configured in node directory `dir`, with its device key and the state of its maker
 * certificate. With `makeKeys`, a sensor's device key is made if the node has not started with it
 * yet (so that its maker can certify it); without, such a sensor is left out.
 */
export async function sensorListings(dir: string, options: { makeKeys: boolean }): Promise<SensorListing[]> {
  const config = loadNodeConfig(join(dir, NODE_FILES.config)).sensors
  const specs = [
    ...config.simulated.map((name) => ({
      name,
      kinds: ['temperature', 'humidity', 'pressure'],
      simulated: true,
    })),
    ...config.devices.map((d) => ({ name: d.name, kinds: [...d.kinds], simulated: false })),
  ]
  const keys = join(dir, 'sensors')
  const sensors: SensorListing[] = []
  for (const spec of specs) {
    const keyCreated = !existsSync(join(keys, `${spec.name}.key`))
    if (keyCreated && !options.makeKeys) continue
    const device = createPeerSigner(await loadDeviceKey(keys, spec.name)).peerId
    const file = sensorCertificatePath(dir, config, spec.name)
    let certificate: SensorListing['certificate'] = null
    if (file !== undefined) {
      try {
        const c = readMakerCertificate(file, { device, what: `sensor ${spec.name}'s certificate` })
        certificate = { file, maker: c.maker, model: c.model }
      } catch (err) {
        if (!isMeshworkError(err)) throw err
        certificate = { file, error: err.summary }
      }
    }
    sensors.push({ ...spec, device, keyCreated, certificate })
  }
  return sensors
}

/**
 * `meshwork node sensors`: each configured sensor's device key (made now if the node has not yet
 * started with it), so its maker can certify it, and the state of its certificate. Works whether
 * the node runs or not; exits 0 even when a certificate is bad (it says what is wrong, as
 * `node start` would refuse it).
 */
export function nodeSensorsCommand(node: Command): void {
  node
    .command('sensors')
    .description("show each sensor's device key (for its maker to certify) and its maker certificate")
    .option('--dir <dir>', 'node directory', DEFAULT_NODE_DIR)
    .action(async (opts: { dir: string }, cmd: Command) => {
      const out = createOutput(globalOptions(cmd))
      const dir = resolve(opts.dir)
      const sensors = await sensorListings(dir, { makeKeys: true })
      out.json({ dir, sensors })
      if (sensors.length === 0) {
        out.info(`node ${dir} has no sensors: list them under [sensors] in ${join(dir, NODE_FILES.config)}`)
        return
      }
      out.info(`sensors of node ${dir}`)
      for (const s of sensors) {
        out.info(
          `  ${s.name}  device ${s.device}${s.keyCreated ? ' (key made now)' : ''}  ${s.kinds.join(', ')}${s.simulated ? ' (simulated)' : ''}`,
        )
        const c = s.certificate
        if (c === null)
          out.info(
            `    certificate  none: only certified hardware is paid; have its maker certify ${s.device} and set [sensors.certificates] ${s.name}`,
          )
        else if ('error' in c) out.info(`    certificate  refused: ${c.error}`)
        else out.info(`    certificate  maker ${c.maker}, model "${c.model}" (${c.file})`)
      }
    })
}
