import fc from 'fast-check'
import { type Abi, type Hex, sha256, toHex, zeroHash } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  claim,
  claimMany,
  depositChannel,
  epochRewardsAbi,
  meshTokenAbi,
  openChannel,
  paymentsAbi,
  postRoot,
  readContract,
  redeemVoucher,
  registerVerifier,
  requestChannelClose,
  signPostRoot,
  signVoucher,
  transferTokens,
  withdrawChannel,
} from '../../src/chain/index.js'
import { isMeshworkError } from '../../src/core/errors.js'
import { buildCumulativeTree, type CumulativeTree } from '../../src/rewards/index.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'

/**
 * Model-based properties over random action sequences on the real contracts: after every action the
 * token, reward and payment-channel invariants hold on chain, and each action succeeds or fails
 * exactly as a small model predicts.
 */

type Address = `0x${string}`

const ACCOUNTS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
const VERIFIERS = [1, 2, 3]
/** Operators that appear in reward trees: the first three always, the fourth once a root adds it. */
const OPERATORS = [6, 7, 8, 9]
/** Funded in beforeAll, to open channels with. */
const BUILDERS = [4, 5, 10]
/** Submits roots (anyone may). */
const POSTER = 11
const NUM_RUNS = 25
const MAX_ACTIONS = 30
/** Room for fast-check to shrink a failure; a passing run takes far less. */
const SHRINK_TIMEOUT = 300_000

// ─── Action descriptors ─────────────────────────────────────────────────────────────────────────

const permille = fc.integer({ min: 0, max: 1000 })
const account = fc.constantFrom(...ACCOUNTS)
const rarely = fc.integer({ min: 0, max: 5 }).map((x) => x === 0)

const postAction = fc.record({
  kind: fc.constant('post' as const),
  variant: fc.oneof(
    { arbitrary: fc.constant('ok' as const), weight: 6 },
    { arbitrary: fc.constant('over' as const), weight: 1 },
    { arbitrary: fc.constant('decrease' as const), weight: 1 },
  ),
  /** Share of what the schedule released since the last root that this root hands out (‰). */
  fill: fc.oneof(permille, fc.constant(1000)),
  weights: fc.array(fc.nat(100), { minLength: 4, maxLength: 4 }),
  grow: fc.boolean(),
  signers: fc.subarray(VERIFIERS, { minLength: 2 }),
  extraSeconds: fc.nat(20),
})
const mineAction = fc.record({ kind: fc.constant('mine' as const), blocks: fc.integer({ min: 1, max: 5 }) })
const advanceAction = fc.record({
  kind: fc.constant('advance' as const),
  seconds: fc.integer({ min: 1, max: 40 }),
})
const claimAction = fc.record({
  kind: fc.constant('claim' as const),
  operator: fc.nat(3),
  /** Prove against the root before the newest (still accepted by the contract). */
  older: fc.boolean(),
  via: account,
})
const claimManyAction = fc.record({
  kind: fc.constant('claimMany' as const),
  operators: fc.subarray([0, 1, 2, 3], { minLength: 1 }),
  older: fc.boolean(),
  via: account,
})
const transferAction = fc.record({
  kind: fc.constant('transfer' as const),
  from: account,
  to: account,
  share: permille,
  overdraw: rarely,
})
const openAction = fc.record({
  kind: fc.constant('open' as const),
  // Mostly the funded builders; sometimes an account that may hold nothing.
  builder: fc.oneof(
    { arbitrary: fc.constantFrom(...BUILDERS), weight: 4 },
    fc.constantFrom(...ACCOUNTS.slice(1)),
  ),
  provider: account,
  share: permille,
  overdraw: rarely,
})
const redeemAction = fc.record({
  kind: fc.constant('redeem' as const),
  channel: fc.nat(),
  mode: fc.oneof(
    { arbitrary: fc.constant('ok' as const), weight: 5 },
    { arbitrary: fc.constant('replay' as const), weight: 1 },
    { arbitrary: fc.constant('exceed' as const), weight: 1 },
    { arbitrary: fc.constant('wrongSigner' as const), weight: 1 },
  ),
  share: permille,
  via: account,
})
const topUpAction = fc.record({
  kind: fc.constant('topUp' as const),
  channel: fc.nat(),
  share: permille,
})
const closeAction = fc.record({ kind: fc.constant('close' as const), channel: fc.nat(), wait: fc.boolean() })

