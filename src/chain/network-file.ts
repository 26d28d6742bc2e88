import { existsSync, readFileSync, renameSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { getAddress, isAddress } from 'viem'
import { z } from 'zod'
import { fsyncDirectorySync, writeFileDurable } from '../core/durable-file.js'
import { chainError } from './errors.js'

const address = z.string().refine((v) => isAddress(v, { strict: false }), 'not a 0x address')
const uint = z.string().regex(/^\d{1,78}$/, 'a non-negative integer in decimal')

/** Deploy-time parameters, as decimal strings for the big ones (JSON has no bigint). */
export const deployParametersSchema = z.object({
  tokenName: z.string().min(1).max(64),
  tokenSymbol: z.string().min(1).max(16),
  maxSupply: uint,
  genesisAmount: uint,
  treasury: address,
  genesisTime: z.number().int().nonnegative(),
  epochDuration: z.number().int().positive(),
  initialEmission: uint,
  halvingInterval: z.number().int().positive(),
  disputeWindow: z.number().int().nonnegative(),
  minNodeStake: uint,
  minVerifierStake: uint,
  unbondingPeriod: z.number().int().nonnegative(),
  quorum: z.number().int().positive(),
  maxVerifiers: z.number().int().positive(),
  closeTimeout: z.number().int().nonnegative(),
  /** The fee Payments burns from every redeemed payment, basis points (0 in networks deployed before it). */
  paymentFeeBps: z.number().int().min(0).max(2_000).default(0),
  /** Seconds from a proposal to the start of its vote (at least 1: blocks may share a second). */
  votingDelay: z.number().int().positive(),
  /** Seconds a vote lasts. */
  votingPeriod: z.number().int().positive(),
  /** Votes (base units) an account needs to make a proposal. */
  proposalThreshold: uint,
  /** Share of the supply at a proposal's snapshot that must vote for or abstain, in percent. */
  quorumPercent: z.number().int().min(1).max(100),
  /** Seconds a passed proposal waits in the timelock before it can be executed. */
  timelockDelay: z.number().int().nonnegative(),
})

/** The deployed-network description every command reads (`--network FILE`, default ./network.json). */
export const networkFileSchema = z.object({
  version: z.literal(1),
  name: z.string().min(1).max(64),
  chainId: z.number().int().positive(),
  rpcUrl: z.string().url(),
  deployBlock: z.number().int().nonnegative(),
  deployer: address,
  contracts: z.object({
    MeshToken: address,
    NodeRegistry: address,
    EpochRewards: address,
    Payments: address,
    MeshTimelock: address,
    MeshGovernor: address,
    NetworkParams: address,
  }),
  parameters: deployParametersSchema,
  bootstrap: z.array(z.string().max(512)).max(64).default([]),
})

export type DeployParameters = z.infer<typeof deployParametersSchema>
export type NetworkFile = z.infer<typeof networkFileSchema>
export type ContractName = keyof NetworkFile['contracts']

/** Largest network file accepted. */
export const MAX_NETWORK_FILE_BYTES = 256 * 1024

/** Reads and validates a network file; every failure is a one-line error that names the fix. */
export function readNetworkFile(path: string): NetworkFile {
  if (!existsSync(path)) {
    throw chainError('NETWORK_FILE_MISSING', `network file ${path} does not exist`, {
      hint: 'Run `meshwork deploy --out FILE` or `meshwork devnet`, or pass --network FILE',
    })
  }
  const text = readFileSync(path)
  if (text.length > MAX_NETWORK_FILE_BYTES) {
    throw chainError(
      'NETWORK_FILE_INVALID',
      `network file ${path} is larger than ${MAX_NETWORK_FILE_BYTES} bytes`,
      {
        hint: 'Pass the network.json that `meshwork deploy` wrote',
      },
    )
  }
  let json: unknown
  try {
    json = JSON.parse(text.toString('utf8'))
  } catch (err) {
    throw chainError('NETWORK_FILE_INVALID', `network file ${path} is not valid JSON`, {
      hint: 'Pass the network.json that `meshwork deploy` wrote',
      cause: err,
    })
  }
  const parsed = networkFileSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue?.path.join('.') || '(root)'
    throw chainError(
      'NETWORK_FILE_INVALID',
      `network file ${path}: ${where}: ${issue?.message ?? 'invalid'}`,
      {
        hint: 'Pass the network.json that `meshwork deploy` wrote',
        details: { issues: parsed.error.issues.slice(0, 5) },
      },
    )
  }
  const n = parsed.data
  return {
    ...n,
    deployer: getAddress(n.deployer),
    contracts: {
      MeshToken: getAddress(n.contracts.MeshToken),
      NodeRegistry: getAddress(n.contracts.NodeRegistry),
      EpochRewards: getAddress(n.contracts.EpochRewards),
      Payments: getAddress(n.contracts.Payments),
      MeshTimelock: getAddress(n.contracts.MeshTimelock),
      MeshGovernor: getAddress(n.contracts.MeshGovernor),
      NetworkParams: getAddress(n.contracts.NetworkParams),
    },
  }
}

/**
 * Writes a network file atomically (temp file, then rename). Refuses to replace an existing file
 * unless `force`, so that a deploy never silently orphans a network.
 */
export function writeNetworkFile(
  path: string,
  network: NetworkFile,
  options: { force?: boolean } = {},
): void {
  if (existsSync(path) && !options.force) {
    throw chainError('NETWORK_FILE_EXISTS', `network file ${path} already exists`, {
      hint: 'Pass --force to replace it, or --out another file',
    })
  }
  const tmp = `${path}.${process.pid}.tmp`
  // Flushed before the rename and the rename flushed too: a deploy's record survives a power loss.
  writeFileDurable(tmp, `${JSON.stringify(networkFileSchema.parse(network), null, 2)}\n`)
  renameSync(tmp, path)
  fsyncDirectorySync(dirname(resolve(path)))
}
