import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readNetworkFile, writeNetworkFile } from '../../src/chain/index.js'
import { type CliProcess, runCli, startCli, startDeployedChain } from '../helpers/cli.js'

/** A loopback port for the node's ops server, spread by pid so that parallel runs do not clash. */
const OPS_PORT = 19_900 + (process.pid % 90)

describe('meshwork maker: a maker certifies a node’s sensor, and its readings name the maker', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'mw-maker-cli-'))
  let chain: CliProcess
  const started: CliProcess[] = []

  beforeAll(async () => {
    chain = await startDeployedChain(cwd)
  })
  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop('SIGKILL')))
    await chain.stop('SIGKILL')
  })

  it('makes a maker key, certifies the device key `node sensors` shows, and the node carries it', async () => {
    // The maker: a key of its own, never overwritten.
    const init = await runCli(['--json', 'maker', 'init', '--key', 'maker.key'], { cwd })
    expect(init.code, init.stderr).toBe(0)
    const maker = JSON.parse(init.stdout).maker as string
    expect(maker).toMatch(/^12D3KooW/)
    expect(statSync(join(cwd, 'maker.key')).mode & 0o777).toBe(0o600)
    const again = await runCli(['maker', 'init', '--key', 'maker.key'], { cwd })
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/maker\.key already exists.*\[INVALID_ARGUMENT\]/)

    // The operator: a node with a simulated station, whose device key it shows before the first start.
    const made = await runCli(
      [
        'node',
        'init',
        '--dir',
        'n',
        '--lat',
        '52.52',
        '--lon',
        '13.405',
        '--network',
        'network.json',
        '--api-listen',
        `127.0.0.1:${OPS_PORT}`,
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
      ],
      { cwd },
    )
    expect(made.code, made.stderr).toBe(0)
    const configPath = join(cwd, 'n', 'config.toml')
    writeFileSync(
      configPath,
      readFileSync(configPath, 'utf8')
        .replace(/^simulated = \[\]$/m, 'simulated = ["station"]')
        .replace(/^simulatedEverySeconds = 60$/m, 'simulatedEverySeconds = 1'),
    )
    const listed = await runCli(['--json', 'node', 'sensors', '--dir', 'n'], { cwd })
    expect(listed.code, listed.stderr).toBe(0)
    const [station] = JSON.parse(listed.stdout).sensors
    expect(station).toMatchObject({ name: 'station', simulated: true, keyCreated: true, certificate: null })
    const device = station.device as string
    expect(device).toMatch(/^12D3KooW/)
    const human = await runCli(['node', 'sensors', '--dir', 'n'], { cwd })
    expect(human.stdout).toContain(`station  device ${device}`)
    expect(human.stdout).toMatch(/certificate {2}none: only certified hardware is paid/)

    // Bad input is refused with a one-line error and exit 2.
    for (const [args, message] of [
      [['--device', 'nope', '--model', 'WS-2000'], /--device "nope" is not an Ed25519 peer id/],
      [['--device', device, '--model', 'x'.repeat(65)], /is not 1 to 64 printable ASCII characters/],
      [['--device', device, '--model', 'WS', '--key', 'none.key'], /maker key none\.key does not exist/],
    ] as const) {
      const r = await runCli(['maker', 'certify', ...args], { cwd })
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(message)
    }
    // The certificate, to stdout or to a file.
    const printed = await runCli(['maker', 'certify', '--device', device, '--model', 'WS-2000 rev B'], {
      cwd,
    })
    expect(printed.code, printed.stderr).toBe(0)
    expect(JSON.parse(printed.stdout)).toMatchObject({ maker, device, model: 'WS-2000 rev B' })
    // A device key written as a CID is certified in the base58 spelling the node compares with.
    const asCid = await runCli(
      [
        'maker',
        'certify',
        '--device',
        peerIdFromString(device).toCID().toString(),
        '--model',
        'WS-2000 rev B',
      ],
      { cwd },
    )
    expect(asCid.code, asCid.stderr).toBe(0)
    expect(JSON.parse(asCid.stdout)).toEqual(JSON.parse(printed.stdout))
    const certified = await runCli(
      ['--json', 'maker', 'certify', '--device', device, '--model', 'WS-2000 rev B', '-o', 'station.json'],
      { cwd },
    )
    expect(certified.code, certified.stderr).toBe(0)
    expect(JSON.parse(certified.stdout).certificate).toEqual(JSON.parse(printed.stdout))

    // Named in the node's config (relative to its directory), it is checked and shown.
    writeFileSync(
      configPath,
      `${readFileSync(configPath, 'utf8')}\n[sensors.certificates]\nstation = "../station.json"\n`,
    )
    const shown = JSON.parse((await runCli(['--json', 'node', 'sensors', '--dir', 'n'], { cwd })).stdout)
    expect(shown.sensors[0]).toMatchObject({
      device,
      keyCreated: false,
      certificate: { file: join(cwd, 'station.json'), maker, model: 'WS-2000 rev B' },
    })

    // Certified, but by a maker this chain's governance has not approved: not paid, and said so.
    const status = await runCli(['--json', 'node', 'status', '--dir', 'n'], { cwd })
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout).sensors).toEqual([{ name: 'station', device, maker, approved: false }])
    const said = await runCli(['node', 'status', '--dir', 'n'], { cwd })
    expect(said.stdout).toContain(
      `sensor     station: maker ${maker} is not approved by governance: not paid`,
    )

    // The node runs; a builder near it hears readings that name the maker.
    const node = startCli(['node', 'start', '--dir', 'n'], { cwd })
    started.push(node)
    const addr = (await node.waitFor(/listening (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+)/))[1] as string
    const network = readNetworkFile(join(cwd, 'network.json'))
    writeNetworkFile(join(cwd, 'near.json'), { ...network, bootstrap: [addr] }, { force: true })
    const stream = await runCli(
      [
        '--json',
        'stream',
        'subscribe',
        '--near',
        '52.52,13.40',
        '--radius',
        '25',
        '--count',
        '2',
        '--timeout',
        '60',
        '--network',
        'near.json',
      ],
      { cwd, timeoutMs: 90_000 },
    )
    expect(stream.code, stream.stderr).toBe(0)
    const readings = stream.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(readings).toHaveLength(2)
    for (const r of readings) expect(r).toMatchObject({ sensor: device, maker, quality: { flag: 'ok' } })
    expect(await node.stop('SIGINT')).toBe(0)
  })

  it('a node whose certificate is another device’s does not start, and says which key to certify', async () => {
    const other = await runCli(
      [
        '--json',
        'node',
        'init',
        '--dir',
        'o',
        '--h3-cell',
        '871f1d489ffffff',
        '--network',
        'network.json',
        '--api-listen',
        `127.0.0.1:${OPS_PORT + 1}`,
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
      ],
      { cwd },
    )
    expect(other.code, other.stderr).toBe(0)
    const configPath = join(cwd, 'o', 'config.toml')
    writeFileSync(
      configPath,
      `${readFileSync(configPath, 'utf8').replace(/^simulated = \[\]$/m, 'simulated = ["station"]')}\n[sensors.certificates]\nstation = "../station.json"\n`,
    )
    const device = JSON.parse((await runCli(['--json', 'node', 'sensors', '--dir', 'o'], { cwd })).stdout)
      .sensors[0].device as string
    const shown = await runCli(['node', 'sensors', '--dir', 'o'], { cwd })
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(/certificate {2}refused: .* certifies device 12D3KooW\w+, not 12D3KooW/)
    const r = await runCli(['node', 'start', '--dir', 'o'], { cwd, timeoutMs: 60_000 })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`Set [sensors.certificates] station to the certificate of ${device}`)
  })
})
