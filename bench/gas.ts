/**
 * Gas of the on-chain operations that scale with the network, measured on the embedded chain with
 * the real contracts: `npm run bench -- gas`.
 *
 * Steady-state figures (a returning claimer, a later epoch, a second voucher) are what a live network
 * pays over and over; the one-off first-time costs (new storage slots) are printed beside them.
 */
import { type Hex, keccak256, type LocalAccount, sha256, toHex } from 'viem'
import {
  claim,
  claimMany,
  createChainClient,
  defaultDeployParameters,
  deployContracts,
  MESH,
  meshTokenAbi,
  type NetworkFile,
  openChannel,
  postRoot,
  redeemVoucher,
  registerNode,
  registerVerifier,
  sendContractTx,
  signPostRoot,
  signVoucher,
  startDevChain,
  transferTokens,
} from '../src/chain/index.js'
import { buildCumulativeTree, type CumulativeEntry } from '../src/rewards/index.js'
import { report } from './report.js'

const BENCH = 'gas'
const EPOCHS_PER_CLAIM = 720

export async function run(): Promise<void> {
  const chain = await startDevChain({ accounts: 24 })
  const contracts = {} as NetworkFile['contracts']
  const client = (i: number) =>
    createChainClient({
      chainId: chain.chainId,
      contracts,
      rpc: chain.provider,
      privateKey: (chain.accounts[i] as { privateKey: Hex }).privateKey,
      pollingInterval: 5,
    })
  const deployer = client(0)
  const genesis = Number((await deployer.public.getBlock()).timestamp)
  const parameters = {
    ...defaultDeployParameters('devnet', { treasury: deployer.wallet.account.address, genesisTime: genesis }),
    quorum: 3,
    disputeWindow: 1,
  }
  const network = await deployContracts(deployer, {
    name: 'bench',
    rpcUrl: 'http://127.0.0.1:8545',
    parameters,
  })
  Object.assign(contracts, network.contracts)
  const gas = (metric: string, value: bigint, extra: Record<string, unknown> = {}) =>
    report({ bench: BENCH, metric, value: Number(value), unit: 'gas', ...extra })

  // Five verifiers; roots carry three signatures (3-of-5).
  const verifiers = [1, 2, 3, 4, 5]
  for (const i of verifiers) {
    await transferTokens(deployer, client(i).wallet.account.address, 100_000n * MESH)
    await registerVerifier(client(i), { peerId: toHex(`verifier-${i}`), stake: 100_000n * MESH })
  }

  // registerNode (the registration itself; the ERC-20 approve before it is a separate transaction).
  await transferTokens(deployer, client(6).wallet.account.address, 10_000n * MESH)
  const reg = await registerNode(client(6), {
    peerId: toHex('12D3KooW-bench-node'),
    services: 0b1111,
    h3Cell: 0x8a2a1072b59ffffn,
    stake: 1_000n * MESH,
  })
  gas('registerNode', reg.gasUsed)

  // Claimers: accounts 12..22 are real. Some leaves always stay unclaimed, so that EpochRewards keeps
  // a balance as on a live network (a drained balance would make the next mint write a fresh slot).
  // The rest of each tree are random addresses.
  const claimers = Array.from({ length: 11 }, (_, k) => client(12 + k).wallet.account.address)
  const randomAccount = (i: number) => `0x${keccak256(toHex(`operator-${i}`)).slice(26)}` as `0x${string}`
  const treeOf = (size: number, epoch: number): { entries: CumulativeEntry[]; total: bigint } => {
    const entries: CumulativeEntry[] = []
    for (let i = 0; i < size; i++) {
      const account = i < claimers.length ? (claimers[i] as `0x${string}`) : randomAccount(i)
      entries.push({ account, cumulativeAmount: BigInt(epoch + 1) * (10n ** 12n + BigInt(i)) })
    }
    return { entries, total: entries.reduce((a, e) => a + e.cumulativeAmount, 0n) }
  }

  let epoch = 0
  const post = async (size: number) => {
    const { entries, total } = treeOf(size, epoch)
    const t0 = performance.now()
    const tree = buildCumulativeTree(entries)
    const buildMs = performance.now() - t0
    const end = genesis + (epoch + 1) * parameters.epochDuration
    const now = Number((await deployer.public.getBlock()).timestamp)
    if (now < end) {
      await chain.provider.request({ method: 'evm_increaseTime', params: [end - now] })
      await chain.provider.request({ method: 'evm_mine', params: [] })
    }
    const message = {
      epoch: BigInt(epoch),
      root: tree.root,
      bundleDigest: sha256(toHex(`bundle-epoch-${epoch}`)),
      totalCumulative: total,
      revocations: 0,
    }
    const signatures = await Promise.all(
      verifiers
        .slice(0, 3)
        .map((i) => signPostRoot(deployer, client(i).wallet.account as LocalAccount, message)),
    )
    const tx = await postRoot(client(9), { ...message, signatures })
    epoch++
    await chain.provider.request({ method: 'evm_mine', params: [] })
    return { tree, gasUsed: tx.gasUsed, buildMs, hash: tx.hash }
  }

  const first = await post(10)
  gas('postRootFirst', first.gasUsed, { operators: 10, note: 'first root ever: fresh storage slots' })
  // The second root fills the other slot of the two-root ring for the first time; from the third on,
  // every post overwrites existing slots (the steady state).
  await post(10)
  const small = await post(10)
  gas('postRoot', small.gasUsed, { operators: 10 })

  // First claims, on the 10-operator tree.
  const leaf = (tree: typeof small.tree, account: `0x${string}`) => {
    const p = tree.proof(account)
    if (!p) throw new Error('missing leaf')
    return { account, ...p }
  }
  const firstClaim = await claim(client(9), leaf(small.tree, claimers[0] as `0x${string}`))
  gas('claimFirst', firstClaim.gasUsed, {
    operators: 10,
    note: "an account's first claim: new balance and claimed slots",
  })
  await claimMany(
    client(9),
    claimers.slice(1, 9).map((a) => leaf(small.tree, a)),
  )

  // A 100,000-operator tree: postRoot does not grow; claims carry a 17-hash proof.
  const large = await post(100_000)
  gas('postRoot', large.gasUsed, { operators: 100_000, treeBuildMs: Math.round(large.buildMs) })
  if (process.env.TRACE) console.error(await traceGas(chain.provider, large.hash))
  const steady = await claim(client(9), leaf(large.tree, claimers[0] as `0x${string}`))
  gas('claim', steady.gasUsed, {
    operators: 100_000,
    proofLength: leaf(large.tree, claimers[0] as `0x${string}`).proof.length,
  })
  // Ten returning claimers in one transaction, on the next root.
  await claim(client(9), leaf(large.tree, claimers[9] as `0x${string}`))
  const again = await post(100_000)
  const many10 = await claimMany(
    client(9),
    claimers.slice(0, 10).map((a) => leaf(again.tree, a)),
  )
  gas('claimMany10', many10.gasUsed, { operators: 100_000, perClaim: Number(many10.gasUsed) / 10 })

  // Payments: the second voucher on a channel (the first one writes a fresh slot).
  const builder = client(7)
  const provider = client(8).wallet.account.address
  await transferTokens(deployer, builder.wallet.account.address, 1_000n * MESH)
  const channel = await openChannel(builder, { provider, amount: 1_000n * MESH })
  const voucher = async (cumulativeAmount: bigint) => {
    const v = await signVoucher(builder, builder.wallet.account as LocalAccount, {
      channelId: channel.channelId,
      cumulativeAmount,
    })
    return redeemVoucher(client(8), {
      channelId: channel.channelId,
      cumulativeAmount,
      signature: v.signature,
    })
  }
  const firstRedeem = await voucher(1n * MESH)
  gas('redeemVoucherFirst', firstRedeem.gasUsed, { note: "provider's first payment: new balance slot" })
  const redeem = await voucher(2n * MESH)
  gas('redeemVoucher', redeem.gasUsed)

  // Baseline: one plain MESH transfer between two accounts that already hold tokens.
  const transfer = await sendContractTx(client(12), {
    address: contracts.MeshToken,
    abi: meshTokenAbi,
    functionName: 'transfer',
    args: [claimers[1], 1n],
  })
  const perNodeEpoch = Number(steady.gasUsed) / EPOCHS_PER_CLAIM + Number(large.gasUsed) / 100_000
  report({
    bench: BENCH,
    metric: 'amortizedPerNodeEpoch',
    value: Math.round(perNodeEpoch * 10) / 10,
    unit: 'gas',
    baseline: Number(transfer.gasUsed),
    ratio: Math.round((perNodeEpoch / Number(transfer.gasUsed)) * 10_000) / 10_000,
    note: `claim once per ${EPOCHS_PER_CLAIM} epochs + postRoot shared by 100,000 operators; baseline: one token transfer per node per epoch`,
  })
  await chain.stop()
}

/** Gas by opcode of one transaction (depth:op), for finding where a figure comes from. */
export async function traceGas(
  provider: { request(a: { method: string; params?: unknown[] }): Promise<unknown> },
  hash: Hex,
) {
  const trace = (await provider.request({ method: 'debug_traceTransaction', params: [hash] })) as {
    structLogs: { op: string; gasCost: number; depth: number }[]
  }
  const by: Record<string, number> = {}
  for (const l of trace.structLogs) {
    if (l.op.includes('CALL')) continue
    by[`${l.depth}:${l.op}`] = (by[`${l.depth}:${l.op}`] ?? 0) + l.gasCost
  }
  return Object.entries(by)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 14)
}
