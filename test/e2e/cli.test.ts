import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { type AddressInfo, createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { tinyClassifierModel, tinyClassifierReference } from '../../src/compute/tiny-model.js'
import { type CliProcess, runCli, startCli } from '../helpers/cli.js'
import { until } from '../helpers/live-node.js'

const running: CliProcess[] = []
function background(args: string[], cwd?: string) {
  const p = startCli(args, cwd ? { cwd } : {})
  running.push(p)
  return p
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')))
})

/** Whether anything still accepts connections on the port. */
function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

const oneLine = (stderr: string) => stderr.trim().split('\n')

describe('meshwork CLI: bad input gets one line that names the fix', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'mw-cli-'))

  it('a missing network file', async () => {
    const r = await runCli(['chain', 'info'], { cwd })
    expect(r.code).toBe(1)
    expect(oneLine(r.stderr)).toEqual([
      expect.stringMatching(
        /network file network\.json does not exist.*meshwork deploy.*\[NETWORK_FILE_MISSING\]$/,
      ),
    ])
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/)
  })

  it('a malformed network file, with the stack only under --verbose', async () => {
    writeFileSync(join(cwd, 'bad.json'), '{"version": 1, "chainId": "x"}')
    const r = await runCli(['chain', 'info', '--network', 'bad.json'], { cwd })
    expect(r.code).toBe(1)
    expect(oneLine(r.stderr)).toHaveLength(1)
    expect(r.stderr).toContain('[NETWORK_FILE_INVALID]')
    const v = await runCli(['chain', 'info', '--network', 'bad.json', '--verbose'], { cwd })
    expect(v.stderr).toMatch(/\bat .*network-file\.js:\d+/)
  })

  it('an unreachable RPC URL, also as JSON for scripts', async () => {
    const r = await runCli(['deploy', '--rpc', 'http://127.0.0.1:9', '--out', 'n.json'], { cwd })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      /cannot reach the chain at http:\/\/127\.0\.0\.1:9\. Start it with `meshwork chain start`.*\[RPC_UNREACHABLE\]/,
    )
    const j = await runCli(['--json', 'deploy', '--rpc', 'http://127.0.0.1:9', '--out', 'n.json'], { cwd })
    expect(JSON.parse(j.stdout)).toMatchObject({
      error: { code: 'RPC_UNREACHABLE', hint: expect.any(String) },
    })
  })

  it('bad flags are usage errors (exit 2)', async () => {
    expect((await runCli(['chain', 'start', '--port', '99999'], { cwd })).code).toBe(2)
    expect((await runCli(['deploy', '--rpc', 'ftp://x'], { cwd })).stderr).toContain(
      '--rpc must be an http:// or https:// URL',
    )
    expect((await runCli(['frobnicate'], { cwd })).code).toBe(2)
    // With --json the usage error is JSON on stdout, and nothing else is printed.
    const j = await runCli(['--json', 'frobnicate'], { cwd })
    expect(j.code).toBe(2)
    expect(j.stderr).toBe('')
    expect(JSON.parse(j.stdout)).toMatchObject({
      error: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('frobnicate') },
    })
  })
})

describe('meshwork verifier and rewards: bad input', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'mw-cli-verifier-'))

  it('init refuses a directory that holds an identity; start and register need one', async () => {
    const init = await runCli(['verifier', 'init', '--dir', 'v', '--json'], { cwd })
    expect(init.code, init.stderr).toBe(0)
    const created = JSON.parse(init.stdout)
    expect(created.peerId).toMatch(/^12D3KooW/)
    expect(created.address).toMatch(/^0x[0-9a-fA-F]{40}$/)
    expect(readFileSync(join(cwd, 'v', 'config.toml'), 'utf8')).toContain('challengesPerEpoch = 4')
    const again = await runCli(['verifier', 'init', '--dir', 'v'], { cwd })
    expect(again.code).toBe(2)
    expect(oneLine(again.stderr)).toEqual([
      expect.stringMatching(/already holds an identity.*verifier start/),
    ])
    const start = await runCli(['verifier', 'start', '--dir', 'nowhere'], { cwd })
    expect(start.code).toBe(2)
    expect(oneLine(start.stderr)).toEqual([expect.stringMatching(/does not exist.*meshwork verifier init/)])
    // The directory exists but has no network file yet.
    const register = await runCli(['verifier', 'register', '--dir', 'v', '--stake', '100000'], { cwd })
    expect(register.code).toBe(1)
    expect(register.stderr).toContain('[NETWORK_FILE_MISSING]')
  })

  it('a bad config value names the key; bad flags are usage errors', async () => {
    await runCli(['verifier', 'init', '--dir', 'w'], { cwd })
    const r = await runCli(['verifier', 'start', '--dir', 'w'], {
      cwd,
      env: { MESHWORK_VERIFIER__CHALLENGES_PER_EPOCH: '0' },
    })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/verifier\.challengesPerEpoch/)
    expect((await runCli(['rewards', 'verify'], { cwd })).code).toBe(2)
    const epoch = await runCli(['rewards', 'verify', '--epoch', 'soon'], { cwd })
    expect(epoch.code).toBe(2)
    expect(epoch.stderr).toContain('--epoch must be a whole number')
    const address = await runCli(['rewards', 'show', '--address', '0x12'], { cwd })
    expect(address.code).toBe(2)
  })
})

