import { encodeFunctionData } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import {
  type ChainClient,
  type ContractCall,
  castVote,
  createChainClient,
  type DeployParameters,
  type DevChain,
  defaultDeployParameters,
  delegateVotes,
  deployContracts,
  executeProposal,
  getVotes,
  MESH,
  type NetworkFile,
  type NetworkParamsStruct,
  propose,
  queueProposal,
  startDevChain,
  type TxResult,
  transferTokens,
} from '../../src/chain/index.js'

/** A dev chain with the contracts deployed, and a client per dev account. */
export interface ChainFixture {
  chain: DevChain
  network: NetworkFile
  /** Client of dev account i (0 is the deployer and treasury). */
  client(i: number): ChainClient
  account(i: number): ReturnType<typeof privateKeyToAccount>
  /** Moves the chain's clock forward and mines a block. */
  advance(seconds: number): Promise<void>
  mine(blocks?: number): Promise<void>
  /** Latest block timestamp. */
  now(): Promise<number>
  snapshot(): Promise<string>
  revert(id: string): Promise<void>
  fund(i: number, amount: bigint): Promise<void>
  /**
   * Makes contract calls the only way the deploy left open: a governance proposal. The deployer
   * (the treasury, with the genesis supply) delegates to itself, proposes, votes for, and after the
   * voting period and the timelock delay (moved over with `advance`) queues and executes it. Returns
   * the execute transaction.
   */
  govern(calls: readonly ContractCall[], description?: string): Promise<TxResult>
  stop(): Promise<void>
}

/**
 * Starts an in-process dev chain (also served over HTTP when `options.port` is given: other processes
 * reach it at `network.rpcUrl`) and deploys the real contracts with `overrides` on devnet defaults,
 * NetworkParams' first set `options.initialParams` (default `INITIAL_NETWORK_PARAMS`) and its
 * approved hardware makers `options.makers` (peer ids; default none).
 */
export async function startChainFixture(
  overrides: Partial<DeployParameters> = {},
  options: { port?: number; initialParams?: NetworkParamsStruct; makers?: readonly string[] } = {},
): Promise<ChainFixture> {
  const chain = await startDevChain({
    accounts: 12,
    ...(options.port === undefined ? {} : { port: options.port }),
  })
  const clients = new Map<number, ChainClient>()
  const contracts = {
    MeshToken: '0x0000000000000000000000000000000000000000',
    NodeRegistry: '0x0000000000000000000000000000000000000000',
    EpochRewards: '0x0000000000000000000000000000000000000000',
    Payments: '0x0000000000000000000000000000000000000000',
    MeshTimelock: '0x0000000000000000000000000000000000000000',
    MeshGovernor: '0x0000000000000000000000000000000000000000',
    NetworkParams: '0x0000000000000000000000000000000000000000',
  } as NetworkFile['contracts']
  const make = (i: number) => {
    const a = chain.accounts[i]
    if (!a) throw new Error(`no dev account ${i}`)
    return createChainClient({
      chainId: chain.chainId,
      contracts,
      rpc: chain.provider,
      privateKey: a.privateKey,
      pollingInterval: 10,
    })
  }
  const deployer = make(0)
  const block = await deployer.public.getBlock()
  const parameters = {
    ...defaultDeployParameters('devnet', {
      treasury: deployer.wallet.account.address,
      genesisTime: Number(block.timestamp),
    }),
    // No payment fee unless a test asks for one (the Payments fee test does): the tests of channels,
    // jobs and storage count exact amounts paid.
    paymentFeeBps: 0,
    ...overrides,
  }
  const network = await deployContracts(deployer, {
    name: 'test',
    rpcUrl: chain.url ?? 'http://127.0.0.1:8545',
    parameters,
    ...(options.initialParams === undefined ? {} : { initialParams: options.initialParams }),
    ...(options.makers === undefined ? {} : { makers: options.makers }),
  })
  Object.assign(contracts, network.contracts)
  const request = (method: string, params: unknown[] = []) => chain.provider.request({ method, params })
  let proposals = 0
  const fixture: ChainFixture = {
    chain,
    network,
    client(i) {
      let c = clients.get(i)
      if (!c) {
        c = make(i)
        clients.set(i, c)
      }
      return c
    },
    account(i) {
      const a = chain.accounts[i]
      if (!a) throw new Error(`no dev account ${i}`)
      return privateKeyToAccount(a.privateKey)
    },
    async advance(seconds) {
      await request('evm_increaseTime', [seconds])
      await request('evm_mine')
    },
    async mine(blocks = 1) {
      await request('hardhat_mine', [`0x${blocks.toString(16)}`])
    },
    async now() {
      return Number((await deployer.public.getBlock()).timestamp)
    },
    async snapshot() {
      return (await request('evm_snapshot')) as string
    },
    async revert(id) {
      await request('evm_revert', [id])
      // evm_revert restores state but not the clock's offset: mine one block right after the
      // restored head so that every test starts at the same chain time.
      const head = Number((await deployer.public.getBlock()).timestamp)
      await request('evm_mine', [head + 1])
    },
    async fund(i, amount) {
      await transferTokens(deployer, fixture.account(i).address, amount)
    },
    async govern(calls, description = 'test change') {
      const me = deployer.wallet.account.address
      if ((await getVotes(deployer, me)).delegate !== me) {
        await delegateVotes(deployer, me)
        await fixture.advance(1)
      }
      const proposal = {
        calls: calls.map((c) => ({
          target: c.address,
          data: encodeFunctionData({ abi: c.abi, functionName: c.functionName, args: c.args } as never),
        })),
        description: `${description} #${++proposals}`,
      }
      const { proposalId } = await propose(deployer, proposal)
      const p = network.parameters
      await fixture.advance(p.votingDelay + 1)
      await castVote(deployer, { proposalId, support: 'for' })
      await fixture.advance(p.votingPeriod + 1)
      await queueProposal(deployer, proposal)
      await fixture.advance(p.timelockDelay + 1)
      return executeProposal(deployer, proposal)
    },
    stop: () => chain.stop(),
  }
  return fixture
}

export { MESH }
