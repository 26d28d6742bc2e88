import { zeroAddress } from 'viem'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  contractDomain,
  depositChannel,
  getTokenBalance,
  openChannel,
  paymentsAbi,
  readContract,
  redeemVoucher,
  requestChannelClose,
  signMessageOf,
  signVoucher,
  withdrawChannel,
} from '../../src/chain/index.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'

const BUILDER = 1
const PROVIDER = 2
/** Another provider, with its own channel from the same builder. */
const OTHER_PROVIDER = 3
/** Holds tokens, has no part in any channel. */
const STRANGER = 4
const FUNDS = 1_000n * MESH
const CLOSE_TIMEOUT = 60

/** Payments' `Channel` struct as viem decodes it. */
interface ChannelView {
  builder: `0x${string}`
  closesAt: bigint
  closed: boolean
  provider: `0x${string}`
  deposit: bigint
  redeemed: bigint
}

describe('Payments on the embedded chain', () => {
  let f: ChainFixture
  let clean: string

  beforeAll(async () => {
    f = await startChainFixture()
    for (const i of [BUILDER, STRANGER]) await f.fund(i, FUNDS)
    clean = await f.snapshot()
  })
  afterAll(() => f.stop())
  beforeEach(async () => {
    await f.revert(clean)
    clean = await f.snapshot()
  })

  const addr = (i: number) => f.account(i).address
  const balance = (i: number) => getTokenBalance(f.client(0), addr(i))
  const escrow = () => getTokenBalance(f.client(0), f.network.contracts.Payments)
  const paymentsDomain = () => contractDomain('Payments', f.chain.chainId, f.network.contracts.Payments)
  const getChannel = (channelId: bigint) =>
    readContract<ChannelView>(f.client(0), {
      address: f.network.contracts.Payments,
      abi: paymentsAbi,
      functionName: 'getChannel',
      args: [channelId],
    })

  /** Opens a channel from the builder to `provider` with `amount`. */
  async function open(amount: bigint, provider = PROVIDER) {
    const { channelId } = await openChannel(f.client(BUILDER), { provider: addr(provider), amount })
    return channelId
  }

  /** A voucher for `cumulativeAmount` on `channelId`, signed by `signer` (the builder by default). */
  async function voucher(channelId: bigint, cumulativeAmount: bigint, signer = BUILDER) {
    const { signature } = await signVoucher(f.client(0), f.account(signer), { channelId, cumulativeAmount })
    return { channelId, cumulativeAmount, signature }
  }

  // ─── Happy paths ──────────────────────────────────────────────────────────────────────────

  it('opens a channel and pays the provider the difference between cumulative vouchers', async () => {
    const channelId = await open(100n * MESH)
    expect(channelId).toBe(1n)
    expect(await balance(BUILDER)).toBe(900n * MESH)
    expect(await escrow()).toBe(100n * MESH)
    const opened = await getChannel(channelId)
    expect(opened).toMatchObject({
      builder: addr(BUILDER),
      provider: addr(PROVIDER),
      deposit: 100n * MESH,
      redeemed: 0n,
      closed: false,
      closesAt: 0n,
    })

    await redeemVoucher(f.client(PROVIDER), await voucher(channelId, 30n * MESH))
    expect(await balance(PROVIDER)).toBe(30n * MESH)
    // Anyone may submit a voucher; the tokens still go to the provider.
    await redeemVoucher(f.client(STRANGER), await voucher(channelId, 75n * MESH))
    expect(await balance(PROVIDER)).toBe(75n * MESH)
    expect(await balance(STRANGER)).toBe(FUNDS)
    expect(await balance(BUILDER)).toBe(900n * MESH)
    expect(await escrow()).toBe(25n * MESH)
    expect((await getChannel(channelId)).redeemed).toBe(75n * MESH)
  })

  it('tops up a channel so that larger vouchers can be redeemed', async () => {
    const channelId = await open(100n * MESH)
    await depositChannel(f.client(BUILDER), channelId, 50n * MESH)
    expect((await getChannel(channelId)).deposit).toBe(150n * MESH)
    expect(await balance(BUILDER)).toBe(850n * MESH)
    await redeemVoucher(f.client(PROVIDER), await voucher(channelId, 140n * MESH))
    expect(await balance(PROVIDER)).toBe(140n * MESH)
    expect(await escrow()).toBe(10n * MESH)
  })

  it('refunds the rest to the builder after the close timeout and closes the channel', async () => {
    const channelId = await open(100n * MESH)
    await redeemVoucher(f.client(PROVIDER), await voucher(channelId, 40n * MESH))
    await requestChannelClose(f.client(BUILDER), channelId)
    expect((await getChannel(channelId)).closesAt).toBe(BigInt((await f.now()) + CLOSE_TIMEOUT))
    await f.advance(CLOSE_TIMEOUT)
    await withdrawChannel(f.client(BUILDER), channelId)

    expect(await balance(BUILDER)).toBe(960n * MESH)
    expect(await balance(PROVIDER)).toBe(40n * MESH)
    expect(await escrow()).toBe(0n)
    const closed = await getChannel(channelId)
    expect(closed.closed).toBe(true)
    expect(closed.deposit).toBe(40n * MESH)
    expect(closed.redeemed).toBe(40n * MESH)
  })

  it('lets the provider redeem during the close timeout', async () => {
    const channelId = await open(100n * MESH)
    const latest = await voucher(channelId, 80n * MESH)
    await requestChannelClose(f.client(BUILDER), channelId)
    await f.advance(CLOSE_TIMEOUT / 2)
    await redeemVoucher(f.client(PROVIDER), latest)
    expect(await balance(PROVIDER)).toBe(80n * MESH)
    await f.advance(CLOSE_TIMEOUT)
    await withdrawChannel(f.client(BUILDER), channelId)
    expect(await balance(BUILDER)).toBe(920n * MESH)
    expect(await balance(PROVIDER)).toBe(80n * MESH)
    expect(await escrow()).toBe(0n)
  })

  // ─── Attacks ──────────────────────────────────────────────────────────────────────────────

  it('refuses a replayed voucher and an older, smaller voucher after a larger one', async () => {
    const channelId = await open(100n * MESH)
    const v30 = await voucher(channelId, 30n * MESH)
    const v60 = await voucher(channelId, 60n * MESH)
    await redeemVoucher(f.client(PROVIDER), v30)
    await expect(redeemVoucher(f.client(PROVIDER), v30)).rejects.toMatchObject({
      code: 'VOUCHER_ALREADY_REDEEMED',
    })
    await redeemVoucher(f.client(PROVIDER), v60)
    await expect(redeemVoucher(f.client(PROVIDER), v30)).rejects.toMatchObject({
      code: 'VOUCHER_ALREADY_REDEEMED',
    })
    await expect(redeemVoucher(f.client(PROVIDER), v60)).rejects.toMatchObject({
      code: 'VOUCHER_ALREADY_REDEEMED',
    })
    expect(await balance(PROVIDER)).toBe(60n * MESH)
    expect(await escrow()).toBe(40n * MESH)
  })

  it('refuses a voucher signed by anyone but the builder', async () => {
    const channelId = await open(100n * MESH)
    for (const signer of [PROVIDER, STRANGER]) {
      await expect(
        redeemVoucher(f.client(PROVIDER), await voucher(channelId, 50n * MESH, signer)),
      ).rejects.toMatchObject({ code: 'VOUCHER_WRONG_SIGNER' })
    }
    await expect(
      redeemVoucher(f.client(PROVIDER), { channelId, cumulativeAmount: 50n * MESH, signature: '0x1234' }),
    ).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' })
    expect(await balance(PROVIDER)).toBe(0n)
    expect(await escrow()).toBe(100n * MESH)
  })

  it('refuses a voucher made for another channel, or one whose amount was raised', async () => {
    const mine = await open(100n * MESH, PROVIDER)
    const theirs = await open(100n * MESH, OTHER_PROVIDER)
    // The other provider replays a voucher of the builder's first channel on its own channel.
    const forMine = await voucher(mine, 50n * MESH)
    await expect(
      redeemVoucher(f.client(OTHER_PROVIDER), { ...forMine, channelId: theirs }),
    ).rejects.toMatchObject({ code: 'VOUCHER_WRONG_SIGNER' })
    // A provider raises the amount of a voucher it was given.
    await expect(
      redeemVoucher(f.client(PROVIDER), { ...forMine, cumulativeAmount: 90n * MESH }),
    ).rejects.toMatchObject({ code: 'VOUCHER_WRONG_SIGNER' })
    await expect(redeemVoucher(f.client(PROVIDER), { ...forMine, channelId: 99n })).rejects.toMatchObject({
      code: 'CHANNEL_UNKNOWN',
    })
    expect(await balance(OTHER_PROVIDER)).toBe(0n)
    expect(await balance(PROVIDER)).toBe(0n)
    // The voucher still pays on its own channel.
    await redeemVoucher(f.client(PROVIDER), forMine)
    expect(await balance(PROVIDER)).toBe(50n * MESH)
  })

  it('refuses a voucher above the deposit until the builder tops up', async () => {
    const channelId = await open(100n * MESH)
    const over = await voucher(channelId, 101n * MESH)
    await expect(redeemVoucher(f.client(PROVIDER), over)).rejects.toMatchObject({
      code: 'VOUCHER_EXCEEDS_DEPOSIT',
    })
    expect(await balance(PROVIDER)).toBe(0n)
    await depositChannel(f.client(BUILDER), channelId, MESH)
    await redeemVoucher(f.client(PROVIDER), over)
    expect(await balance(PROVIDER)).toBe(101n * MESH)
    expect(await escrow()).toBe(0n)
  })

  it('refuses a withdraw before the close timeout or without a close request', async () => {
    const channelId = await open(100n * MESH)
    await expect(withdrawChannel(f.client(BUILDER), channelId)).rejects.toMatchObject({
      code: 'CHANNEL_CLOSE_NOT_REQUESTED',
    })
    await requestChannelClose(f.client(BUILDER), channelId)
    await expect(withdrawChannel(f.client(BUILDER), channelId)).rejects.toMatchObject({
      code: 'CHANNEL_CLOSE_TIMEOUT',
    })
    await f.advance(CLOSE_TIMEOUT / 2)
    await expect(withdrawChannel(f.client(BUILDER), channelId)).rejects.toMatchObject({
      code: 'CHANNEL_CLOSE_TIMEOUT',
    })
    // A top-up cancels the pending close.
    await depositChannel(f.client(BUILDER), channelId, MESH)
    await f.advance(CLOSE_TIMEOUT)
    await expect(withdrawChannel(f.client(BUILDER), channelId)).rejects.toMatchObject({
      code: 'CHANNEL_CLOSE_NOT_REQUESTED',
    })
    expect(await balance(BUILDER)).toBe(899n * MESH)
    expect(await escrow()).toBe(101n * MESH)
  })

  it('refuses close, withdraw and top-up by anyone but the builder', async () => {
    const channelId = await open(100n * MESH)
    for (const i of [PROVIDER, STRANGER]) {
      await expect(requestChannelClose(f.client(i), channelId)).rejects.toMatchObject({
        code: 'CHANNEL_NOT_BUILDER',
      })
    }
    await requestChannelClose(f.client(BUILDER), channelId)
    await f.advance(CLOSE_TIMEOUT)
    for (const i of [PROVIDER, STRANGER]) {
      await expect(withdrawChannel(f.client(i), channelId)).rejects.toMatchObject({
        code: 'CHANNEL_NOT_BUILDER',
      })
    }
    await expect(depositChannel(f.client(STRANGER), channelId, MESH)).rejects.toMatchObject({
      code: 'CHANNEL_NOT_BUILDER',
    })
    expect(await balance(STRANGER)).toBe(FUNDS)
    expect(await balance(PROVIDER)).toBe(0n)
    expect(await escrow()).toBe(100n * MESH)
    await withdrawChannel(f.client(BUILDER), channelId)
    expect(await balance(BUILDER)).toBe(FUNDS)
  })

  it('refuses to redeem, top up or withdraw again once the channel is withdrawn', async () => {
    const channelId = await open(100n * MESH)
    const late = await voucher(channelId, 50n * MESH)
    await requestChannelClose(f.client(BUILDER), channelId)
    await f.advance(CLOSE_TIMEOUT)
    await withdrawChannel(f.client(BUILDER), channelId)
    expect(await balance(BUILDER)).toBe(FUNDS)

    await expect(redeemVoucher(f.client(PROVIDER), late)).rejects.toMatchObject({ code: 'CHANNEL_CLOSED' })
    await expect(withdrawChannel(f.client(BUILDER), channelId)).rejects.toMatchObject({
      code: 'CHANNEL_CLOSED',
    })
    await expect(depositChannel(f.client(BUILDER), channelId, MESH)).rejects.toMatchObject({
      code: 'CHANNEL_CLOSED',
    })
    await expect(requestChannelClose(f.client(BUILDER), channelId)).rejects.toMatchObject({
      code: 'CHANNEL_CLOSED',
    })
    expect(await balance(PROVIDER)).toBe(0n)
    expect(await balance(BUILDER)).toBe(FUNDS)
  })

  it('refuses a voucher signed for another chain id or another contract', async () => {
    const channelId = await open(100n * MESH)
    const message = { channelId, cumulativeAmount: 50n * MESH }
    const wrongChain = { ...paymentsDomain(), chainId: 1 }
    const wrongContract = { ...paymentsDomain(), verifyingContract: f.network.contracts.NodeRegistry }
    for (const domain of [wrongChain, wrongContract]) {
      const { signature } = await signMessageOf(f.account(BUILDER), domain, 'Voucher', message)
      await expect(redeemVoucher(f.client(PROVIDER), { ...message, signature })).rejects.toMatchObject({
        code: 'VOUCHER_WRONG_SIGNER',
      })
    }
    expect(await balance(PROVIDER)).toBe(0n)
    expect(await escrow()).toBe(100n * MESH)
  })

  it('refuses a channel with no deposit or no provider', async () => {
    await expect(
      openChannel(f.client(BUILDER), { provider: addr(PROVIDER), amount: 0n }),
    ).rejects.toMatchObject({
      code: 'ZERO_AMOUNT',
    })
    await expect(
      openChannel(f.client(BUILDER), { provider: zeroAddress, amount: MESH }),
    ).rejects.toMatchObject({
      code: 'ZERO_ADDRESS',
    })
    await expect(
      openChannel(f.client(PROVIDER), { provider: addr(OTHER_PROVIDER), amount: MESH }),
    ).rejects.toMatchObject({ code: 'TOKEN_INSUFFICIENT_BALANCE' })
    expect(await balance(BUILDER)).toBe(FUNDS)
    expect(await escrow()).toBe(0n)
  })
})

