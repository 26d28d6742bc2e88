import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  claim,
  createChainClient,
  getEpochState,
  getTokenBalance,
  postRoot,
  registerVerifier,
  signPostRoot,
  transferTokens,
} from '../../src/chain/index.js'
import { peerIdBytes } from '../../src/mesh/peer-key.js'
import {
  AccountAmounts,
  addPayouts,
  buildCumulativeTree,
  type CumulativeEntry,
} from '../../src/rewards/index.js'
import type { EngineRun } from '../../src/sim/engine.js'
import { honestFleet } from '../../src/sim/fleet.js'
import { runStack } from '../../src/sim/stack-engine.js'
import { buildWorld, type World } from '../../src/sim/world.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'

/**
 * The in-memory ledger is a model of the contracts: a small simulated run on the production stack
 * must give the same payouts on the embedded EVM. The simulated verifiers (their own EVM keys)
 * register on NodeRegistry, sign each epoch's PostRoot for the deployed EpochRewards, and their root
 * is posted with a quorum of their signatures; then every operator's claim pays exactly what the
 * simulation paid it over the run.
 */
describe('simulated payouts on the embedded EVM', () => {
  let f: ChainFixture
  let world: World
  let run: EngineRun
  const epochs = 3

  beforeAll(async () => {
    const fleet = honestFleet({ seed: 21, nodes: 8, epochs, churn: { leave: 0.2, rejoin: 0.5, join: 0.2 } })
    world = buildWorld({ seed: 21, epochs, fleet, verifiers: 3, colluders: 0 })
    run = await runStack(world)
    f = await startChainFixture()
  }, 120_000)
  afterAll(async () => {
    await f?.stop()
  })

  it('posts every simulated root with the simulated verifiers quorum, and claims pay the simulated amounts', async () => {
    const p = f.network.parameters
    expect(world.quorum).toBe(p.quorum)
    const clients = []
    for (const v of world.verifiers) {
      const client = createChainClient({
        chainId: f.chain.chainId,
        contracts: f.network.contracts,
        rpc: f.chain.provider,
        privateKey: v.evmKey,
        pollingInterval: 10,
      })
      const address = client.wallet.account.address
      await f.chain.provider.request({
        method: 'hardhat_setBalance',
        params: [address, `0x${(10n ** 21n).toString(16)}`],
      })
      await transferTokens(f.client(0), address, BigInt(p.minVerifierStake))
      await registerVerifier(client, {
        peerId: peerIdBytes(v.signer.peerId),
        stake: BigInt(p.minVerifierStake),
      })
      clients.push(client)
    }

    let entries: CumulativeEntry[] = []
    const paid = new Map<string, bigint>()
    for (const outcome of run.epochs) {
      // The same table and root as the simulation's, rebuilt from its payouts.
      const payouts = new AccountAmounts()
      for (const [account, amount] of outcome.payouts) payouts.add(account as `0x${string}`, amount)
      entries = addPayouts(entries, payouts)
      const tree = buildCumulativeTree(entries)
      expect(tree.root).toBe(outcome.root)
      for (const [account, amount] of outcome.payouts) paid.set(account, (paid.get(account) ?? 0n) + amount)

      // The epoch has ended on-chain, and the previous root is out of its dispute window.
      while ((await f.now()) < p.genesisTime + (outcome.epoch + 1) * p.epochDuration)
        await f.advance(p.epochDuration)
      await f.mine(p.disputeWindow + 1)
      const message = {
        epoch: BigInt(outcome.epoch),
        root: outcome.root,
        bundleDigest: outcome.digest,
        totalCumulative: outcome.totalCumulative,
        revocations: 0,
      }
      const signatures = []
      for (const client of clients.slice(0, p.quorum))
        signatures.push(await signPostRoot(client, client.wallet.account as never, message))
      const { revocations: _r, ...post } = message
      await postRoot(f.client(0), { ...post, signatures })
    }
    await f.mine(p.disputeWindow + 1)
    const state = await getEpochState(f.client(0))
    expect(Number(state.claimableEpoch)).toBe(epochs - 1)

    const tree = buildCumulativeTree(entries)
    expect(paid.size).toBeGreaterThan(0)
    for (const [account, amount] of paid) {
      const leaf = tree.proof(account as `0x${string}`)
      if (leaf === undefined) throw new Error(`no leaf for ${account}`)
      await claim(f.client(0), {
        account: account as `0x${string}`,
        cumulativeAmount: leaf.cumulativeAmount,
        proof: leaf.proof,
      })
      expect(await getTokenBalance(f.client(0), account as `0x${string}`)).toBe(amount)
    }
    const total = [...paid.values()].reduce((a, b) => a + b, 0n)
    expect(total).toBe(run.epochs.at(-1)?.totalCumulative)
    expect(total).toBeGreaterThan(33_999n * MESH * BigInt(epochs - 1))
  }, 180_000)
})
