import { encodeFunctionData, parseAbiItem, zeroAddress } from 'viem'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  castVote,
  delegateVotes,
  encodeGovernableChanges,
  epochRewardsAbi,
  executeProposal,
  getGovernableValues,
  getNetworkParams,
  getNetworkParamsHistory,
  getProposal,
  getVotes,
  INITIAL_NETWORK_PARAMS,
  listProposals,
  meshGovernorAbi,
  meshTimelockAbi,
  type NetworkParamsStruct,
  networkParamsAbi,
  nodeRegistryAbi,
  type ProposalRecord,
  paramsToValues,
  parseGovernableSettings,
  propose,
  queueProposal,
  readContract,
  sendContractTx,
  toRewardParams,
} from '../../src/chain/index.js'
import { DEFAULT_REWARD_PARAMS } from '../../src/rewards/index.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'

/** Holds 1 million MESH: above the proposal threshold, far below the 4% quorum (16 million). */
const SMALL = 1
const OUTSIDER = 2

describe('governance on the embedded chain', () => {
  let f: ChainFixture
  let clean: string
  let p: ChainFixture['network']['parameters']

  beforeAll(async () => {
    f = await startChainFixture()
    p = f.network.parameters
    await f.fund(SMALL, 1_000_000n * MESH)
    await delegateVotes(f.client(0), f.account(0).address)
    await delegateVotes(f.client(SMALL), f.account(SMALL).address)
    await f.advance(1)
    clean = await f.snapshot()
  })
  afterAll(() => f.stop())
  beforeEach(async () => {
    await f.revert(clean)
    clean = await f.snapshot()
  })

  const c = () => f.network.contracts
  const read = <T>(
    address: `0x${string}`,
    abi: readonly unknown[],
    functionName: string,
    args: unknown[] = [],
  ) => readContract<T>(f.client(0), { address, abi: abi as never, functionName, args })

  /** A proposal of `settings` (KEY=VALUE) made by account `i`. */
  async function proposeSettings(i: number, settings: string[], description: string) {
    const { calls } = encodeGovernableChanges(
      await getGovernableValues(f.client(0)),
      parseGovernableSettings(settings),
      c(),
    )
    const proposal = { calls, description }
    const { proposalId } = await propose(f.client(i), proposal)
    return { ...proposal, proposalId }
  }
  const state = async (id: bigint) => (await getProposal(f.client(0), id)).state

  it('leaves no key with power after deploy: the timelock owns every parameter and is its own only admin', async () => {
    const timelock = c().MeshTimelock
    for (const [address, abi] of [
      [c().NodeRegistry, nodeRegistryAbi],
      [c().EpochRewards, epochRewardsAbi],
      [c().NetworkParams, networkParamsAbi],
    ] as const) {
      expect(await read<string>(address, abi, 'owner')).toBe(timelock)
    }
    const role = (name: string) => read<`0x${string}`>(timelock, meshTimelockAbi, name)
    const [admin, proposer, canceller, executor] = await Promise.all(
      ['DEFAULT_ADMIN_ROLE', 'PROPOSER_ROLE', 'CANCELLER_ROLE', 'EXECUTOR_ROLE'].map(role),
    )
    // Every account that was ever granted the admin role, minus those it was revoked from.
    const granted = await f.client(0).public.getLogs({
      address: timelock,
      event: parseAbiItem(
        'event RoleGranted(bytes32 indexed role, address indexed account, address indexed sender)',
      ),
      args: { role: admin },
      fromBlock: 0n,
      strict: true,
    })
    const holders = []
    for (const log of granted) {
      if (await read<boolean>(timelock, meshTimelockAbi, 'hasRole', [admin, log.args.account]))
        holders.push(log.args.account)
    }
    expect(holders).toEqual([timelock])
    expect(await read<boolean>(timelock, meshTimelockAbi, 'hasRole', [admin, f.account(0).address])).toBe(
      false,
    )
    for (const r of [proposer, canceller]) {
      expect(await read<boolean>(timelock, meshTimelockAbi, 'hasRole', [r, c().MeshGovernor])).toBe(true)
      expect(await read<boolean>(timelock, meshTimelockAbi, 'hasRole', [r, f.account(0).address])).toBe(false)
    }
    // Anyone may execute what passed and waited out the delay.
    expect(await read<boolean>(timelock, meshTimelockAbi, 'hasRole', [executor, zeroAddress])).toBe(true)
    expect(await read<bigint>(timelock, meshTimelockAbi, 'getMinDelay')).toBe(BigInt(p.timelockDelay))
    expect(await read<string>(c().MeshGovernor, meshGovernorAbi, 'CLOCK_MODE')).toBe('mode=timestamp')
  })

  it('starts NetworkParams at the reward function defaults (version 1, from epoch 0)', async () => {
    const now = await getNetworkParams(f.client(0))
    expect(now).toMatchObject({ version: 1, fromEpoch: 0n, params: INITIAL_NETWORK_PARAMS })
    // No maker approved at deploy unless the deploy names some (test/integration/network-params-makers.test.ts).
    expect(toRewardParams(now)).toEqual({
      ...DEFAULT_REWARD_PARAMS,
      hardware: { makers: [], linearBps: 5_000 },
    })
  })

  it('runs a proposal through its whole life: the new emission split applies from the next epoch', async () => {
    const proposal = await proposeSettings(
      SMALL,
      ['weights.uptime=3500', 'weights.compute=3000', 'weights.storage=2500'],
      'Storage gets 25%',
    )
    expect(proposal.calls).toHaveLength(1)
    expect(await state(proposal.proposalId)).toBe('pending')
    await expect(
      castVote(f.client(0), { proposalId: proposal.proposalId, support: 'for' }),
    ).rejects.toMatchObject({
      code: 'GOV_PROPOSAL_STATE',
      message: expect.stringContaining('is pending'),
    })
    await f.advance(p.votingDelay + 1)
    expect(await state(proposal.proposalId)).toBe('active')
    await castVote(f.client(0), { proposalId: proposal.proposalId, support: 'for' })
    await castVote(f.client(SMALL), {
      proposalId: proposal.proposalId,
      support: 'against',
      reason: 'too much',
    })
    await expect(
      castVote(f.client(0), { proposalId: proposal.proposalId, support: 'for' }),
    ).rejects.toMatchObject({
      code: 'GOV_ALREADY_VOTED',
    })
    await expect(queueProposal(f.client(OUTSIDER), proposal)).rejects.toMatchObject({
      code: 'GOV_PROPOSAL_STATE',
    })
    await f.advance(p.votingPeriod + 1)
    const passed = await getProposal(f.client(0), proposal.proposalId)
    expect(passed).toMatchObject({ state: 'succeeded', votes: { against: 1_000_000n * MESH } })
    expect(passed.votes.for).toBeGreaterThan(passed.quorum ?? 0n)

    // Anyone may queue and execute; execution waits out the timelock delay.
    await queueProposal(f.client(OUTSIDER), proposal)
    const queued = await getProposal(f.client(0), proposal.proposalId)
    expect(queued.state).toBe('queued')
    expect(queued.eta).toBeGreaterThanOrEqual(queued.now + BigInt(p.timelockDelay) - 1n)
    await expect(executeProposal(f.client(OUTSIDER), proposal)).rejects.toMatchObject({
      code: 'GOV_TIMELOCK_NOT_READY',
    })
    await f.advance(p.timelockDelay + 1)
    const tx = await executeProposal(f.client(OUTSIDER), proposal)
    expect(await state(proposal.proposalId)).toBe('executed')

    // The change applies from the epoch after the one it executed in; that epoch keeps the old set.
    const executedIn = (await getNetworkParams(f.client(0))).epoch
    expect(tx.receipt.blockNumber).toBeGreaterThan(0n)
    const history = await getNetworkParamsHistory(f.client(0))
    expect(history.map((v) => [v.version, v.fromEpoch])).toEqual([
      [1, 0n],
      [2, executedIn + 1n],
    ])
    const old = await getNetworkParams(f.client(0), { epoch: executedIn })
    const next = await getNetworkParams(f.client(0), { epoch: executedIn + 1n })
    expect(old).toMatchObject({ version: 1, params: INITIAL_NETWORK_PARAMS })
    expect(next).toMatchObject({
      version: 2,
      fromEpoch: executedIn + 1n,
      params: {
        ...INITIAL_NETWORK_PARAMS,
        uptimeWeightBps: 3_500,
        computeWeightBps: 3_000,
        storageWeightBps: 2_500,
      },
    })
    expect(await read<number>(c().NetworkParams, networkParamsAbi, 'versionAt', [executedIn + 100n])).toBe(2)
    expect(toRewardParams(next).serviceWeightsBps).toEqual({
      uptime: 3_500,
      compute: 3_000,
      storage: 2_500,
      relay: 500,
      sensor: 500,
    })
    // Once the chain is in that epoch, it is the set in force.
    await f.advance(p.epochDuration)
    expect((await getNetworkParams(f.client(0))).version).toBe(2)

    const listed = await listProposals(f.client(0), { fromBlock: BigInt(f.network.deployBlock) })
    expect(listed.map((r: ProposalRecord) => [r.proposalId, r.description, r.proposer])).toEqual([
      [proposal.proposalId, 'Storage gets 25%', f.account(SMALL).address],
    ])
  })

  it('defeats a proposal below quorum, and one with more votes against than for', async () => {
    const lonely = await proposeSettings(SMALL, ['rewards.disputeWindow=5'], 'Longer disputes')
    const contested = await proposeSettings(SMALL, ['rewards.disputeWindow=6'], 'Even longer disputes')
    await f.advance(p.votingDelay + 1)
    await castVote(f.client(SMALL), { proposalId: lonely.proposalId, support: 'for' })
    await castVote(f.client(SMALL), { proposalId: contested.proposalId, support: 'for' })
    await castVote(f.client(0), { proposalId: contested.proposalId, support: 'against' })
    await f.advance(p.votingPeriod + 1)
    const below = await getProposal(f.client(0), lonely.proposalId)
    expect(below.state).toBe('defeated')
    // 4% of the 400 million MESH supply at the snapshot.
    expect(below.quorum).toBe(16_000_000n * MESH)
    expect(below.votes.for).toBeLessThan(below.quorum ?? 0n)
    expect(await state(contested.proposalId)).toBe('defeated')
    for (const proposal of [lonely, contested]) {
      await expect(queueProposal(f.client(0), proposal)).rejects.toMatchObject({
        code: 'GOV_PROPOSAL_STATE',
        message: expect.stringContaining('is defeated'),
      })
    }
    expect(await read<number>(c().EpochRewards, epochRewardsAbi, 'disputeWindow')).toBe(p.disputeWindow)
  })

  it('refuses a proposal from an account without enough delegated votes', async () => {
    await f.fund(OUTSIDER, 10_000n * MESH)
    // Not delegated: 10,000 MESH held, no votes.
    expect((await getVotes(f.client(0), f.account(OUTSIDER).address)).votes).toBe(0n)
    await expect(proposeSettings(OUTSIDER, ['rewards.disputeWindow=5'], 'x')).rejects.toMatchObject({
      code: 'GOV_PROPOSER_VOTES_TOO_LOW',
    })
  })

  it('refuses every direct parameter change, by the deployer or anyone else', async () => {
    const direct: [`0x${string}`, readonly unknown[], string, unknown[]][] = [
      [c().NetworkParams, networkParamsAbi, 'setParams', [1, INITIAL_NETWORK_PARAMS]],
      [c().NetworkParams, networkParamsAbi, 'setMakers', [1, []]],
      [c().NodeRegistry, nodeRegistryAbi, 'setMinNodeStake', [MESH]],
      [c().NodeRegistry, nodeRegistryAbi, 'setMinVerifierStake', [MESH]],
      [c().NodeRegistry, nodeRegistryAbi, 'setUnbondingPeriod', [0n]],
      [c().NodeRegistry, nodeRegistryAbi, 'setVerifierLimits', [1, 21]],
      [c().NodeRegistry, nodeRegistryAbi, 'transferOwnership', [f.account(0).address]],
      [c().EpochRewards, epochRewardsAbi, 'setDisputeWindow', [0]],
      [c().MeshGovernor, meshGovernorAbi, 'setVotingPeriod', [1]],
      [c().MeshGovernor, meshGovernorAbi, 'updateQuorumNumerator', [1n]],
      [c().MeshTimelock, meshTimelockAbi, 'updateDelay', [0n]],
    ]
    for (const who of [0, OUTSIDER]) {
      for (const [address, abi, functionName, args] of direct) {
        await expect(
          sendContractTx(f.client(who), { address, abi: abi as never, functionName, args }),
          `${functionName} by account ${who}`,
        ).rejects.toMatchObject({ code: 'NOT_OWNER' })
      }
      // Nor can anyone but the governor schedule an operation in the timelock.
      const data = encodeFunctionData({ abi: epochRewardsAbi, functionName: 'setDisputeWindow', args: [0] })
      const zero = `0x${'0'.repeat(64)}` as const
      await expect(
        sendContractTx(f.client(who), {
          address: c().MeshTimelock,
          abi: meshTimelockAbi,
          functionName: 'schedule',
          args: [c().EpochRewards, 0n, data, zero, zero, BigInt(p.timelockDelay)],
        }),
      ).rejects.toMatchObject({ code: 'NOT_OWNER' })
    }
  })

  it('refuses weights that do not sum to 100%, in the CLI encoder and in the contract', async () => {
    expect(() =>
      encodeGovernableChanges(
        { values: paramsToValues(INITIAL_NETWORK_PARAMS), paramsVersion: 1 },
        parseGovernableSettings(['weights.uptime=5000']),
        c(),
      ),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
    const bad: NetworkParamsStruct = { ...INITIAL_NETWORK_PARAMS, uptimeWeightBps: 5_000 }
    await expect(
      f.govern([
        { address: c().NetworkParams, abi: networkParamsAbi, functionName: 'setParams', args: [1, bad] },
      ]),
    ).rejects.toMatchObject({
      code: 'PARAMS_WEIGHTS_SUM',
      message: 'execute: the service weights sum to 11000 bps, not 10000',
    })
    expect((await getNetworkParamsHistory(f.client(0))).length).toBe(1)
  })

  it('refuses a parameter set built on a version another proposal has replaced', async () => {
    const first = await proposeSettings(0, ['sensor.cellCapacity=7'], 'Seven sensors a cell')
    const second = await proposeSettings(0, ['uptime.vettingEpochs=5'], 'Vet for five epochs')
    await f.advance(p.votingDelay + 1)
    for (const proposal of [first, second])
      await castVote(f.client(0), { proposalId: proposal.proposalId, support: 'for' })
    await f.advance(p.votingPeriod + 1)
    for (const proposal of [first, second]) await queueProposal(f.client(0), proposal)
    await f.advance(p.timelockDelay + 1)
    await executeProposal(f.client(0), first)
    await expect(executeProposal(f.client(0), second)).rejects.toMatchObject({ code: 'PARAMS_VERSION_STALE' })
    const latest = (await getNetworkParamsHistory(f.client(0))).at(-1)
    expect(latest?.params).toMatchObject({ sensorCellCapacity: 7, vettingEpochs: 3 })
  })
})