describe('meshwork chain start + deploy + chain info', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'mw-cli-'))
  let chain: CliProcess
  let url: string

  beforeAll(async () => {
    chain = startCli(['chain', 'start', '--port', '0', '--state', 'chain'], { cwd })
    url = (await chain.waitFor(/listening: (http:\/\/127\.0\.0\.1:\d+)/))[1] as string
  })
  afterAll(async () => {
    await chain.stop('SIGKILL')
  })

  it('deploys, refuses to overwrite the network file without --force, and reads it back', async () => {
    const r = await runCli(['deploy', '--rpc', url, '--out', 'network.json'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/\[1\/9\] deploy MeshToken/)
    const network = JSON.parse(readFileSync(join(cwd, 'network.json'), 'utf8'))
    expect(network).toMatchObject({
      chainId: 31337,
      rpcUrl: url,
      contracts: { MeshToken: expect.stringMatching(/^0x/) },
    })

    const again = await runCli(['deploy', '--rpc', url, '--out', 'network.json'], { cwd })
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('already exists. Pass --force to replace it')
    expect(JSON.parse(readFileSync(join(cwd, 'network.json'), 'utf8'))).toEqual(network)

    const info = await runCli(['--json', 'chain', 'info'], { cwd })
    expect(info.code, info.stderr).toBe(0)
    expect(JSON.parse(info.stdout)).toMatchObject({
      chainId: 31337,
      contracts: network.contracts,
      totalSupply: String(400_000_000n * 10n ** 18n),
      quorum: 2,
    })
  })

  it('refuses a chain whose id differs from the network file', async () => {
    const other = background(['chain', 'start', '--port', '0', '--chain-id', '1337'], cwd)
    const otherUrl = (await other.waitFor(/listening: (http:\/\/127\.0\.0\.1:\d+)/))[1] as string
    const r = await runCli(['chain', 'info', '--rpc', otherUrl], { cwd })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/chain id 1337, the network file says 31337.*\[CHAIN_ID_MISMATCH\]/)
  })

  it('loses nothing acknowledged when the chain is killed -9 and restarted from --state', async () => {
    await chain.stop('SIGKILL')
    chain = startCli(['chain', 'start', '--port', '0', '--state', 'chain'], { cwd })
    const resumedUrl = (await chain.waitFor(/listening: (http:\/\/127\.0\.0\.1:\d+)/))[1] as string
    await chain.waitFor(/Resumed from chain at block \d+/)
    const info = await runCli(['--json', 'chain', 'info', '--rpc', resumedUrl], { cwd })
    expect(info.code, info.stderr).toBe(0)
    expect(JSON.parse(info.stdout).totalSupply).toBe(String(400_000_000n * 10n ** 18n))
  })
})