const actionArb = fc.oneof(
  { arbitrary: postAction, weight: 5 },
  { arbitrary: mineAction, weight: 1 },
  { arbitrary: advanceAction, weight: 1 },
  { arbitrary: claimAction, weight: 4 },
  { arbitrary: claimManyAction, weight: 2 },
  { arbitrary: transferAction, weight: 2 },
  { arbitrary: openAction, weight: 3 },
  { arbitrary: redeemAction, weight: 3 },
  { arbitrary: topUpAction, weight: 1 },
  { arbitrary: closeAction, weight: 1 },
)
type Action = typeof actionArb extends fc.Arbitrary<infer A> ? A : never

// ─── Model ──────────────────────────────────────────────────────────────────────────────────────

interface Posted {
  epoch: bigint
  tree: CumulativeTree
  accounts: Address[]
  total: bigint
}

interface Model {
  /** Roots accepted on chain, oldest first. */
  posted: Posted[]
  /** Each operator's cumulative amount in the newest root. */
  cumulative: Map<Address, bigint>
  nextEpoch: bigint
  /** Channels opened in this run. */
  channels: bigint[]
}

interface ChannelState {
  builder: Address
  closesAt: bigint
  closed: boolean
  provider: Address
  deposit: bigint
  redeemed: bigint
}

interface PostedRootState {
  root: Hex
  totalCumulative: bigint
  epoch: bigint
  claimableAt: bigint
}

/** What an action came to: 'ok', or the error code it was refused with. */
async function outcome(attempt: Promise<unknown>): Promise<string> {
  try {
    await attempt
    return 'ok'
  } catch (err) {
    if (isMeshworkError(err)) return err.code
    throw err
  }
}

const CLAIM_TOLERATED = ['ok', 'CLAIM_NO_ROOT', 'CLAIM_NOTHING_TO_CLAIM']

