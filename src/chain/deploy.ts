import { type Abi, getAddress, getContractAddress, type Hex, zeroAddress } from 'viem'
import { InvalidArgumentError } from '../core/errors.js'
import { totalEmission } from '../rewards/emission.js'
import {
  epochRewardsAbi,
  epochRewardsBytecode,
  meshGovernorAbi,
  meshGovernorBytecode,
  meshTimelockAbi,
  meshTimelockBytecode,
  meshTokenAbi,
  meshTokenBytecode,
  networkParamsAbi,
  networkParamsBytecode,
  nodeRegistryAbi,
  nodeRegistryBytecode,
  paymentsAbi,
  paymentsBytecode,
} from './abi/index.js'
import { type ChainClient, createChainClient, NO_CONTRACTS, probeChainId } from './client.js'
import type { Eip1193Provider } from './dev-chain.js'
import { chainError } from './errors.js'
import { makerKeysOf } from './maker-key.js'
import { type DeployParameters, deployParametersSchema, type NetworkFile } from './network-file.js'
import { INITIAL_NETWORK_PARAMS, type NetworkParamsStruct } from './network-params.js'
import { readContract, sendContractTx, toChainError } from './transact.js'

/** One whole token in base units (18 decimals). */
export const MESH = 10n ** 18n

/** Which defaults {@link defaultDeployParameters} starts from. */
export type DeployPreset = 'devnet' | 'production'

/**
 * Default deploy parameters. Both presets share the token and emission schedule (docs/rewards.md);
 * devnet shortens epochs, windows and periods so that a whole cycle fits in a minute, and a
 * governance proposal in about a minute and a half (docs/governance.md lists both presets).
 */
export function defaultDeployParameters(
  preset: DeployPreset,
  init: { treasury: `0x${string}`; genesisTime: number },
): DeployParameters {
  const dev = preset === 'devnet'
  return {
    tokenName: 'Meshwork',
    tokenSymbol: 'MESH',
    maxSupply: (1_000_000_000n * MESH).toString(),
    genesisAmount: (400_000_000n * MESH).toString(),
    treasury: init.treasury,
    genesisTime: init.genesisTime,
    epochDuration: dev ? 15 : 3_600,
    initialEmission: (34_000n * MESH).toString(),
    halvingInterval: 8_760,
    disputeWindow: dev ? 2 : 300,
    minNodeStake: (1_000n * MESH).toString(),
    minVerifierStake: (100_000n * MESH).toString(),
    unbondingPeriod: dev ? 60 : 14 * 24 * 3_600,
    quorum: dev ? 2 : 3,
    maxVerifiers: 21,
    closeTimeout: dev ? 60 : 24 * 3_600,
    paymentFeeBps: 500,
    votingDelay: dev ? 1 : 24 * 3_600,
    votingPeriod: dev ? 60 : 7 * 24 * 3_600,
    proposalThreshold: ((dev ? 1_000n : 100_000n) * MESH).toString(),
    quorumPercent: 4,
    timelockDelay: dev ? 30 : 2 * 24 * 3_600,
  }
}

const UINT32_MAX = 2 ** 32 - 1
const UINT96 = 2n ** 96n - 1n
const UINT128 = 2n ** 128n - 1n

/**
 * Checks deploy parameters against the schema and the limits the contracts enforce, so that a bad
 * value is refused before anything is deployed (a constructor revert would leave the contracts
 * before it orphaned).
 *
 * @throws InvalidArgumentError naming the parameter (`details.parameter`).
 */
