import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { systemClock } from '../core/clock.js'
import { createLogger } from '../core/logger.js'
import { createPeerSigner } from '../mesh/peer-key.js'
import { loadNodeConfig, renderNodeConfig } from '../node/config.js'
import type { ServiceContext } from '../node/service.js'
import { loadDeviceKey } from './device.js'
import { signMakerCertificate } from './maker.js'
import { writeMakerCertificate } from './maker-files.js'
import { buildSensorService } from './node-sensors.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const H3_CELL = '871f1d489ffffff'

/** A node directory whose config runs a simulated station `station`, with `edit` applied to the config. */
function nodeDir(edit: (text: string) => string = (t) => t, env: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mw-node-sensors-'))
  dirs.push(dir)
  const text = renderNodeConfig({
    h3Cell: H3_CELL,
    tier: 'edge',
    payoutAddress: '',
    mdns: false,
    apiListen: '127.0.0.1:9464',
    listen: ['/ip4/127.0.0.1/tcp/0'],
  }).replace(/^simulated = \[\]$/m, 'simulated = ["station"]')
  writeFileSync(join(dir, 'config.toml'), edit(text))
  return { dir, load: () => loadNodeConfig(join(dir, 'config.toml'), env) }
}

const withCertificate = (path: string) => (t: string) =>
  `${t}\n[sensors.certificates]\nstation = ${JSON.stringify(path)}\n`

async function build(dir: string, config: ReturnType<ReturnType<typeof nodeDir>['load']>) {
  return buildSensorService({
    network: 'n',
    h3Cell: H3_CELL,
    dir,
    config: config.sensors,
    signer: createPeerSigner(await generateKeyPair('Ed25519')),
    nextSeq: () => 1,
  })
}

function context(dir: string): ServiceContext {
  return {
    port: { publish: async () => undefined } as unknown as ServiceContext['port'],
    clock: systemClock,
    logger: createLogger({ level: 'silent' }),
    dir,
  }
}

describe("node sensors: a maker's certificate per sensor", () => {
  it('carries the certificate named in [sensors.certificates] (relative to the node directory) in every node certificate', async () => {
    const { dir, load } = nodeDir(withCertificate('certs/station.json'))
    const maker = createPeerSigner(await generateKeyPair('Ed25519'))
    // The device key the node will use, made first (as `meshwork node sensors` does) and certified.
    const device = createPeerSigner(await loadDeviceKey(join(dir, 'sensors'), 'station')).peerId
    mkdirSync(join(dir, 'certs'))
    writeMakerCertificate(join(dir, 'certs', 'station.json'), signMakerCertificate(maker, device, 'WS-2000'))
    const service = await build(dir, load())
    await service?.start(context(dir))
    try {
      expect(service?.devices()).toEqual(new Map([['station', device]]))
      expect(service?.makers()).toEqual(new Map([['station', maker.peerId]]))
    } finally {
      await service?.stop()
    }
  })

  it('refuses to start with a certificate of another device key, naming the key to certify', async () => {
    const { dir, load } = nodeDir(withCertificate('station.json'))
    const maker = createPeerSigner(await generateKeyPair('Ed25519'))
    const other = createPeerSigner(await generateKeyPair('Ed25519')).peerId
    writeMakerCertificate(join(dir, 'station.json'), signMakerCertificate(maker, other, 'WS-2000'))
    const service = await build(dir, load())
    const started = service?.start(context(dir))
    await expect(started).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(
        /sensor station's maker certificate is for device .* but its key .* is device/,
      ),
      hint: expect.stringMatching(/Set \[sensors\.certificates\] station to the certificate of 12D3KooW/),
    })
    await service?.stop()
  })

  it('refuses a missing or forged certificate file at start, naming the sensor and the file', async () => {
    const missing = nodeDir(withCertificate('nowhere.json'))
    await expect(build(missing.dir, missing.load())).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining(`sensor station's certificate ${join(missing.dir, 'nowhere.json')}`),
    })
    const forged = nodeDir(withCertificate('station.json'))
    const maker = createPeerSigner(await generateKeyPair('Ed25519'))
    const device = createPeerSigner(await loadDeviceKey(join(forged.dir, 'sensors'), 'station')).peerId
    writeMakerCertificate(join(forged.dir, 'station.json'), {
      ...signMakerCertificate(maker, device, 'WS-2000'),
      model: 'WS-9000',
    })
    await expect(build(forged.dir, forged.load())).rejects.toThrow(/does not carry its maker's signature/)
  })

  it('refuses a certificate for a sensor the config does not list, and takes certificates from the environment', async () => {
    const { load } = nodeDir((t) => `${t}\n[sensors.certificates]\nporch = "porch.json"\n`)
    expect(load).toThrow(/sensors: a certificate names no configured sensor/)
    const fromEnv = nodeDir(undefined, {
      MESHWORK_SENSORS__CERTIFICATES: '{ station = "/etc/station.json" }',
    })
    expect(fromEnv.load().sensors.certificates).toEqual({ station: '/etc/station.json' })
    expect(nodeDir().load().sensors.certificates).toEqual({})
  })
})
