import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createChainClient, devAccounts, readNetworkFile, transferTokens } from '../../src/chain/index.js'
import { runJob } from '../../src/compute/job-protocol.js'
import { parseJobSpec } from '../../src/compute/job-spec.js'
import { createPeerVerifier } from '../../src/mesh/peer-key.js'
import { networkIdOf } from '../../src/mesh/wire-codec.js'
import { type CliProcess, runCli, startCli, startDeployedChain } from '../helpers/cli.js'
import { startMeshPort, until } from '../helpers/live-node.js'

/** Loopback ports for the nodes' ops servers, spread by pid so that parallel runs do not clash. */
const opsPort = (i: number) => 19_400 + (process.pid % 400) + i * 2

describe('meshwork node: init, register, start, status', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'mw-node-cli-'))
  let chain: CliProcess
  const nodes: CliProcess[] = []

  beforeAll(async () => {
    chain = await startDeployedChain(cwd)
  })
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')))
    await chain.stop('SIGKILL')
  })

  const init = async (name: string, i: number) => {
    const r = await runCli(
      [
        '--json',
        'node',
        'init',
        '--dir',
        name,
        '--lat',
        '52.52',
        '--lon',
        '13.405',
        '--network',
        'network.json',
        '--api-listen',
        `127.0.0.1:${opsPort(i)}`,
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
      ],
      { cwd },
    )
    return {
      ...r,
      made: r.code === 0 ? (JSON.parse(r.stdout) as { peerId: string; operator: `0x${string}` }) : undefined,
    }
  }
  const status = async (dir: string) =>
    JSON.parse((await runCli(['--json', 'node', 'status', '--dir', dir], { cwd })).stdout)

  it('creates a node directory with owner-only keys, and never overwrites it', async () => {
    const r = await init('a', 0)
    expect(r.code, r.stderr).toBe(0)
    expect(r.made?.peerId).toMatch(/^12D3KooW/)
    expect(statSync(join(cwd, 'a', 'peer.key')).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(cwd, 'a', 'config.toml'), 'utf8')).toContain('h3Cell = "871f1d489ffffff"')
    const again = await init('a', 0)
    expect(again.code).toBe(2)
    expect(again.stderr).toContain('already holds a node identity')
    expect((await runCli(['node', 'init', '--dir', 'nowhere'], { cwd })).stderr).toContain(
      '--lat LAT --lon LON',
    )
  })

  it('registers with a stake from its operator key, and status reads it from the chain', async () => {
    const { made } = await init('r', 2)
    const broke = await runCli(['node', 'register', '--dir', 'r', '--stake', '1000'], { cwd })
    expect(broke.code).toBe(1)
    expect(broke.stderr).toContain('too little ETH for gas')
    // Fund the operator from the devnet treasury (dev account 0), as devnet does.
    const network = readNetworkFile(join(cwd, 'network.json'))
    const treasury = createChainClient({
      chainId: network.chainId,
      contracts: network.contracts,
      rpc: network.rpcUrl,
      privateKey: (devAccounts(1)[0] as { privateKey: `0x${string}` }).privateKey,
    })
    await treasury.wallet.sendTransaction({ to: made?.operator as `0x${string}`, value: 10n ** 18n })
    const noTokens = await runCli(['node', 'register', '--dir', 'r', '--stake', '1000'], { cwd })
    expect(noTokens.stderr).toContain('[TOKEN_INSUFFICIENT_BALANCE]')
    await transferTokens(treasury, made?.operator as `0x${string}`, 2_000n * 10n ** 18n)
    const reg = await runCli(
      ['node', 'register', '--dir', 'r', '--stake', '1000', '--services', 'compute,storage'],
      { cwd },
    )
    expect(reg.code, reg.stderr).toBe(0)
    expect((await status('r')).registration).toEqual({
      registered: true,
      operator: made?.operator,
      stake: '1000',
      unbonding: '0',
      services: ['compute', 'storage'],
    })
  })

  it('joins the mesh from a bootstrap peer, sees the other ad, and stops within 5 s', async () => {
    await init('b', 1)
    const a = startCli(['node', 'start', '--dir', 'a'], { cwd })
    nodes.push(a)
    const addr = (await a.waitFor(/listening (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+)/))[1] as string
    const b = startCli(['node', 'start', '--dir', 'b'], {
      cwd,
      env: { MESHWORK_MESH__BOOTSTRAP: `["${addr}"]` },
    })
    nodes.push(b)
    await b.waitFor(/running/)
    const deadline = Date.now() + 15_000
    let s = await status('a')
    while (Date.now() < deadline && s.live?.ads?.length !== 1) {
      await new Promise((r) => setTimeout(r, 250))
      s = await status('a')
    }
    expect(s).toMatchObject({ running: true, registration: { registered: false } })
    expect(s.live.ads).toHaveLength(1)
    expect(s.live.peers).toHaveLength(1)

    const started = Date.now()
    expect(await a.stop('SIGINT')).toBe(0)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect((await status('a')).running).toBe(false)
  })

  it('serves builders’ jobs over libp2p: signed results, hostile jobs stopped, the node keeps serving', async () => {
    await init('c', 2)
    // A free node: paying for jobs is tested on the devnet and in test/integration/job-payments.
    const c = startCli(['node', 'start', '--dir', 'c'], { cwd, env: { MESHWORK_COMPUTE__PRICE: '0' } })
    nodes.push(c)
    const addr = await c.waitFor(/listening (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/(\w+))/)
    const node = addr[2] as string
    const client = await startMeshPort(await generateKeyPair('Ed25519'), [addr[1] as string])
    try {
      const network = networkIdOf(readNetworkFile(join(cwd, 'network.json')))
      const options = { network, verifier: createPeerVerifier() }
      const spec = (source: string, input: unknown) =>
        parseJobSpec({
          v: 1,
          id: randomBytes(16).toString('hex'),
          kind: 'js',
          code: { inline: Buffer.from(source).toString('base64') },
          input: { inline: Buffer.from(JSON.stringify(input)).toString('base64') },
          limits: { timeMs: 500 },
          deadline: Date.now() + 60_000,
          maxPrice: '1000000000000000',
        })
      await until(
        async () => {
          try {
            await runJob(client.port, node, spec('(x) => x', 0), options)
            return true
          } catch {
            return false
          }
        },
        15_000,
        200,
      )
      const [endless, ok] = await Promise.allSettled([
        runJob(client.port, node, spec('() => { for (;;) {} }', null), options),
        runJob(client.port, node, spec('(x) => x.map((n) => n * n)', [1, 2, 3]), options),
      ])
      expect(endless).toMatchObject({ status: 'rejected', reason: { code: 'JOB_TIMEOUT' } })
      expect(ok.status).toBe('fulfilled')
      const result = (ok as PromiseFulfilledResult<Awaited<ReturnType<typeof runJob>>>).value
      expect(JSON.parse(new TextDecoder().decode(result.output))).toEqual([1, 4, 9])
      // After the endless job, the node still answers.
      const after = await runJob(client.port, node, spec('(s) => s.toUpperCase()', 'edge'), options)
      expect(new TextDecoder().decode(after.output)).toBe('"EDGE"')
      // Operators see it in Prometheus.
      const ops = (await c.waitFor(/metrics\s+(http:\/\/\S+)\/metrics/))[1] as string
      const metrics = await (await fetch(`${ops}/metrics`)).text()
      expect(metrics).toMatch(/meshwork_node_jobs\{outcome="JOB_TIMEOUT"\} 1\n/)
      expect(metrics).toMatch(/meshwork_node_jobs\{outcome="ok"\} [3-9]\n/)
    } finally {
      await client.port.close()
    }
  })
})