export function validateDeployParameters(p: DeployParameters): void {
  const fail = (name: string, why: string): never => {
    throw new InvalidArgumentError(`deploy parameter ${name} ${why}`, { details: { parameter: name } })
  }
  const parsed = deployParametersSchema.safeParse(p)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    fail(issue?.path.join('.') || '(parameters)', issue?.message ?? 'is invalid')
  }
  const maxSupply = BigInt(p.maxSupply)
  const genesis = BigInt(p.genesisAmount)
  const e0 = BigInt(p.initialEmission)
  if (genesis > maxSupply) fail('genesisAmount', `(${genesis}) exceeds maxSupply (${maxSupply})`)
  if (/^0x0{40}$/i.test(p.treasury)) fail('treasury', 'must not be the zero address')
  if (e0 === 0n || e0 > UINT96) fail('initialEmission', 'must be between 1 and 2^96 - 1 base units')
  const total = totalEmission({ initialEmission: e0, halvingInterval: BigInt(p.halvingInterval) })
  if (total > UINT96)
    fail('initialEmission', `gives a total emission of ${total}, above the limit of 2^96 - 1`)
  if (total > maxSupply - genesis) {
    fail(
      'initialEmission',
      `gives a total emission of ${total}, more than the ${maxSupply - genesis} left under maxSupply`,
    )
  }
  if (p.disputeWindow > 1_000_000) fail('disputeWindow', 'must be at most 1,000,000 blocks')
  for (const name of ['minNodeStake', 'minVerifierStake'] as const) {
    const v = BigInt(p[name])
    if (v === 0n || v > UINT128) fail(name, 'must be between 1 and 2^128 - 1 base units')
  }
  if (p.unbondingPeriod > 365 * 24 * 3_600) fail('unbondingPeriod', 'must be at most 365 days')
  if (p.maxVerifiers > UINT32_MAX) fail('maxVerifiers', 'must be below 2^32')
  if (p.quorum > p.maxVerifiers) fail('quorum', `(${p.quorum}) exceeds maxVerifiers (${p.maxVerifiers})`)
  if (p.votingDelay > MAX_GOVERNANCE_SECONDS) fail('votingDelay', 'must be at most 365 days')
  if (p.votingPeriod > MAX_GOVERNANCE_SECONDS) fail('votingPeriod', 'must be at most 365 days')
  if (p.timelockDelay > MAX_GOVERNANCE_SECONDS) fail('timelockDelay', 'must be at most 365 days')
  if (BigInt(p.proposalThreshold) > maxSupply) fail('proposalThreshold', 'must be at most maxSupply')
}

/** Longest voting delay, voting period or timelock delay a deploy accepts. */
const MAX_GOVERNANCE_SECONDS = 365 * 24 * 3_600

/** Options of {@link deployContracts}. */
export interface DeployInit {
  name: string
  rpcUrl: string
  parameters: DeployParameters
  /**
   * NetworkParams' first set (version 1); default {@link INITIAL_NETWORK_PARAMS} (`linearBps`
   * 5,000).
   */
  initialParams?: NetworkParamsStruct
  /**
   * The hardware makers approved from epoch 0 (version 1's list): their Ed25519 keys as peer ids
   * (`12D3KooW…`), in any order; default none. Checked before anything is deployed.
   */
  makers?: readonly string[]
  /** Called before each step, for progress output. */
  onStep?: (step: string, index: number, total: number) => void
}

/**
 * Deploys MeshToken (whose immutable minter is the address EpochRewards will get), NodeRegistry,
 * EpochRewards, Payments, MeshTimelock, MeshGovernor and NetworkParams from the client's account,
 * hands every governable contract to the timelock, and returns the network description to write to
 * disk.
 *
 * The hand-over: the governor becomes the timelock's only proposer and canceller, anyone may execute
 * a ready operation, NodeRegistry and EpochRewards are transferred to the timelock (NetworkParams is
 * created owned by it), and the deployer renounces the timelock's admin role, so that afterwards no
 * key has any power over parameters: only a proposal that passes a vote and waits out the delay. The
 * deployer keeps only what it holds as the treasury (tokens, which vote once delegated). Every
 * parameter is a constructor argument, so nothing is set after deploy; a test network that needs
 * other values passes them as parameters.
 */
