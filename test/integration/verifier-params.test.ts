import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  getNetworkParamsHistory,
  INITIAL_NETWORK_PARAMS,
  type NetworkParamsStruct,
  networkParamsAbi,
  postRoot,
  registerNode,
  signPostRoot,
  toRewardParams,
} from '../../src/chain/index.js'
import { createLogger } from '../../src/core/logger.js'
import { createPeerVerifier, peerIdBytes } from '../../src/mesh/peer-key.js'
import { networkIdOf } from '../../src/mesh/wire-codec.js'
import { emissionOf } from '../../src/rewards/index.js'
import { buildBundle, bundleCid, checkBundle, settleBundle } from '../../src/verifier/bundle.js'
import { createEvmVerifierChain } from '../../src/verifier/chain-port.js'
import { openVerifierStore } from '../../src/verifier/store.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'
import { runCli } from '../helpers/cli.js'
import { startInProcessVerifiers } from '../helpers/in-process-verifiers.js'
import { LIVE_CELL, LiveNodes, tcpAddr, until } from '../helpers/live-node.js'

const EPOCH_S = 6
const logger = createLogger({ level: process.env.MESHWORK_TEST_LOG ?? 'silent' })

/**
 * A governance change of a reward parameter reaches the verifiers through NetworkParams: the epochs
 * before the one it applies from keep the old version and payouts, the epochs from it carry the new
 * version and their roots follow the new set, and `meshwork rewards verify` recomputes both kinds,
 * and fails a root whose bundle used the old set after the change. (Uses the built CLI: `npm run
 * build` first.)
 */
