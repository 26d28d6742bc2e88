import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadNodeConfig } from './config.js'
import { initNodeDir, loadNodeIdentity, NODE_FILES } from './identity.js'

const dir = () => join(mkdtempSync(join(tmpdir(), 'mw-node-')), 'node')
const CELL = '871f1d489ffffff'

describe('node directory', () => {
  it('creates an identity with owner-only key files, a valid commented config and a database', async () => {
    const d = dir()
    const made = await initNodeDir({ dir: d, h3Cell: CELL })
    for (const f of [NODE_FILES.peerKey, NODE_FILES.operatorKey])
      expect(statSync(join(d, f)).mode & 0o777).toBe(0o600)
    const text = readFileSync(join(d, NODE_FILES.config), 'utf8')
    expect(text).toMatch(/^# Meshwork node configuration/)
    expect(loadNodeConfig(join(d, NODE_FILES.config), {}).node).toEqual({
      h3Cell: CELL,
      tier: 'edge',
      payoutAddress: '',
    })
    // A restart reads back the same peer id and operator.
    const loaded = loadNodeIdentity(d)
    expect(loaded.peerId).toBe(made.peerId)
    expect(loaded.operatorAddress).toBe(made.operatorAddress)
    expect(made.peerId).toMatch(/^12D3KooW/)
  })

  it('never overwrites an identity, and pays out to a given address without creating a key', async () => {
    const d = dir()
    await initNodeDir({ dir: d, h3Cell: CELL })
    await expect(initNodeDir({ dir: d, h3Cell: CELL })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    const cold = dir()
    const payout = '0x000000000000000000000000000000000000dEaD'
    const made = await initNodeDir({ dir: cold, h3Cell: CELL, payoutAddress: payout })
    expect(made.operatorKey).toBeUndefined()
    expect(loadNodeIdentity(cold, payout).operatorAddress).toBe(payout)
  })

  it('refuses key files others can read, and keys that are not keys', async () => {
    const d = dir()
    await initNodeDir({ dir: d, h3Cell: CELL })
    chmodSync(join(d, NODE_FILES.peerKey), 0o644)
    expect(() => loadNodeIdentity(d)).toThrow(
      expect.objectContaining({ hint: expect.stringContaining('chmod 600') }),
    )
    chmodSync(join(d, NODE_FILES.peerKey), 0o600)
    writeFileSync(join(d, NODE_FILES.operatorKey), 'nope\n', { mode: 0o600 })
    expect(() => loadNodeIdentity(d)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
  })
})

describe('node config', () => {
  it('applies MESHWORK_SECTION__KEY overrides and names the bad key', async () => {
    const d = dir()
    await initNodeDir({ dir: d, h3Cell: CELL })
    const path = join(d, NODE_FILES.config)
    const config = loadNodeConfig(path, { MESHWORK_ADS__REFRESH_SECONDS: '30', MESHWORK_MESH__MDNS: 'true' })
    expect(config.ads.refreshSeconds).toBe(30)
    expect(config.mesh.mdns).toBe(true)
    expect(Object.isFrozen(config.ads)).toBe(true)
    expect(() => loadNodeConfig(path, { MESHWORK_NODE__H3_CELL: 'not-a-cell' })).toThrow(
      /node\.h3Cell: not a valid H3 cell/,
    )
    expect(() => loadNodeConfig(path, { MESHWORK_ADS__REFRESH_SECONDS: '1' })).toThrow(/ads\.refreshSeconds/)
    writeFileSync(path, '[node\nh3Cell=')
    expect(() => loadNodeConfig(path, {})).toThrow(/not valid TOML/)
  })

  it('reads the [sensors] section: stations, named devices with their source, and names the mistakes', async () => {
    const d = dir()
    await initNodeDir({ dir: d, h3Cell: CELL })
    const path = join(d, NODE_FILES.config)
    const written = readFileSync(path, 'utf8')
    // The default config has no sensors.
    expect(loadNodeConfig(path, {}).sensors).toMatchObject({ simulated: [], devices: [], mqttUrl: '' })
    const withSensors = (section: string) =>
      writeFileSync(path, written.replace(/\[sensors\][\s\S]*?(?=\n\[api\])/, section))
    withSensors(
      '[sensors]\nsimulated = ["roof"]\nmqttUrl = "mqtt://127.0.0.1:1883"\n[[sensors.devices]]\nname = "porch"\nkinds = ["temperature", "humidity"]\n',
    )
    expect(loadNodeConfig(path, {}).sensors).toMatchObject({
      simulated: ['roof'],
      devices: [{ name: 'porch', kinds: ['temperature', 'humidity'] }],
      mqttTopic: 'meshwork/sensors/+',
    })
    withSensors('[sensors]\n[[sensors.devices]]\nname = "porch"\nkinds = ["temperature"]\n')
    expect(() => loadNodeConfig(path, {})).toThrow(/devices need a source: set jsonLines or mqttUrl/)
    withSensors('[sensors]\nsimulated = ["a", "a"]\n')
    expect(() => loadNodeConfig(path, {})).toThrow(/a sensor name is used twice/)
    withSensors('[sensors]\nsimulated = ["no spaces"]\n')
    expect(() => loadNodeConfig(path, {})).toThrow(/sensors\.simulated/)
    withSensors('[sensors]\nmqttUrl = "http://x"\n')
    expect(() => loadNodeConfig(path, {})).toThrow(/an mqtt:\/\/ \(or mqtts, ws, wss\) URL/)
  })
})