export async function deployContracts(client: ChainClient, init: DeployInit): Promise<NetworkFile> {
  const p = init.parameters
  validateDeployParameters(p)
  const makers = makerKeysOf(init.makers ?? [])
  const deployer = client.wallet.account.address
  const steps = 9
  let step = 0
  const progress = (name: string) => init.onStep?.(name, ++step, steps)

  const deploy = async (name: string, abi: Abi, bytecode: Hex, args: readonly unknown[]) => {
    progress(`deploy ${name}`)
    try {
      const hash = await client.wallet.deployContract({ abi, bytecode, args } as never)
      const receipt = await client.public.waitForTransactionReceipt({ hash })
      if (receipt.status !== 'success' || !receipt.contractAddress) {
        throw chainError('TX_REVERTED', `deploying ${name} reverted`, { details: { hash } })
      }
      return { address: getAddress(receipt.contractAddress), block: receipt.blockNumber }
    } catch (err) {
      throw toChainError(err, `deploy ${name}`)
    }
  }

  // The token's minter is immutable: EpochRewards will be the deployer's third contract from here.
  const nonce = await client.public.getTransactionCount({ address: deployer, blockTag: 'pending' })
  const expectedRewards = getContractAddress({ from: deployer, nonce: BigInt(nonce + 2) })
  const token = await deploy('MeshToken', meshTokenAbi, meshTokenBytecode, [
    p.tokenName,
    p.tokenSymbol,
    BigInt(p.maxSupply),
    p.treasury,
    BigInt(p.genesisAmount),
    expectedRewards,
  ])
  const registry = await deploy('NodeRegistry', nodeRegistryAbi, nodeRegistryBytecode, [
    token.address,
    p.treasury,
    deployer,
    BigInt(p.minNodeStake),
    BigInt(p.minVerifierStake),
    BigInt(p.unbondingPeriod),
    p.quorum,
    p.maxVerifiers,
  ])
  const rewards = await deploy('EpochRewards', epochRewardsAbi, epochRewardsBytecode, [
    token.address,
    registry.address,
    deployer,
    BigInt(p.genesisTime),
    BigInt(p.epochDuration),
    BigInt(p.initialEmission),
    BigInt(p.halvingInterval),
    BigInt(p.disputeWindow),
  ])
  if (rewards.address !== expectedRewards) {
    throw chainError(
      'TX_REVERTED',
      `EpochRewards landed at ${rewards.address}, not at the token's minter ${expectedRewards}`,
      {
        hint: 'Another transaction from the deployer interleaved; deploy again with an idle deployer account',
      },
    )
  }
  const payments = await deploy('Payments', paymentsAbi, paymentsBytecode, [
    token.address,
    BigInt(p.closeTimeout),
    p.paymentFeeBps,
  ])
  // The deployer is the timelock's admin only until the governor holds its roles (just below).
  const timelock = await deploy('MeshTimelock', meshTimelockAbi, meshTimelockBytecode, [
    BigInt(p.timelockDelay),
    [],
    [zeroAddress],
    deployer,
  ])
  const governor = await deploy('MeshGovernor', meshGovernorAbi, meshGovernorBytecode, [
    token.address,
    timelock.address,
    p.votingDelay,
    p.votingPeriod,
    BigInt(p.proposalThreshold),
    BigInt(p.quorumPercent),
  ])
  const params = await deploy('NetworkParams', networkParamsAbi, networkParamsBytecode, [
    timelock.address,
    rewards.address,
    init.initialParams ?? INITIAL_NETWORK_PARAMS,
    makers,
  ])

  progress('hand every parameter to the timelock')
  const send = (address: `0x${string}`, abi: Abi, functionName: string, args: readonly unknown[]) =>
    sendContractTx(client, { address, abi, functionName, args })
  const role = (name: string) =>
    readContract<Hex>(client, {
      address: timelock.address,
      abi: meshTimelockAbi,
      functionName: name,
      args: [],
    })
  const [proposer, canceller, admin] = await Promise.all([
    role('PROPOSER_ROLE'),
    role('CANCELLER_ROLE'),
    role('DEFAULT_ADMIN_ROLE'),
  ])
  await send(timelock.address, meshTimelockAbi, 'grantRole', [proposer, governor.address])
  await send(timelock.address, meshTimelockAbi, 'grantRole', [canceller, governor.address])
  await send(registry.address, nodeRegistryAbi, 'transferOwnership', [timelock.address])
  await send(rewards.address, epochRewardsAbi, 'transferOwnership', [timelock.address])
  await send(timelock.address, meshTimelockAbi, 'renounceRole', [admin, deployer])
  await checkHandOver(client, {
    timelock: timelock.address,
    owned: [registry, rewards, params],
    deployer,
    admin,
  })
  progress('done')

  return {
    version: 1,
    name: init.name,
    chainId: client.chainId,
    rpcUrl: init.rpcUrl,
    deployBlock: Number(token.block),
    deployer,
    contracts: {
      MeshToken: token.address,
      NodeRegistry: registry.address,
      EpochRewards: rewards.address,
      Payments: payments.address,
      MeshTimelock: timelock.address,
      MeshGovernor: governor.address,
      NetworkParams: params.address,
    },
    parameters: p,
    bootstrap: [],
  }
}