describe('Payments with a protocol fee', () => {
  let f: ChainFixture
  beforeAll(async () => {
    f = await startChainFixture({ paymentFeeBps: 500 })
    await f.fund(BUILDER, FUNDS)
  })
  afterAll(() => f.stop())

  it('burns 5% of every redeemed payment: the provider receives the rest, the event names the fee', async () => {
    const provider = f.account(PROVIDER).address
    const { channelId } = await openChannel(f.client(BUILDER), { provider, amount: 100n * MESH })
    const burned = () => getTokenBalance(f.client(0), '0x000000000000000000000000000000000000dEaD')
    const before = await burned()
    for (const cumulativeAmount of [30n * MESH, 75n * MESH]) {
      const { signature } = await signVoucher(f.client(0), f.account(BUILDER), {
        channelId,
        cumulativeAmount,
      })
      await redeemVoucher(f.client(PROVIDER), { channelId, cumulativeAmount, signature })
    }
    // 30 then 45 left the channel: 1.5 + 2.25 burned, 71.25 paid.
    expect(await getTokenBalance(f.client(0), provider)).toBe((7_125n * MESH) / 100n)
    expect((await burned()) - before).toBe((375n * MESH) / 100n)
    expect(await getTokenBalance(f.client(0), f.network.contracts.Payments)).toBe(25n * MESH)
    expect(f.network.parameters.paymentFeeBps).toBe(500)
    const logs = await f.client(0).public.getContractEvents({
      address: f.network.contracts.Payments,
      abi: paymentsAbi,
      eventName: 'VoucherRedeemed',
      fromBlock: 0n,
    })
    expect(logs.map((l) => (l.args as { fee: bigint }).fee)).toEqual([
      (15n * MESH) / 10n,
      (225n * MESH) / 100n,
    ])
  })
})
