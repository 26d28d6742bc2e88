import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  getNetworkParams,
  getNetworkParamsHistory,
  INITIAL_NETWORK_PARAMS,
  type NetworkParamsStruct,
  networkParamsAbi,
  writeNetworkFile,
} from '../../src/chain/index.js'
import { ComputeService } from '../../src/compute/job-protocol.js'
import { SandboxPool } from '../../src/compute/sandbox-pool.js'
import { createPeerSigner } from '../../src/mesh/peer-key.js'
import { networkIdOf } from '../../src/mesh/wire-codec.js'
import { type JobOutcome, Meshwork } from '../../src/sdk/index.js'
import { type ChainFixture, startChainFixture } from '../helpers/chain-fixture.js'
import { runCli } from '../helpers/cli.js'
import { LiveNodes, tcpAddr, until } from '../helpers/live-node.js'

const EPOCH_S = 4

/**
 * The builder's re-run rate is NetworkParams' (`compute.verifyMinPpm` / `compute.verifyMaxPpm`), read
 * from the chain: with both at 1 ppm even a node the builder has never checked is not re-run (the
 * SDK and the built CLI: `npm run build` first), and once governance sets both to 1,000,000 every
 * job is re-run from the epoch the change applies in, for nodes with history too. An explicit
 * `verify` overrides the chain's rate either way.
 */
describe('the builder re-runs jobs at the rate NetworkParams sets', () => {
  const nodes = new LiveNodes()
  const dir = mkdtempSync(join(tmpdir(), 'mw-compute-verify-'))
  const stops: (() => Promise<unknown> | unknown)[] = []
  let f: ChainFixture | undefined
  afterAll(async () => {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined)
    await nodes.stopAll()
    nodes.cleanUp()
    await f?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('1 ppm: jobs are signed, not re-run (SDK and CLI); after a proposal sets 100%, every job is re-run from the epoch it applies in', async ({
    annotate,
  }) => {
    const initial: NetworkParamsStruct = {
      ...INITIAL_NETWORK_PARAMS,
      computeVerifyMinPpm: 1,
      computeVerifyMaxPpm: 1,
    }
    f = await startChainFixture(
      { epochDuration: EPOCH_S, votingDelay: 1, votingPeriod: 3, timelockDelay: 1 },
      { port: 0, initialParams: initial },
    )
    const fixture = f
    const miner = setInterval(
      () => void fixture.chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => undefined),
      500,
    )
    stops.push(() => clearInterval(miner))
    const net = networkIdOf(f.network)

    // Two free compute nodes of two operators: each job can be re-run on the other.
    const pool = new SandboxPool({ size: 1 })
    stops.push(() => pool.close())
    const start = (operator: number, bootstrap: string[]) =>
      nodes.start({
        network: net,
        bootstrap,
        operator: fixture.account(operator).address,
        services: (_db, key) => [
          new ComputeService(
            { network: net, price: 0n, now: () => Date.now() },
            { pool, signer: createPeerSigner(key) },
          ),
        ],
      })
    const a = await start(4, [])
    await start(5, [tcpAddr(a.libp2p)])
    const networkPath = join(dir, 'network.json')
    writeNetworkFile(networkPath, { ...f.network, bootstrap: [tcpAddr(a.libp2p)] }, { force: true })
    const mw = await Meshwork.connect({ network: networkPath })
    stops.push(() => mw.close())
    await until(() => mw.ads().length >= 2, 10_000, 50)
    let n = 0
    const job = (verify?: number): Promise<JobOutcome> =>
      mw.jobs.run({
        kind: 'js',
        code: '(x) => x + 1',
        input: ++n,
        ...(verify === undefined ? {} : { verify }),
      })

    // ─── Version 1: 1 ppm. Nodes this client never checked are not re-run (the default rule would). ─
    for (let i = 0; i < 3; i++) expect((await job()).verification).toBe('signed')
    expect(await mw.verifyBounds()).toMatchObject({
      source: 'chain',
      version: 1,
      bounds: { minPpm: 1, maxPpm: 1 },
    })
    expect((await job(1)).verification).toBe('verified')
    const square = join(dir, 'square.js')
    writeFileSync(square, '(x) => x * x')
    const cli = await runCli(['--json', 'job', 'run', square, '--input', '7', '--network', networkPath], {
      timeoutMs: 30_000,
    })
    expect(cli.code, cli.stderr).toBe(0)
    expect(JSON.parse(cli.stdout)).toMatchObject({
      value: 49,
      verification: 'signed',
    })

    // ─── The proposal: every job re-run ─────────────────────────────────────────────────────────
    await f.govern(
      [
        {
          address: f.network.contracts.NetworkParams,
          abi: networkParamsAbi,
          functionName: 'setParams',
          args: [1, { ...initial, computeVerifyMinPpm: 1_000_000, computeVerifyMaxPpm: 1_000_000 }],
        },
      ],
      're-run every compute job',
    )
    const effective = (await getNetworkParamsHistory(fixture.client(0)))[1]?.fromEpoch as bigint
    const epochNow = async () => (await getNetworkParams(fixture.client(0))).epoch
    // Not before the epoch it applies in: a job that ends while the chain is still before it is signed.
    if ((await epochNow()) < effective) {
      const r = await job()
      if ((await epochNow()) < effective) expect(r.verification).toBe('signed')
    }
    await until(async () => (await epochNow()) >= effective, 3 * EPOCH_S * 1000, 100)
    // The client's cached epoch ends by the chain's clock; within an epoch it reads the new set.
    const t0 = Date.now()
    let first: JobOutcome | undefined
    await until(
      async () => {
        first = await job()
        return first.verification === 'verified'
      },
      2 * EPOCH_S * 1000,
      100,
    )
    await annotate(`re-runs every job ${Date.now() - t0} ms after the chain reached epoch ${effective}`)
    for (let i = 0; i < 3; i++) expect((await job()).verification).toBe('verified')
    expect(await mw.verifyBounds()).toMatchObject({
      source: 'chain',
      version: 2,
      bounds: { minPpm: 1_000_000, maxPpm: 1_000_000 },
    })
    // An explicit probability still wins.
    expect((await job(0)).verification).toBe('signed')
  }, 60_000)
})