/** Reads back what the hand-over must have left: the timelock owns everything, the deployer nothing. */
async function checkHandOver(
  client: ChainClient,
  init: {
    timelock: `0x${string}`
    owned: { address: `0x${string}` }[]
    deployer: `0x${string}`
    admin: Hex
  },
): Promise<void> {
  for (const { address } of init.owned) {
    const owner = await readContract<`0x${string}`>(client, {
      address,
      abi: nodeRegistryAbi,
      functionName: 'owner',
      args: [],
    })
    if (getAddress(owner) !== init.timelock) {
      throw chainError('TX_REVERTED', `the contract at ${address} is owned by ${owner}, not the timelock`)
    }
  }
  const deployerAdmin = await readContract<boolean>(client, {
    address: init.timelock,
    abi: meshTimelockAbi,
    functionName: 'hasRole',
    args: [init.admin, init.deployer],
  })
  if (deployerAdmin) throw chainError('TX_REVERTED', 'the deployer still holds the timelock admin role')
}

/** Options of {@link deployNetwork}. */
export interface DeployNetworkInit {
  /** JSON-RPC URL written to the network file (and used to send, unless `provider` is given). */
  rpcUrl: string
  /** Send through this in-process provider instead of `rpcUrl`. */
  provider?: Eip1193Provider
  privateKey: Hex
  name?: string
  preset?: DeployPreset
  /** Overrides on top of the preset (treasury defaults to the deployer, genesis to the latest block). */
  overrides?: Partial<DeployParameters>
  /** The hardware makers approved from epoch 0, as peer ids ({@link DeployInit.makers}); default none. */
  makers?: readonly string[]
  onStep?: DeployInit['onStep']
}

/**
 * Connects to a chain (failing with RPC_UNREACHABLE when it does not answer), fills in the
 * parameters, and deploys; the composition roots (`meshwork deploy`, `meshwork devnet`) call this.
 */
export async function deployNetwork(init: DeployNetworkInit): Promise<NetworkFile> {
  const chainId = await probeChainId(init.provider ?? init.rpcUrl)
  const client = createChainClient({
    chainId,
    contracts: NO_CONTRACTS,
    rpc: init.provider ?? init.rpcUrl,
    privateKey: init.privateKey,
  })
  const latest = await client.public.getBlock()
  const parameters = {
    ...defaultDeployParameters(init.preset ?? (chainId === 31337 ? 'devnet' : 'production'), {
      treasury: client.wallet.account.address,
      genesisTime: Number(latest.timestamp),
    }),
    ...init.overrides,
  }
  return deployContracts(client, {
    name: init.name ?? (chainId === 31337 ? 'devnet' : `chain-${chainId}`),
    rpcUrl: init.rpcUrl,
    parameters,
    ...(init.makers ? { makers: init.makers } : {}),
    ...(init.onStep ? { onStep: init.onStep } : {}),
  })
}
