import { concatHex, type Hex, sha256, toHex, zeroHash } from 'viem'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  claim,
  claimMany,
  contractDomain,
  createChainClient,
  epochRewardsAbi,
  getEpochState,
  getTokenBalance,
  type Messages,
  meshTokenAbi,
  postRoot,
  readContract,
  registerVerifier,
  revokeRoot,
  type SignedBy,
  sendContractTx,
  signMessageOf,
  signPostRoot,
} from '../../src/chain/index.js'
import { buildCumulativeTree, type CumulativeTree } from '../../src/rewards/index.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'
import { expectForeignSigners } from '../helpers/expect-foreign-signers.js'

const VERIFIERS = [1, 2, 3, 4, 5]

/** A stand-in bundle digest. */
const digest = (text: string) => sha256(toHex(text))

/** The claim arguments of `account` in `tree`; fails the test when it has no leaf. */
function leafOf(tree: CumulativeTree, account: `0x${string}`) {
  const leaf = tree.proof(account)
  if (!leaf) throw new Error(`no leaf for ${account}`)
  return { account, ...leaf }
}

const OPERATORS = [6, 7, 8]

describe('EpochRewards on the embedded chain', () => {
  let f: ChainFixture
  let clean: string
  const epochDuration = 15

  beforeAll(async () => {
    f = await startChainFixture({ quorum: 3, disputeWindow: 3 })
    for (const i of VERIFIERS) {
      await f.fund(i, 100_000n * MESH)
      await registerVerifier(f.client(i), { peerId: toHex(`verifier-${i}`), stake: 100_000n * MESH })
    }
    clean = await f.snapshot()
  })
  afterAll(() => f.stop())
  beforeEach(async () => {
    await f.revert(clean)
    clean = await f.snapshot()
  })

  const v = (i: number) => f.account(i)
  const tokenSupply = () =>
    readContract<bigint>(f.client(0), {
      address: f.network.contracts.MeshToken,
      abi: meshTokenAbi,
      functionName: 'totalSupply',
      args: [],
    })
  const rewardsDomain = () =>
    contractDomain('EpochRewards', f.chain.chainId, f.network.contracts.EpochRewards)
  /** Signs PostRoot by each signer, for the chain's current revocation count unless given. */
  const sign = async (
    signers: number[],
    message: Omit<Messages['PostRoot'], 'revocations'> & { revocations?: number },
  ) => {
    const revocations = message.revocations ?? (await getEpochState(f.client(0))).revocations
    return Promise.all(signers.map((i) => signPostRoot(f.client(0), v(i), { ...message, revocations })))
  }
  const signRevoke = async (signers: number[], message: { epoch: bigint; root: Hex }) => {
    const { revocations } = await getEpochState(f.client(0))
    return Promise.all(
      signers.map((i) => signMessageOf(v(i), rewardsDomain(), 'RevokeRoot', { ...message, revocations })),
    )
  }
  /** Mines past the newest root's dispute window, so that the next root may be posted. */
  const settle = () => f.mine(3)

  /** Moves past the end of `epoch`. */
  async function endEpoch(epoch: number) {
    const end = f.network.parameters.genesisTime + (epoch + 1) * epochDuration
    const now = await f.now()
    if (now < end) await f.advance(end - now)
  }

  function treeFor(amounts: bigint[]) {
    const entries = OPERATORS.map((i, k) => ({ account: v(i).address, cumulativeAmount: amounts[k] ?? 0n }))
    return buildCumulativeTree(entries)
  }

  async function post(epoch: number, amounts: bigint[], signers = [1, 2, 3]) {
    const tree = treeFor(amounts)
    const total = amounts.reduce((a, b) => a + b, 0n)
    const message = {
      epoch: BigInt(epoch),
      root: tree.root,
      bundleDigest: digest(`bundle-epoch-${epoch}`),
      totalCumulative: total,
    }
    await endEpoch(epoch)
    await settle()
    await postRoot(f.client(9), { ...message, signatures: await sign(signers, message) })
    return tree
  }

  it('posts a quorum-signed root, mints the epoch emission and pays claims after the dispute window', async () => {
    const tree = await post(0, [1_000n * MESH, 2_000n * MESH, 3_000n * MESH])
    expect(await getTokenBalance(f.client(0), f.network.contracts.EpochRewards)).toBe(6_000n * MESH)
    const state = await getEpochState(f.client(0))
    expect(state.nextEpoch).toBe(1n)
    expect(state.claimableRoot).toBe(zeroHash)

    const leaf = tree.proof(v(6).address)
    if (!leaf) throw new Error('no leaf')
    await expect(claim(f.client(6), { account: v(6).address, ...leaf })).rejects.toMatchObject({
      code: 'CLAIM_NO_ROOT',
    })

    await f.mine(3)
    await claim(f.client(6), { account: v(6).address, ...leaf })
    expect(await getTokenBalance(f.client(0), v(6).address)).toBe(1_000n * MESH)

    // Later epochs only pay the difference since the last claim.
    const next = await post(1, [1_500n * MESH, 2_000n * MESH, 3_000n * MESH])
    const later = leafOf(next, v(6).address)
    // Inside the new root's dispute window, claims still prove against epoch 0's root.
    expect((await getEpochState(f.client(0))).claimableEpoch).toBe(0n)
    await expect(claim(f.client(9), later)).rejects.toMatchObject({ code: 'CLAIM_INVALID_PROOF' })
    await f.mine(3)
    expect((await getEpochState(f.client(0))).claimableEpoch).toBe(1n)
    await claim(f.client(9), later)
    expect(await getTokenBalance(f.client(0), v(6).address)).toBe(1_500n * MESH)
  })

  it('claims for a fleet in one transaction', async () => {
    const tree = await post(0, [10n, 20n, 30n])
    await f.mine(3)
    const claims = OPERATORS.map((i) => leafOf(tree, v(i).address))
    await claimMany(f.client(6), claims)
    for (const [k, i] of OPERATORS.entries()) {
      expect(await getTokenBalance(f.client(0), v(i).address)).toBe(BigInt((k + 1) * 10))
    }
  })

  it('refuses a double claim and a claim above the cumulative amount', async () => {
    const tree = await post(0, [100n, 200n, 300n])
    await f.mine(3)
    const leaf = tree.proof(v(7).address)
    if (!leaf) throw new Error('no leaf')
    await claim(f.client(7), { account: v(7).address, ...leaf })
    await expect(claim(f.client(7), { account: v(7).address, ...leaf })).rejects.toMatchObject({
      code: 'CLAIM_NOTHING_TO_CLAIM',
    })
    await expect(
      claim(f.client(7), {
        account: v(7).address,
        cumulativeAmount: leaf.cumulativeAmount + 1n,
        proof: leaf.proof,
      }),
    ).rejects.toMatchObject({ code: 'CLAIM_INVALID_PROOF' })
    // Someone else's proof does not pay to me.
    const other = tree.proof(v(8).address)
    if (!other) throw new Error('no leaf')
    await expect(claim(f.client(7), { account: v(7).address, ...other })).rejects.toMatchObject({
      code: 'CLAIM_INVALID_PROOF',
    })
    expect(await getTokenBalance(f.client(0), v(7).address)).toBe(200n)
  })

  it('refuses roots with too few, duplicate or non-verifier signatures', async () => {
    const tree = treeFor([1n, 2n, 3n])
    const message = { epoch: 0n, root: tree.root, bundleDigest: digest('bundle'), totalCumulative: 6n }
    await endEpoch(0)
    const submit = (signatures: SignedBy[]) => postRoot(f.client(9), { ...message, signatures })

    await expect(submit(await sign([1, 2], message))).rejects.toMatchObject({ code: 'QUORUM_NOT_REACHED' })
    // A duplicate: the action's ordering would merge it, so send the raw list straight to the contract.
    const [a, b] = await sign([1, 2], message)
    if (!a || !b) throw new Error('no signatures')
    const ordered = [a, b].sort((x, y) => (BigInt(x.signer) < BigInt(y.signer) ? -1 : 1))
    const dup = concatHex([ordered[0], ordered[1], ordered[1]].map((s) => s?.signature as Hex))
    await expect(
      sendContractTx(f.client(9), {
        address: f.network.contracts.EpochRewards,
        abi: epochRewardsAbi,
        functionName: 'postRoot',
        args: [0n, tree.root, message.bundleDigest, 6n, dup],
      }),
    ).rejects.toMatchObject({ code: 'QUORUM_SIGNERS_NOT_ASCENDING' })
    // Account 10 holds tokens but never registered as a verifier.
    await expect(submit(await sign([1, 2, 10], message))).rejects.toMatchObject({
      code: 'QUORUM_SIGNER_NOT_VERIFIER',
    })
    expect((await getEpochState(f.client(0))).nextEpoch).toBe(0n)
    // The same three real verifiers pass.
    await submit(await sign([1, 2, 3], message))
  })

  it('refuses signatures made for another chain or another contract', async () => {
    const tree = treeFor([1n, 2n, 3n])
    const message = {
      epoch: 0n,
      root: tree.root,
      bundleDigest: digest('bundle'),
      totalCumulative: 6n,
      revocations: 0,
    }
    await endEpoch(0)
    const wrongChain = { ...rewardsDomain(), chainId: 1 }
    const wrongContract = { ...rewardsDomain(), verifyingContract: f.network.contracts.Payments }
    for (const domain of [wrongChain, wrongContract]) {
      const sigs = await Promise.all([1, 2, 3].map((i) => signMessageOf(v(i), domain, 'PostRoot', message)))
      await expectForeignSigners(postRoot(f.client(9), { ...message, signatures: sigs }))
    }
  })

  it('refuses a root for a skipped, past or unfinished epoch', async () => {
    const tree = treeFor([1n, 2n, 3n])
    const msg = (epoch: bigint) => ({
      epoch,
      root: tree.root,
      bundleDigest: digest('bundle'),
      totalCumulative: 6n,
    })
    // Epoch 0 has not ended yet (genesis is the deploy block).
    const now = await f.now()
    const end0 = f.network.parameters.genesisTime + epochDuration
    if (now < end0) {
      await expect(
        postRoot(f.client(9), { ...msg(0n), signatures: await sign([1, 2, 3], msg(0n)) }),
      ).rejects.toMatchObject({
        code: 'ROOT_EPOCH_NOT_ENDED',
      })
    }
    await endEpoch(2)
    // Skipping ahead to epoch 2 before 0 and 1.
    await expect(
      postRoot(f.client(9), { ...msg(2n), signatures: await sign([1, 2, 3], msg(2n)) }),
    ).rejects.toMatchObject({
      code: 'ROOT_EPOCH_OUT_OF_ORDER',
    })
    await postRoot(f.client(9), { ...msg(0n), signatures: await sign([1, 2, 3], msg(0n)) })
    await settle()
    // Epoch 0 again (the past).
    await expect(
      postRoot(f.client(9), { ...msg(0n), signatures: await sign([1, 2, 3], msg(0n)) }),
    ).rejects.toMatchObject({
      code: 'ROOT_EPOCH_OUT_OF_ORDER',
    })
    // Epoch 3 is still running.
    await postRoot(f.client(9), { ...msg(1n), signatures: await sign([1, 2, 3], msg(1n)) })
    // The next root waits until the one before it has passed its dispute window.
    await expect(
      postRoot(f.client(9), { ...msg(2n), signatures: await sign([1, 2, 3], msg(2n)) }),
    ).rejects.toMatchObject({ code: 'ROOT_PREVIOUS_IN_DISPUTE' })
    await settle()
    await postRoot(f.client(9), { ...msg(2n), signatures: await sign([1, 2, 3], msg(2n)) })
    await settle()
    await expect(
      postRoot(f.client(9), { ...msg(3n), signatures: await sign([1, 2, 3], msg(3n)) }),
    ).rejects.toMatchObject({
      code: 'ROOT_EPOCH_NOT_ENDED',
    })
  })

  it('refuses a total above what the emission schedule has released', async () => {
    const emission = BigInt(f.network.parameters.initialEmission)
    await expect(post(0, [emission, 1n, 0n])).rejects.toMatchObject({ code: 'ROOT_EMISSION_EXCEEDED' })
    await post(0, [emission, 0n, 0n])
    // Two epochs may release twice the emission, not more.
    await expect(post(1, [emission, emission, 1n])).rejects.toMatchObject({ code: 'ROOT_EMISSION_EXCEEDED' })
    await post(1, [emission, emission, 0n])
    // Cumulative totals never shrink.
    await expect(post(2, [emission, 0n, 0n])).rejects.toMatchObject({ code: 'ROOT_CUMULATIVE_DECREASED' })
  })

  it('lets a verifier quorum revoke a root inside its dispute window, and not after', async () => {
    await post(0, [1n, 1n, 1n])
    const supply = await tokenSupply()
    const bad = await post(1, [5n, 5n, 5n])
    expect(await tokenSupply()).toBe(supply + 12n)
    const message = { epoch: 1n, root: bad.root }
    const sigs = await signRevoke([1, 2, 3], message)
    // Two signatures are not a quorum.
    await expect(revokeRoot(f.client(9), { ...message, signatures: sigs.slice(0, 2) })).rejects.toMatchObject(
      {
        code: 'QUORUM_NOT_REACHED',
      },
    )
    await revokeRoot(f.client(9), { ...message, signatures: sigs })
    // The revoked root's new emission is burned; epoch 0's root is what claims use again.
    expect(await tokenSupply()).toBe(supply)
    expect(await getEpochState(f.client(0))).toMatchObject({
      nextEpoch: 1n,
      claimableEpoch: 0n,
      totalMinted: 3n,
      revocations: 1,
    })
    // Epoch 0's root is past its window: it cannot be revoked in turn.
    const older = await signRevoke([1, 2, 3], { epoch: 0n, root: treeFor([1n, 1n, 1n]).root })
    await expect(
      revokeRoot(f.client(9), { epoch: 0n, root: treeFor([1n, 1n, 1n]).root, signatures: older }),
    ).rejects.toMatchObject({ code: 'ROOT_DISPUTE_WINDOW_OVER' })

    // The revoked root's own signatures cannot post it again: they were made before the revocation.
    const replay = { epoch: 1n, root: bad.root, bundleDigest: digest('bundle-epoch-1'), totalCumulative: 15n }
    const stale = await sign([1, 2, 3], { ...replay, revocations: 0 })
    await expectForeignSigners(postRoot(f.client(9), { ...replay, signatures: stale }))

    // Nor can the old revocation's signatures revoke a root posted afresh.
    await postRoot(f.client(9), { ...replay, signatures: await sign([1, 2, 3], replay) })
    await expectForeignSigners(revokeRoot(f.client(9), { ...message, signatures: sigs }))
    await revokeRoot(f.client(9), { ...message, signatures: await signRevoke([1, 2, 3], message) })

    const good = await post(1, [1n, 2n, 3n])
    await f.mine(3)
    expect(await tokenSupply()).toBe(supply + 3n)
    const late = { epoch: 1n, root: good.root }
    await expect(
      revokeRoot(f.client(9), { ...late, signatures: await signRevoke([1, 2, 3], late) }),
    ).rejects.toMatchObject({ code: 'ROOT_DISPUTE_WINDOW_OVER' })
  })

  it('keeps a settled root settled when the dispute window is raised later', async () => {
    await post(0, [1n, 1n, 1n])
    const settled = await post(1, [2n, 2n, 2n])
    await settle()
    await f.govern([
      {
        address: f.network.contracts.EpochRewards,
        abi: epochRewardsAbi,
        functionName: 'setDisputeWindow',
        args: [1_000],
      },
    ])
    // Epoch 1's root passed its window before the change: it stays claimable and cannot be revoked.
    const message = { epoch: 1n, root: settled.root }
    await expect(
      revokeRoot(f.client(9), { ...message, signatures: await signRevoke([1, 2, 3], message) }),
    ).rejects.toMatchObject({ code: 'ROOT_DISPUTE_WINDOW_OVER' })
    await claim(f.client(9), leafOf(settled, v(7).address))
    expect(await getTokenBalance(f.client(0), v(7).address)).toBe(2n)
    // The next root waits the new window.
    const next = await post(2, [3n, 3n, 3n])
    await settle()
    await expect(claim(f.client(9), leafOf(next, v(7).address))).rejects.toMatchObject({
      code: 'CLAIM_INVALID_PROOF',
    })
    expect((await getEpochState(f.client(0))).claimableEpoch).toBe(1n)
  })

  it('refuses a root whose bundle id differs from the one the verifiers signed', async () => {
    const tree = treeFor([1n, 2n, 3n])
    const message = { epoch: 0n, root: tree.root, bundleDigest: digest('bundle-honest'), totalCumulative: 6n }
    await endEpoch(0)
    const sigs = await sign([1, 2, 3], message)
    await expectForeignSigners(
      postRoot(f.client(9), { ...message, bundleDigest: digest('bundle-other'), signatures: sigs }),
    )
    expect((await getEpochState(f.client(0))).nextEpoch).toBe(0n)
  })

  it('lands a root whose mint writes a new supply checkpoint though its gas was estimated in the second of the previous one', async () => {
    // The poster's RPC holds the estimate in the previous root's second and mines the transaction
    // one second later, as a busy chain or a slow poster does.
    const inner = f.chain.provider
    const latest = async () => {
      const block = (await inner.request({ method: 'eth_getBlockByNumber', params: ['latest', false] })) as {
        timestamp: Hex
      }
      return Number(BigInt(block.timestamp))
    }
    const at = async (timestamp: number) =>
      inner.request({ method: 'evm_setNextBlockTimestamp', params: [timestamp] })
    const late = {
      async request(args: { method: string; params?: unknown }) {
        if (args.method === 'eth_estimateGas') await at(await latest())
        if (args.method === 'eth_sendRawTransaction') await at((await latest()) + 1)
        return inner.request(args as never)
      },
    }
    const account = f.chain.accounts[9]
    if (!account) throw new Error('no dev account 9')
    const poster = createChainClient({
      chainId: f.chain.chainId,
      contracts: f.network.contracts,
      rpc: late,
      privateKey: account.privateKey,
      pollingInterval: 10,
    })
    await endEpoch(2)
    const supply = await tokenSupply()
    // Each root hands out 1 MESH more; the first two also write their ring slot for the first time.
    for (const epoch of [0, 1, 2]) {
      const amounts = [BigInt(epoch + 1) * MESH, 2n * MESH, 3n * MESH]
      const message = {
        epoch: BigInt(epoch),
        root: treeFor(amounts).root,
        bundleDigest: digest(`bundle-epoch-${epoch}`),
        totalCumulative: amounts.reduce((a, b) => a + b, 0n),
      }
      await postRoot(poster, { ...message, signatures: await sign([1, 2, 3], message) })
      // Past the dispute window without leaving the second of this root's mint.
      await inner.request({ method: 'hardhat_mine', params: ['0x3', '0x0'] })
    }
    expect((await getEpochState(f.client(0))).nextEpoch).toBe(3n)
    expect(await tokenSupply()).toBe(supply + 8n * MESH)
  })
})