describe('verifiers settle each epoch with the parameter set NetworkParams holds for it', () => {
  const nodes = new LiveNodes()
  const dir = mkdtempSync(join(tmpdir(), 'mw-verifier-params-'))
  const stops: (() => Promise<void> | void)[] = []
  let f: ChainFixture | undefined
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
    await nodes.stopAll()
    nodes.cleanUp()
    await f?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a linear share lowered to 0 by a proposal applies from the next epoch: older roots keep version 1 and its payouts, newer ones follow version 2; a root built with the old set after it fails rewards verify', async ({
    annotate,
  }) => {
    // No vetting, so that stake and uptime alone set the weights; a proposal passes in a few seconds.
    const initial: NetworkParamsStruct = { ...INITIAL_NETWORK_PARAMS, vettingEpochs: 0 }
    f = await startChainFixture(
      {
        quorum: 2,
        disputeWindow: 1,
        epochDuration: EPOCH_S,
        votingDelay: 1,
        votingPeriod: 3,
        timelockDelay: 2,
      },
      { port: 0, initialParams: initial },
    )
    const fixture = f
    const miner = setInterval(
      () => void fixture.chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => undefined),
      1_000,
    )
    stops.push(() => clearInterval(miner))
    const net = networkIdOf(f.network)

    // Two always-on nodes without certified hardware: A stakes 1,000 MESH, B 3,000. Under version 1
    // half of a node's uptime weight is linear in its stake (hardware.linearBps 5,000), so B earns
    // three times A; version 2 sets the linear share to 0: only certified hardware earns uptime, and
    // neither earns anything.
    const a = await nodes.start({ network: net })
    const b = await nodes.start({ network: net, bootstrap: [tcpAddr(a.libp2p)] })
    const operator = { a: f.account(4).address.toLowerCase(), b: f.account(5).address.toLowerCase() }
    for (const [i, [node, stake]] of [
      [a, 1_000n * MESH],
      [b, 3_000n * MESH],
    ].entries()) {
      await f.fund(4 + i, 10_000n * MESH)
      await registerNode(f.client(4 + i), {
        peerId: peerIdBytes((node as typeof a).peerId),
        services: 1,
        h3Cell: BigInt(`0x${LIVE_CELL}`),
        stake: stake as bigint,
      })
    }
    const { verifiers, stop } = await startInProcessVerifiers(f, {
      accounts: [1, 2, 3],
      network: net,
      epochDuration: EPOCH_S,
      bootstrap: [tcpAddr(a.libp2p)],
      dir,
      logger,
    })
    stops.push(stop)
    const reader = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(f.network.deployBlock) })
    const { genesisTime } = f.network.parameters
    const epochNow = async () => Math.floor(((await reader.head()).timestamp - genesisTime) / EPOCH_S)
    const posted = async (epoch: number) => {
      await until(async () => (await reader.postedRoots()).has(epoch), 40_000, 300)
    }

    // ─── An epoch measured in full under version 1 ──────────────────────────────────────────────
    const old = (await epochNow()) + 1
    const t0 = Date.now()
    await posted(old)
    await annotate(`epoch ${old} (version 1) posted ${Date.now() - t0} ms after the verifiers started`)

    // ─── The proposal: no linear share (only certified hardware earns uptime) ───────────────────
    const certifiedOnly = { ...initial, linearBps: 0 }
    await f.govern(
      [
        {
          address: f.network.contracts.NetworkParams,
          abi: networkParamsAbi,
          functionName: 'setParams',
          args: [1, certifiedOnly],
        },
      ],
      'only certified hardware earns uptime',
    )
    const executedIn = await epochNow()
    const history = await getNetworkParamsHistory(f.client(0))
    const effective = Number(history[1]?.fromEpoch)
    expect(effective).toBe(executedIn + 1)
    await posted(effective + 1)
    await annotate(`executed in epoch ${executedIn}; version 2 applies from epoch ${effective}`)

    // ─── Every posted bundle carries its epoch's version and settles to its root with that set ──
    const settled = new Map<number, ReturnType<typeof settleBundle> & { rootUnderV1: string }>()
    const settle = async (epoch: number) => {
      const roots = await reader.postedRoots()
      const root = roots.get(epoch)
      const cid = bundleCid(root?.digest as string)
      const bytes = verifiers.map((v) => v.store.bundle(cid)?.bytes).find((held) => held !== undefined)
      expect(bytes, `bundle of epoch ${epoch}`).toBeDefined()
      const chainParams = await reader.paramsAt(epoch)
      expect(chainParams.version).toBe(epoch < effective ? 1 : 2)
      const checked = checkBundle(bytes as Uint8Array, {
        network: net,
        verifier: createPeerVerifier(),
        previousRoot: roots.get(epoch - 1)?.root ?? null,
        params: chainParams,
      })
      if (!checked.ok) throw new Error(`epoch ${epoch}: ${checked.fault} ${checked.detail ?? ''}`)
      expect(checked.bundle.bundle.params.version).toBe(epoch < effective ? 1 : 2)
      const s = settleBundle(checked.bundle)
      expect(s.root).toBe(root?.root)
      // The same observations settled under version 1, to compare with the root version 2 made.
      const v1 = settleBundle({
        ...checked.bundle,
        params: toRewardParams({ version: 1, params: initial, makers: [] }),
      })
      settled.set(epoch, { ...s, rootUnderV1: v1.root })
    }
    for (let epoch = 0; epoch <= effective + 1; epoch++) await settle(epoch)
    // No verifier refused anything: every leader built with the chain's set.
    for (const v of verifiers) expect(v.closer.refused.get('params_mismatch') ?? 0).toBe(0)

    // ─── Payouts: B earns 3× A before, neither anything from the change on ──────────────────────
    // Compared in epochs where both nodes answered every challenge. On a loaded machine a verifier
    // can miss an epoch's challenges (then one node takes the whole pool under either version), so
    // up to three more epochs after the change are waited for.
    const fullyMeasured = (epoch: number) => {
      const list = settled.get(epoch)?.rewards.uptime.list() ?? []
      return list.length === 2 && list.every((n) => n.scorePpm === 1_000_000)
    }
    const before = [...settled.keys()].filter((e) => e >= old && e < effective && fullyMeasured(e))
    let after = effective
    while (!fullyMeasured(after) && after < effective + 4) {
      await annotate(`epoch ${after} not fully measured; trying the next`)
      after++
      if (!settled.has(after)) {
        await posted(after)
        await settle(after)
      }
    }
    expect(
      before.length,
      'an epoch under version 1 in which both nodes answered every challenge',
    ).toBeGreaterThan(0)
    expect(
      fullyMeasured(after),
      `an epoch under version 2 in which both nodes answered every challenge`,
    ).toBe(true)
    const oldEpoch = before[0] as number
    const paid = (epoch: number, who: keyof typeof operator) =>
      settled.get(epoch)?.rewards.payouts.get(operator[who]) ?? 0n
    expect(paid(oldEpoch, 'a')).toBeGreaterThan(0n)
    // floor(pool × 3/4) and 3 × floor(pool / 4) differ by rounding only.
    expect(paid(oldEpoch, 'b') - 3n * paid(oldEpoch, 'a')).toBeLessThanOrEqual(3n)
    expect(paid(oldEpoch, 'b') - 3n * paid(oldEpoch, 'a')).toBeGreaterThanOrEqual(0n)
    expect(paid(after, 'a')).toBe(0n)
    expect(paid(after, 'b')).toBe(0n)
    expect(
      settled
        .get(after)
        ?.rewards.uptime.list()
        .map((n) => n.weight),
    ).toEqual([0n, 0n])
    // The same observations under version 1 would have made another root.
    expect(settled.get(after)?.rootUnderV1).not.toBe(settled.get(after)?.root)

    // ─── Anyone recomputes both with the CLI, against the chain's set for each epoch ────────────
    const networkPath = join(dir, 'network.json')
    writeFileSync(
      networkPath,
      JSON.stringify({ ...f.network, bootstrap: verifiers.map((v) => tcpAddr(v.libp2p)) }),
    )
    for (const [epoch, version] of [
      [oldEpoch, 1],
      [after, 2],
    ]) {
      const verify = await runCli([
        'rewards',
        'verify',
        '--epoch',
        String(epoch),
        '--network',
        networkPath,
        '--json',
      ])
      expect(verify.code, verify.stderr).toBe(0)
      expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, epoch, paramsVersion: version })
    }

    // ─── A root whose bundle used the old set, posted by a dishonest quorum, fails verification ─
    await stop()
    const held = await reader.postedRoots()
    const last = Math.max(...held.keys())
    const lastCid = bundleCid(held.get(last)?.digest as string)
    const reopened = [1, 2, 3].map((i) => openVerifierStore(join(dir, `verifier-${i}.db`)))
    const lastBytes = reopened.map((st) => st.bundle(lastCid)?.bytes).find((b) => b !== undefined)
    for (const st of reopened) st.close()
    const lastChecked = checkBundle(lastBytes as Uint8Array, {
      network: net,
      verifier: createPeerVerifier(),
      previousRoot: held.get(last - 1)?.root ?? null,
    })
    if (!lastChecked.ok) throw new Error(lastChecked.fault)
    const forged = buildBundle({
      net,
      epoch: last + 1,
      seed: `0x${'00'.repeat(32)}`,
      emission: emissionOf(
        {
          initialEmission: BigInt(f.network.parameters.initialEmission),
          halvingInterval: BigInt(f.network.parameters.halvingInterval),
        },
        BigInt(last + 1),
      ),
      params: toRewardParams({ version: 1, params: initial, makers: [] }),
      nodes: [],
      verifiers: [],
      observations: [],
      carried: { root: held.get(last)?.root ?? null, entries: settleBundle(lastChecked.bundle).entries },
    })
    const forgedChecked = checkBundle(forged.bytes, {
      network: net,
      verifier: createPeerVerifier(),
      previousRoot: held.get(last)?.root ?? null,
    })
    if (!forgedChecked.ok) throw new Error(forgedChecked.fault)
    const forgedRoot = settleBundle(forgedChecked.bundle)
    const message = {
      epoch: BigInt(last + 1),
      root: forgedRoot.root,
      bundleDigest: forged.digest,
      totalCumulative: forgedRoot.totalCumulative,
      revocations: 0,
    }
    const signatures = await Promise.all(
      [1, 2].map((i) => signPostRoot(fixture.client(0), fixture.account(i), message)),
    )
    await until(
      async () => {
        try {
          await postRoot(fixture.client(0), { ...message, signatures })
          return true
        } catch {
          return false // the epoch has not ended, or the previous root is in its dispute window
        }
      },
      30_000,
      500,
    )
    const server = createServer((req, res) => {
      if (req.url === `/bundles/${forged.cid}`) res.end(forged.bytes)
      else res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const { port } = server.address() as AddressInfo
    const refused = await runCli([
      'rewards',
      'verify',
      '--epoch',
      String(last + 1),
      '--network',
      networkPath,
      '--bundle-url',
      `http://127.0.0.1:${port}`,
      '--json',
    ])
    expect(refused.code).toBe(1)
    expect(JSON.parse(refused.stdout).error).toMatchObject({
      code: 'PARAMS_MISMATCH',
      details: { bundleVersion: 1, chainVersion: 2, difference: "version 1, the chain's 2" },
    })
    expect(refused.stderr).toContain(
      `the bundle used reward parameters version 1, but NetworkParams holds version 2 for epoch ${last + 1}`,
    )
  }, 120_000)
})