describe('meshwork devnet', () => {
  /** Processes still running a member of the devnet in `dir`. */
  const membersRunning = (dir: string) =>
    execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes('meshwork.js') && line.includes(`${dir}/`) && line.includes(' start '))

  it('runs nodes and verifiers that close epochs and serve jobs, and stops everything on Ctrl-C with its port freed', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'mw-devnet-'))
    const args = [
      'devnet',
      '--port',
      '0',
      '--chain-port',
      '0',
      // The demo builder and its claims are the dashboard test's; this one runs its own jobs.
      '--no-demo',
      '--dir',
      'net',
      '--nodes',
      '2',
      '--verifiers',
      '3',
      '--epoch-seconds',
      '4',
    ]
    const devnet = background(args, cwd)
    const url = (
      await devnet.waitFor(/Meshwork devnet ready: (http:\/\/127\.0\.0\.1:(\d+))/, 90_000)
    )[1] as string
    const port = Number(new URL(url).port)
    // The devnet's hardware maker, approved at deploy, certifies every node's station.
    const maker = (await devnet.waitFor(/maker {6}(12D3KooW\w+) \(net\/maker\.key\)/))[1] as string
    const info = await runCli(['--json', 'chain', 'info', '--network', 'net/network.json'], { cwd })
    expect(info.code, info.stderr).toBe(0)
    const first = JSON.parse(info.stdout)
    expect(first.contracts.EpochRewards).toMatch(/^0x/)
    expect(membersRunning(join(cwd, 'net'))).toHaveLength(5)
    // Rewards flow: an epoch closes with something earned, and anyone recomputes its root.
    const closed = await devnet.waitFor(
      /epoch (\d+) closed: root 0x[0-9a-f]+… posted, [1-9][\d.]* MESH earned/,
      90_000,
    )
    const verify = await runCli(
      ['--json', 'rewards', 'verify', '--epoch', closed[1] as string, '--network', 'net/network.json'],
      { cwd, timeoutMs: 60_000 },
    )
    expect(verify.code, verify.stderr).toBe(0)
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, epoch: Number(closed[1]) })
    // A builder runs a job on the devnet's nodes: placed, run in a sandbox, signed, and (a new node) re-run on the other node to check it.
    writeFileSync(join(cwd, 'square.js'), '(xs) => xs.map((x) => x * x)\n')
    // The nodes charge: without an account to pay with, the builder is told how to get one.
    const unpaid = await runCli(
      ['job', 'run', 'square.js', '--input', '[2]', '--network', 'net/network.json'],
      {
        cwd,
        timeoutMs: 60_000,
      },
    )
    expect(unpaid.code, unpaid.stderr).toBe(1)
    expect(unpaid.stderr).toMatch(/nodes charge for jobs\. .*--key FILE.*\[PAYMENT_REQUIRED\]/)
    const job = await runCli(
      [
        '--json',
        'job',
        'run',
        'square.js',
        '--input',
        '[2,3]',
        '--network',
        'net/network.json',
        '--tier',
        'edge',
        '--key',
        'net/builder.key',
      ],
      { cwd, timeoutMs: 60_000 },
    )
    expect(job.code, job.stderr).toBe(0)
    // Both nodes ran it (the second to check it) and both were paid their price by voucher.
    const ran = JSON.parse(job.stdout)
    expect(ran).toMatchObject({ value: [4, 9], tier: 'edge', verification: 'verified' })
    expect(BigInt(ran.paid)).toBe(2n * BigInt(ran.price))
    // Inference: an ONNX model runs on the nodes' CPU, checked by a second node like any job.
    writeFileSync(join(cwd, 'classifier.onnx'), tinyClassifierModel())
    const inference = await runCli(
      [
        '--json',
        'job',
        'run',
        'classifier.onnx',
        '--input',
        JSON.stringify({ x: { type: 'float32', dims: [1, 4], data: [0.5, -1, 2, 0.25] } }),
        '--network',
        'net/network.json',
        '--key',
        'net/builder.key',
      ],
      { cwd, timeoutMs: 60_000 },
    )
    expect(inference.code, inference.stderr).toBe(0)
    const probs = JSON.parse(inference.stdout).value.probs
    expect(probs.dims).toEqual([1, 3])
    expect(probs.data[0]).toBeCloseTo(tinyClassifierReference([0.5, -1, 2, 0.25])[0] as number, 5)
    // A file stored on the devnet's two nodes (a copy on each: 1-of-2) comes back identical; a wrong
    // key gets a one-line error and no file.
    const notes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff))
    writeFileSync(join(cwd, 'notes.bin'), notes)
    const put = await runCli(
      ['--json', 'put', 'notes.bin', '--redundancy', '1/2', '--network', 'net/network.json'],
      { cwd, timeoutMs: 60_000 },
    )
    expect(put.code, put.stderr).toBe(0)
    const stored = JSON.parse(put.stdout) as { id: string; key: string; holders: string[] }
    expect(new Set(stored.holders).size).toBe(2)
    // The API shows the shard on each holder, from the receipt the holder gossiped for the verifiers.
    const shardsOf = async () =>
      (
        (await (await fetch(`${url}/api/nodes`)).json()) as {
          nodes: { peerId: string; storage?: { shards: number; bytes: number } }[]
        }
      ).nodes
    await until(
      async () =>
        (await shardsOf()).every((n) => stored.holders.includes(n.peerId) && n.storage?.shards === 1),
      10_000,
      200,
    )
    // 1-of-2: each shard is a whole sealed copy.
    for (const n of await shardsOf()) expect(n.storage?.bytes).toBeGreaterThanOrEqual(notes.length)
    const got = await runCli(
      ['get', stored.id, '--key', stored.key, '-o', 'back.bin', '--network', 'net/network.json'],
      { cwd, timeoutMs: 60_000 },
    )
    expect(got.code, got.stderr).toBe(0)
    expect(readFileSync(join(cwd, 'back.bin')).equals(notes)).toBe(true)
    const wrongKey = `mwk1.${Buffer.alloc(48, 7).toString('base64url')}`
    const refused = await runCli(
      ['get', stored.id, '--key', wrongKey, '-o', 'wrong.bin', '--network', 'net/network.json'],
      { cwd, timeoutMs: 60_000 },
    )
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/does not open this file.*\[STORAGE_KEY_INVALID\]/)
    expect(existsSync(join(cwd, 'wrong.bin')) || existsSync(join(cwd, 'wrong.bin.partial'))).toBe(false)
    // The put kept its leases: a settlement challenges both holders (free ones: nothing to pay).
    const rent = await runCli(['--json', 'rent', '--network', 'net/network.json'], { cwd, timeoutMs: 60_000 })
    expect(rent.code, rent.stderr).toBe(0)
    expect(JSON.parse(rent.stdout)).toMatchObject({ proven: 2, paid: '0', active: 2, void: 0, voided: [] })
    const noLeases = await runCli(['rent', '--leases', 'none.db', '--network', 'net/network.json'], { cwd })
    expect(noLeases.code).toBe(2)
    expect(noLeases.stderr).toMatch(/no leases at none\.db.*meshwork put/)

    // Each node runs a simulated weather station: a builder near Berlin (node-0) gets its signed
    // readings as JSON lines, each with the sensor, the node and maker that certified it and a
    // quality flag.
    const stream = await runCli(
      [
        '--json',
        'stream',
        'subscribe',
        '--near',
        '52.5,13.4',
        '--radius',
        '30',
        '--count',
        '3',
        '--timeout',
        '40',
        '--network',
        'net/network.json',
      ],
      { cwd, timeoutMs: 60_000 },
    )
    expect(stream.code, stream.stderr).toBe(0)
    const readings = stream.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(readings).toHaveLength(3)
    for (const r of readings) {
      expect(r).toMatchObject({
        kind: expect.stringMatching(/^(temperature|humidity|pressure)$/),
        quality: { flag: 'ok' },
      })
      expect(r.distanceKm).toBeLessThan(40)
      expect(r.node).toMatch(/^12D3KooW/)
      expect(r.maker).toBe(maker)
    }
    // The operator's status says whose hardware its station is, and that governance approves it.
    const status = await runCli(['--json', 'node', 'status', '--dir', 'net/nodes/node-0'], { cwd })
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout).sensors).toEqual([
      expect.objectContaining({ maker, approved: true, device: expect.stringMatching(/^12D3KooW/) }),
    ])
    const said = await runCli(['node', 'status', '--dir', 'net/nodes/node-0'], { cwd })
    expect(said.stdout).toMatch(new RegExp(`sensor {5}\\S+: maker ${maker}, approved`))
    // The devnet's API serves the same readings, latest per sensor and kind, nearest first.
    let latest: {
      readings: { sensor: string; kind: string; quality: { flag: string }; distanceKm: number }[]
    } = {
      readings: [],
    }
    for (let i = 0; i < 40 && latest.readings.length === 0; i++) {
      latest = (await (
        await fetch(`${url}/api/sensors/latest?near=52.5,13.4&radius=50`)
      ).json()) as typeof latest
      if (latest.readings.length === 0) await new Promise((resolve) => setTimeout(resolve, 500))
    }
    expect(latest.readings.length).toBeGreaterThan(0)
    expect(latest.readings[0]).toMatchObject({ quality: { flag: 'ok' }, sensor: readings[0].sensor, maker })
    // Certified hardware is paid: a posted epoch's judgement pays the station.
    const paid = async () =>
      (
        (await (await fetch(`${url}/api/sensors/latest?near=52.5,13.4&radius=50`)).json()) as {
          readings: { score: { paid: boolean } | null }[]
        }
      ).readings.some((r) => r.score?.paid === true)
    await until(paid, 60_000, 500)
    expect((await fetch(`${url}/api/sensors/latest?kind=wind`)).status).toBe(400)

    writeFileSync(join(cwd, 'loop.js'), '() => { for (;;) {} }\n')
    const loop = await runCli(
      [
        'job',
        'run',
        'loop.js',
        '--network',
        'net/network.json',
        '--time-ms',
        '6000',
        '--key',
        'net/builder.key',
      ],
      {
        cwd,
        timeoutMs: 60_000,
      },
    )
    expect(loop.code).toBe(1)
    // A long job shows that it is still running, then why it stopped.
    expect(loop.stderr).toMatch(/running on 12D3KooW\w+ \(5 s\)/)
    expect(loop.stderr).toMatch(/ran past its limit of 6000 ms \[JOB_TIMEOUT\]/)

    expect(await devnet.stop('SIGINT')).toBe(0)
    expect(await portOpen(port)).toBe(false)
    expect(membersRunning(join(cwd, 'net'))).toEqual([])

    // --resume continues with the same contracts and members.
    const resumed = background([...args, '--resume'], cwd)
    await resumed.waitFor(/Meshwork devnet ready/, 90_000)
    // The same maker (its key kept in the devnet's directory).
    expect((await resumed.waitFor(/maker {6}(12D3KooW\w+)/))[1]).toBe(maker)
    const again = await runCli(['--json', 'chain', 'info', '--network', 'net/network.json'], { cwd })
    expect(JSON.parse(again.stdout).contracts).toEqual(first.contracts)
    expect(membersRunning(join(cwd, 'net'))).toHaveLength(5)
    // Killed with SIGKILL, the devnet cannot stop its members: they notice and stop themselves.
    await resumed.stop('SIGKILL')
    await until(() => membersRunning(join(cwd, 'net')).length === 0, 15_000, 200)
  }, 240_000)

  it('refuses a port in use and a non-empty directory that is not a devnet’s, before starting anything', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'mw-devnet-refuse-'))
    const busy = createServer()
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()))
    try {
      const port = String((busy.address() as AddressInfo).port)
      const inUse = await runCli(['devnet', '--port', port, '--chain-port', '0', '--dir', 'net'], { cwd })
      expect(inUse.code).toBe(2)
      expect(inUse.stderr).toMatch(
        new RegExp(`port ${port} \\(--port\\) is already in use.*\\[INVALID_ARGUMENT\\]`),
      )
      expect(inUse.stderr.trim().split('\n')).toHaveLength(1)
      const chainInUse = await runCli(['devnet', '--port', '0', '--chain-port', port, '--dir', 'net'], {
        cwd,
      })
      expect(chainInUse.code).toBe(2)
      expect(chainInUse.stderr).toContain(`port ${port} (--chain-port) is already in use`)
    } finally {
      busy.close()
    }
    mkdirSync(join(cwd, 'photos'))
    writeFileSync(join(cwd, 'photos', 'cat.jpg'), 'not a devnet')
    const foreign = await runCli(['devnet', '--port', '0', '--chain-port', '0', '--dir', 'photos'], { cwd })
    expect(foreign.code).toBe(2)
    expect(foreign.stderr).toMatch(
      /--dir photos is not empty and is not a devnet's directory.*\[INVALID_ARGUMENT\]/,
    )
    expect(readFileSync(join(cwd, 'photos', 'cat.jpg'), 'utf8')).toBe('not a devnet')
  })

  it('refuses a bad member count', async () => {
    const r = await runCli(['devnet', '--nodes', 'many'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--nodes must be a whole number from 0 to 50')
  })
})

describe('meshwork stream subscribe: bad input', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'mw-cli-stream-'))

  it('names the bad place, radius or kind in one line, before joining any network (exit 2)', async () => {
    const near = await runCli(['stream', 'subscribe', '--near', '52.5;13.4'], { cwd })
    expect(near.code).toBe(2)
    expect(oneLine(near.stderr)).toEqual([
      expect.stringMatching(/--near must be LAT,LON.*--near 52\.52,13\.40/),
    ])
    const radius = await runCli(['stream', 'subscribe', '--near', '52.5,13.4', '--radius', '500'], { cwd })
    expect(radius.code).toBe(2)
    expect(radius.stderr).toContain('--radius must be in (0, 100] km')
    const kind = await runCli(['--json', 'stream', 'subscribe', '--near', '52.5,13.4', '--kind', 'wind'], {
      cwd,
    })
    expect(kind.code).toBe(2)
    expect(JSON.parse(kind.stdout)).toMatchObject({
      error: { code: 'INVALID_ARGUMENT', hint: expect.stringContaining('temperature') },
    })
  })
})
