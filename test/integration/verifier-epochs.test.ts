import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { registerNode } from '../../src/chain/index.js'
import { createLogger } from '../../src/core/logger.js'
import { createPeerVerifier, peerIdBytes } from '../../src/mesh/peer-key.js'
import { bundleCid, checkBundle, settleBundle } from '../../src/verifier/bundle.js'
import { createEvmVerifierChain } from '../../src/verifier/chain-port.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'
import { startInProcessVerifiers } from '../helpers/in-process-verifiers.js'
import { LIVE_CELL, LIVE_NET, LiveNodes, tcpAddr, until } from '../helpers/live-node.js'

const EPOCH_S = 6
const logger = createLogger({ level: process.env.MESHWORK_TEST_LOG ?? 'silent' })

describe('verifiers close epochs on the embedded chain over real libp2p', () => {
  const nodes = new LiveNodes()
  const dir = mkdtempSync(join(tmpdir(), 'mw-verifier-epochs-'))
  const stops: (() => Promise<void> | void)[] = []
  let f: ChainFixture | undefined
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
    await nodes.stopAll()
    nodes.cleanUp()
    await f?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('3 verifiers (quorum 2) measure 2 nodes and post each epoch’s root once, which anyone recomputes from its bundle', async ({
    annotate,
  }) => {
    f = await startChainFixture({ quorum: 2, disputeWindow: 1, epochDuration: EPOCH_S })
    const fixture = f
    // A block a second, as a live chain has: epochs need seed blocks. (A block is stamped with the
    // wall clock, or a second after the one before when that is later: faster mining would make the
    // chain's time run ahead of the wall clock.)
    const miner = setInterval(
      () => void fixture.chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => undefined),
      1_000,
    )
    stops.push(() => clearInterval(miner))

    // Two nodes, registered, running the node agent (which answers uptime challenges).
    const first = await nodes.start()
    const second = await nodes.start({ bootstrap: [tcpAddr(first.libp2p)] })
    for (const [i, node] of [first, second].entries()) {
      await f.fund(4 + i, 10_000n * MESH)
      await registerNode(f.client(4 + i), {
        peerId: peerIdBytes(node.peerId),
        services: 1,
        h3Cell: BigInt(`0x${LIVE_CELL}`),
        stake: 1_000n * MESH,
      })
    }
    // Three verifiers with their own peer keys, registered with stake.
    const network = f.network
    const net = LIVE_NET
    const { verifiers, stop } = await startInProcessVerifiers(f, {
      accounts: [1, 2, 3],
      network: net,
      epochDuration: EPOCH_S,
      bootstrap: [tcpAddr(first.libp2p)],
      dir,
      logger,
    })
    stops.push(stop)
    const stores = verifiers.map((v) => v.store)

    // The epochs that began while verifiers were still registering close with nothing to pay; the
    // first epoch to begin after the verifiers started is measured in full.
    const reader = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(network.deployBlock) })
    // (Chain time: the dev chain runs ahead of the wall clock after the burst of setup blocks.)
    const measured =
      Math.floor(((await reader.head()).timestamp - network.parameters.genesisTime) / EPOCH_S) + 1
    const t0 = Date.now()
    let posted = await reader.postedRoots()
    await until(
      async () => {
        posted = await reader.postedRoots()
        return posted.has(measured)
      },
      90_000,
      500,
    )
    await annotate(`epochs 0 to ${measured} posted ${Date.now() - t0} ms after the verifiers started`)

    // Anyone recomputes the measured epoch's root from its bundle (taken here from a verifier's store).
    const root = posted.get(measured)
    const bytes = stores[0]?.bundle(bundleCid(root?.digest as string))?.bytes
    expect(bytes).toBeDefined()
    const checked = checkBundle(bytes as Uint8Array, {
      network: net,
      verifier: createPeerVerifier(),
      previousRoot: posted.get(measured - 1)?.root ?? null,
    })
    if (!checked.ok) throw new Error(checked.fault)
    const settled = settleBundle(checked.bundle)
    expect(settled.root).toBe(root?.root)
    // Every verifier observed both nodes answering every challenge.
    expect(checked.bundle.input.uptime).toHaveLength(6)
    expect(checked.bundle.input.uptime.every((o) => o.answered === o.challenges)).toBe(true)
    // Both always-on operators earn in every epoch the verifiers measured them.
    expect(
      settled.entries.find((e) => e.account.toLowerCase() === f?.account(4).address.toLowerCase())
        ?.cumulativeAmount,
    ).toBeGreaterThan(0n)
    expect(
      settled.entries.find((e) => e.account.toLowerCase() === f?.account(5).address.toLowerCase())
        ?.cumulativeAmount,
    ).toBeGreaterThan(0n)
    // One RootPosted per epoch: nobody posted twice.
    const events = await f.client(0).public.getContractEvents({
      address: network.contracts.EpochRewards,
      abi: (await import('../../src/chain/abi/index.js')).epochRewardsAbi,
      eventName: 'RootPosted',
      fromBlock: BigInt(network.deployBlock),
    })
    const epochs = events.map((e) => Number((e.args as { epoch: bigint }).epoch))
    expect(epochs).toEqual([...new Set(epochs)])
  }, 150_000)
})