describe('contract invariants under random action sequences', () => {
  let f: ChainFixture
  let clean: string
  let stake: bigint
  let closeTimeout: number
  const addr = (i: number): Address => f.account(i).address

  beforeAll(async () => {
    f = await startChainFixture({ quorum: 2, disputeWindow: 1 })
    stake = BigInt(f.network.parameters.minVerifierStake)
    closeTimeout = f.network.parameters.closeTimeout
    for (const i of VERIFIERS) {
      await f.fund(i, stake)
      await registerVerifier(f.client(i), { peerId: toHex(`verifier-${i}`), stake })
    }
    // Some spending money for channel builders and transfers.
    for (const i of BUILDERS) await f.fund(i, 1_000n * MESH)
    clean = await f.snapshot()
  })
  afterAll(() => f?.stop())

  const read = <T>(address: Address, abi: Abi, functionName: string, args: readonly unknown[] = []) =>
    readContract<T>(f.client(0), { address, abi, functionName, args })
  const rewards = <T>(functionName: string, args: readonly unknown[] = []) =>
    read<T>(f.network.contracts.EpochRewards, epochRewardsAbi, functionName, args)
  const token = <T>(functionName: string, args: readonly unknown[] = []) =>
    read<T>(f.network.contracts.MeshToken, meshTokenAbi, functionName, args)
  const payments = <T>(functionName: string, args: readonly unknown[] = []) =>
    read<T>(f.network.contracts.Payments, paymentsAbi, functionName, args)
  const balanceOf = (a: Address) => token<bigint>('balanceOf', [a])
  const channelOf = (id: bigint) => payments<ChannelState>('getChannel', [id])

  /** Invariants (a)-(d), plus EpochRewards holding exactly what was minted and not yet claimed. */
  async function checkInvariants(model: Model, after: string) {
    const c = f.network.contracts
    const holders = [...ACCOUNTS.map(addr), c.MeshToken, c.NodeRegistry, c.EpochRewards, c.Payments]
    const [supply, maxSupply, minted, latest, nextEpoch, count, balances, claimed] = await Promise.all([
      token<bigint>('totalSupply'),
      token<bigint>('maxSupply'),
      rewards<bigint>('totalMinted'),
      rewards<readonly [Hex, bigint, bigint, bigint]>('latestRoot').then(
        ([root, epoch, totalCumulative, claimableAt]): PostedRootState => ({
          root,
          epoch,
          totalCumulative,
          claimableAt,
        }),
      ),
      rewards<bigint>('nextEpoch'),
      payments<bigint>('channelCount'),
      Promise.all(holders.map(balanceOf)),
      Promise.all(ACCOUNTS.map((i) => rewards<bigint>('claimed', [addr(i)]))),
    ])
    const sum = (xs: readonly bigint[]) => xs.reduce((a, b) => a + b, 0n)
    const balance = (a: Address) => balances[holders.indexOf(a)] as bigint
    const msg = `after ${after}`

    // (a) The cap holds.
    expect(supply <= maxSupply, msg).toBe(true)

    // (b) claimed <= minted <= newest root's total <= released through its epoch.
    const totalClaimed = sum(claimed)
    expect(totalClaimed <= minted, msg).toBe(true)
    expect(minted <= latest.totalCumulative, msg).toBe(true)
    if (latest.root === zeroHash) {
      expect(minted, msg).toBe(0n)
    } else {
      const emitted = await rewards<bigint>('emittedThrough', [latest.epoch])
      expect(latest.totalCumulative <= emitted, msg).toBe(true)
    }
    expect(balance(c.EpochRewards), msg).toBe(minted - totalClaimed)

    // (c) Conservation: every token is held by a dev account or a contract.
    expect(sum(balances), msg).toBe(supply)

    // (d) Payments holds exactly the unredeemed deposits of open channels.
    const channels = await Promise.all(
      Array.from({ length: Number(count) }, (_, k) => channelOf(BigInt(k + 1))),
    )
    const owed = sum(channels.filter((ch) => !ch.closed).map((ch) => ch.deposit - ch.redeemed))
    expect(balance(c.Payments), msg).toBe(owed)

    // The chain agrees with the model.
    const newest = model.posted.at(-1)
    expect(nextEpoch, msg).toBe(model.nextEpoch)
    expect(latest.root, msg).toBe(newest?.tree.root ?? zeroHash)
    expect(minted, msg).toBe(newest?.total ?? 0n)
    expect(count, msg).toBe(BigInt(model.channels.length))
  }

  // ─── Actions ──────────────────────────────────────────────────────────────────────────────────

  async function post(model: Model, a: Extract<Action, { kind: 'post' }>) {
    const epoch = model.nextEpoch
    const end = await rewards<bigint>('epochEnd', [epoch])
    const now = BigInt(await f.now())
    if (now < end) await f.advance(Number(end - now) + a.extraSeconds)
    expect(BigInt(await f.now()) >= end).toBe(true)

    const emitted = await rewards<bigint>('emittedThrough', [epoch])
    const prevTotal = model.posted.at(-1)?.total ?? 0n
    const budget = emitted - prevTotal
    expect(budget >= 0n).toBe(true)

    const already = model.posted.at(-1)?.accounts.length ?? 3
    const accounts = OPERATORS.slice(0, Math.max(already, a.grow ? 4 : 3)).map(addr)
    const previous = accounts.map((x) => model.cumulative.get(x) ?? 0n)
    const amounts = [...previous]
    let variant = a.variant
    if (variant === 'decrease' && prevTotal === 0n) variant = 'ok'

    if (variant === 'decrease') {
      // Lower the largest amount by a share of it: the total shrinks.
      let k = 0
      for (let j = 1; j < amounts.length; j++) if ((amounts[j] as bigint) > (amounts[k] as bigint)) k = j
      const top = amounts[k] as bigint
      amounts[k] = top - 1n - ((top - 1n) * BigInt(a.fill)) / 1000n
    } else {
      // Hand out a share of the budget by weight; 'over' hands out more than the budget.
      const spend =
        variant === 'over'
          ? budget + 1n + (budget * BigInt(a.fill)) / 1000n
          : (budget * BigInt(a.fill)) / 1000n
      const weights = accounts.map((_, j) => BigInt(a.weights[j] ?? 0))
      const w = weights.reduce((x, y) => x + y, 0n)
      let given = 0n
      for (let j = 0; j < amounts.length; j++) {
        const inc = w === 0n ? 0n : (spend * (weights[j] as bigint)) / w
        amounts[j] = (amounts[j] as bigint) + inc
        given += inc
      }
      amounts[0] = (amounts[0] as bigint) + (spend - given)
    }
    const total = amounts.reduce((x, y) => x + y, 0n)
    const tree = buildCumulativeTree(
      accounts.map((account, j) => ({ account, cumulativeAmount: amounts[j] as bigint })),
    )
    const message = {
      epoch,
      root: tree.root,
      bundleDigest: sha256(toHex(`bundle-epoch-${epoch}`)),
      totalCumulative: total,
      revocations: 0,
    }
    const signatures = await Promise.all(
      a.signers.map((i) => signPostRoot(f.client(0), f.account(i), message)),
    )
    const rewardsBefore = await balanceOf(f.network.contracts.EpochRewards)
    const got = await outcome(postRoot(f.client(POSTER), { ...message, signatures }))

    const expected =
      total < prevTotal ? 'ROOT_CUMULATIVE_DECREASED' : total > emitted ? 'ROOT_EMISSION_EXCEEDED' : 'ok'
    expect(got, `post ${variant}: total ${total}, previous ${prevTotal}, emitted ${emitted}`).toBe(expected)
    if (got !== 'ok') return
    model.posted.push({ epoch, tree, accounts, total })
    for (const [j, account] of accounts.entries()) model.cumulative.set(account, amounts[j] as bigint)
    model.nextEpoch = epoch + 1n
    expect(await balanceOf(f.network.contracts.EpochRewards)).toBe(rewardsBefore + total - prevTotal)
  }

  /** The root a claim proves against, and which operator accounts it has leaves for. */
  function claimTree(model: Model, older: boolean): Posted | undefined {
    const n = model.posted.length
    return older && n >= 2 ? model.posted[n - 2] : model.posted[n - 1]
  }

  async function leafFor(model: Model, older: boolean, operator: number) {
    const posted = claimTree(model, older)
    // Before any root, claim with a made-up leaf: there is nothing to prove it against.
    const accounts = posted?.accounts ?? OPERATORS.slice(0, 3).map(addr)
    const account = accounts[operator % accounts.length] as Address
    const tree = posted?.tree ?? buildCumulativeTree([{ account, cumulativeAmount: 1n }])
    const leaf = tree.proof(account)
    if (!leaf) throw new Error(`no leaf for ${account}`)
    return { account, ...leaf }
  }

  async function doClaim(model: Model, a: Extract<Action, { kind: 'claim' }>) {
    const leaf = await leafFor(model, a.older, a.operator)
    const [already, before] = await Promise.all([
      rewards<bigint>('claimed', [leaf.account]),
      balanceOf(leaf.account),
    ])
    const got = await outcome(claim(f.client(a.via), leaf))
    expect(CLAIM_TOLERATED).toContain(got)
    const expected =
      model.posted.length === 0
        ? 'CLAIM_NO_ROOT'
        : leaf.cumulativeAmount <= already
          ? 'CLAIM_NOTHING_TO_CLAIM'
          : 'ok'
    expect(got).toBe(expected)
    if (got !== 'ok') return
    expect(await rewards<bigint>('claimed', [leaf.account])).toBe(leaf.cumulativeAmount)
    expect(await balanceOf(leaf.account)).toBe(before + leaf.cumulativeAmount - already)
  }

  async function doClaimMany(model: Model, a: Extract<Action, { kind: 'claimMany' }>) {
    const leaves = await Promise.all(a.operators.map((k) => leafFor(model, a.older, k)))
    // Operators beyond the tree's size wrap around; keep each account once.
    const unique = leaves.filter((l, k) => leaves.findIndex((m) => m.account === l.account) === k)
    const already = await Promise.all(unique.map((l) => rewards<bigint>('claimed', [l.account])))
    const got = await outcome(claimMany(f.client(a.via), unique))
    expect(CLAIM_TOLERATED).toContain(got)
    const expected =
      model.posted.length === 0
        ? 'CLAIM_NO_ROOT'
        : unique.some((l, k) => l.cumulativeAmount <= (already[k] as bigint))
          ? 'CLAIM_NOTHING_TO_CLAIM'
          : 'ok'
    expect(got).toBe(expected)
    if (got !== 'ok') return
    for (const l of unique) expect(await rewards<bigint>('claimed', [l.account])).toBe(l.cumulativeAmount)
  }

  async function doTransfer(a: Extract<Action, { kind: 'transfer' }>) {
    const [from, to] = [addr(a.from), addr(a.to)]
    const balance = await balanceOf(from)
    const amount = a.overdraw
      ? balance + 1n + (balance * BigInt(a.share)) / 1000n
      : (balance * BigInt(a.share)) / 1000n
    const toBefore = await balanceOf(to)
    const got = await outcome(transferTokens(f.client(a.from), to, amount))
    expect(got).toBe(amount > balance ? 'TOKEN_INSUFFICIENT_BALANCE' : 'ok')
    if (got === 'ok' && from !== to) expect(await balanceOf(to)).toBe(toBefore + amount)
  }

  async function doOpen(model: Model, a: Extract<Action, { kind: 'open' }>) {
    const balance = await balanceOf(addr(a.builder))
    const amount = a.overdraw ? balance + 1n : (balance * BigInt(a.share)) / 1000n
    const got = await outcome(openChannel(f.client(a.builder), { provider: addr(a.provider), amount }))
    expect(got).toBe(amount === 0n ? 'ZERO_AMOUNT' : amount > balance ? 'TOKEN_INSUFFICIENT_BALANCE' : 'ok')
    if (got !== 'ok') return
    const id = BigInt(model.channels.length + 1)
    model.channels.push(id)
    const ch = await channelOf(id)
    expect(ch.builder).toBe(addr(a.builder))
    expect(ch.deposit).toBe(amount)
  }

  function pickChannel(model: Model, k: number): bigint | undefined {
    return model.channels.length === 0 ? undefined : model.channels[k % model.channels.length]
  }

  async function doRedeem(model: Model, a: Extract<Action, { kind: 'redeem' }>) {
    const id = pickChannel(model, a.channel)
    if (id === undefined) return
    const ch = await channelOf(id)
    const open = ch.deposit - ch.redeemed
    const cumulative =
      a.mode === 'replay'
        ? (ch.redeemed * BigInt(a.share)) / 1000n
        : a.mode === 'exceed'
          ? ch.deposit + 1n + BigInt(a.share)
          : ch.redeemed + 1n + ((open === 0n ? 0n : open - 1n) * BigInt(a.share)) / 1000n
    const builderIndex = ACCOUNTS.find((i) => addr(i) === ch.builder) as number
    const signerIndex = a.mode === 'wrongSigner' ? (builderIndex + 1) % ACCOUNTS.length : builderIndex
    const { signature } = await signVoucher(f.client(0), f.account(signerIndex), {
      channelId: id,
      cumulativeAmount: cumulative,
    })
    const before = await balanceOf(ch.provider)
    const got = await outcome(
      redeemVoucher(f.client(a.via), { channelId: id, cumulativeAmount: cumulative, signature }),
    )
    const expected = ch.closed
      ? 'CHANNEL_CLOSED'
      : signerIndex !== builderIndex
        ? 'VOUCHER_WRONG_SIGNER'
        : cumulative <= ch.redeemed
          ? 'VOUCHER_ALREADY_REDEEMED'
          : cumulative > ch.deposit
            ? 'VOUCHER_EXCEEDS_DEPOSIT'
            : 'ok'
    expect(
      got,
      `redeem ${cumulative} on ${JSON.stringify(ch, (_, v) => (typeof v === 'bigint' ? `${v}` : v))}`,
    ).toBe(expected)
    if (got !== 'ok') return
    expect(await balanceOf(ch.provider)).toBe(before + cumulative - ch.redeemed)
    expect((await channelOf(id)).redeemed).toBe(cumulative)
  }

  async function doTopUp(model: Model, a: Extract<Action, { kind: 'topUp' }>) {
    const id = pickChannel(model, a.channel)
    if (id === undefined) return
    const ch = await channelOf(id)
    const builder = ACCOUNTS.find((i) => addr(i) === ch.builder) as number
    const amount = ((await balanceOf(ch.builder)) * BigInt(a.share)) / 1000n
    const got = await outcome(depositChannel(f.client(builder), id, amount))
    expect(got).toBe(amount === 0n ? 'ZERO_AMOUNT' : ch.closed ? 'CHANNEL_CLOSED' : 'ok')
    if (got !== 'ok') return
    const after = await channelOf(id)
    expect(after.deposit).toBe(ch.deposit + amount)
    expect(after.closesAt).toBe(0n)
  }

  async function doClose(model: Model, a: Extract<Action, { kind: 'close' }>) {
    const id = pickChannel(model, a.channel)
    if (id === undefined) return
    const ch = await channelOf(id)
    const builder = ACCOUNTS.find((i) => addr(i) === ch.builder) as number
    const requested = await outcome(requestChannelClose(f.client(builder), id))
    expect(requested).toBe(ch.closed ? 'CHANNEL_CLOSED' : 'ok')
    if (requested !== 'ok') return
    if (a.wait) await f.advance(closeTimeout)
    const before = await balanceOf(ch.builder)
    const got = await outcome(withdrawChannel(f.client(builder), id))
    expect(got).toBe(a.wait ? 'ok' : 'CHANNEL_CLOSE_TIMEOUT')
    if (got !== 'ok') return
    expect(await balanceOf(ch.builder)).toBe(before + ch.deposit - ch.redeemed)
    expect((await channelOf(id)).closed).toBe(true)
  }

  async function apply(model: Model, a: Action) {
    switch (a.kind) {
      case 'post':
        return post(model, a)
      case 'mine':
        return f.mine(a.blocks)
      case 'advance':
        return f.advance(a.seconds)
      case 'claim':
        return doClaim(model, a)
      case 'claimMany':
        return doClaimMany(model, a)
      case 'transfer':
        return doTransfer(a)
      case 'open':
        return doOpen(model, a)
      case 'redeem':
        return doRedeem(model, a)
      case 'topUp':
        return doTopUp(model, a)
      case 'close':
        return doClose(model, a)
    }
  }

  it(
    'keeps supply, reward and channel invariants after every action',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(actionArb, { minLength: 1, maxLength: MAX_ACTIONS, size: 'max' }),
          async (actions) => {
            await f.revert(clean)
            clean = await f.snapshot()
            const model: Model = { posted: [], cumulative: new Map(), nextEpoch: 0n, channels: [] }
            await checkInvariants(model, 'start')
            for (const [k, a] of actions.entries()) {
              await apply(model, a)
              await checkInvariants(model, `action ${k} (${a.kind})`)
            }
          },
        ),
        { numRuns: NUM_RUNS },
      )
    },
    SHRINK_TIMEOUT,
  )
})
