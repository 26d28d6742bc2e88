import type { Hex } from 'viem'
import { MeshworkError, type MeshworkErrorOptions } from '../core/errors.js'
import { makerPeerIdOf } from './maker-key.js'

/**
 * Error codes of the chain layer. Contract reverts map to codes in {@link REVERTS}; the rest are
 * about reaching the chain and reading the network file.
 */
export class ChainError extends MeshworkError {
  override readonly name = 'ChainError'
}

/** What the chain layer tells the user for each custom error of our contracts. */
interface RevertInfo {
  code: string
  message: (args: readonly unknown[]) => string
  hint?: string
}

const s = (v: unknown): string => String(v)
/** A maker key from a revert as its peer id (anything else as it is). */
const makerName = (v: unknown): string => (/^0x[0-9a-f]{64}$/i.test(s(v)) ? makerPeerIdOf(v as Hex) : s(v))

/** Custom Solidity error name -> stable code, message and fix. Kept in step with docs/ERRORS.md by a test. */
export const REVERTS: Record<string, RevertInfo> = {
  // MeshToken
  NotMinter: { code: 'TOKEN_NOT_MINTER', message: (a) => `${s(a[0])} is not the token minter` },
  MaxSupplyExceeded: {
    code: 'TOKEN_MAX_SUPPLY_EXCEEDED',
    message: (a) => `minting ${s(a[0])} would exceed the max supply (${s(a[1])} left)`,
  },
  ERC20InsufficientBalance: {
    code: 'TOKEN_INSUFFICIENT_BALANCE',
    message: (a) => `${s(a[0])} has ${s(a[1])} tokens, needs ${s(a[2])}`,
    hint: 'Fund the account from the treasury first',
  },
  ERC20InsufficientAllowance: {
    code: 'TOKEN_INSUFFICIENT_ALLOWANCE',
    message: (a) => `allowance of ${s(a[0])} is ${s(a[1])}, needs ${s(a[2])}`,
    hint: 'Approve the contract to spend the tokens first',
  },
  // NodeRegistry
  InvalidPeerId: { code: 'REGISTRY_INVALID_PEER_ID', message: () => 'the peer id must be 1 to 128 bytes' },
  NodeAlreadyRegistered: {
    code: 'REGISTRY_NODE_ALREADY_REGISTERED',
    message: (a) => `node ${s(a[0])} is already registered`,
  },
  NodeNotRegistered: {
    code: 'REGISTRY_NODE_NOT_REGISTERED',
    message: (a) => `node ${s(a[0])} is not registered`,
  },
  NotOperator: {
    code: 'REGISTRY_NOT_OPERATOR',
    message: (a) => `${s(a[1])} is not the operator of node ${s(a[0])}`,
  },
  StakeBelowMinimum: {
    code: 'REGISTRY_STAKE_BELOW_MINIMUM',
    message: (a) => `stake ${s(a[0])} is below the minimum of ${s(a[1])}`,
    hint: 'Stake at least the minimum, or unbond everything to leave',
  },
  InsufficientStake: {
    code: 'REGISTRY_INSUFFICIENT_STAKE',
    message: (a) => `cannot unbond ${s(a[0])}: only ${s(a[1])} is bonded`,
  },
  NothingToWithdraw: { code: 'REGISTRY_NOTHING_TO_WITHDRAW', message: () => 'nothing is unbonding' },
  UnbondingNotFinished: {
    code: 'REGISTRY_UNBONDING_NOT_FINISHED',
    message: (a) => `unbonding ends at ${s(a[0])} (unix seconds)`,
    hint: 'Withdraw after the unbonding period',
  },
  VerifierAlreadyRegistered: {
    code: 'REGISTRY_VERIFIER_ALREADY_REGISTERED',
    message: (a) => `${s(a[0])} is already a verifier`,
  },
  VerifierNotRegistered: {
    code: 'REGISTRY_VERIFIER_NOT_REGISTERED',
    message: (a) => `${s(a[0])} is not a verifier`,
  },
  VerifierSetFull: {
    code: 'REGISTRY_VERIFIER_SET_FULL',
    message: (a) => `the verifier set is full (${s(a[0])})`,
  },
  QuorumNotReached: {
    code: 'QUORUM_NOT_REACHED',
    message: (a) => `${s(a[0])} signatures, the quorum is ${s(a[1])}`,
    hint: 'Collect signatures from more active verifiers',
  },
  NotActiveVerifier: {
    code: 'QUORUM_SIGNER_NOT_VERIFIER',
    message: (a) => `signer ${s(a[0])} is not an active verifier (for this chain and contract)`,
  },
  SignersNotAscending: {
    code: 'QUORUM_SIGNERS_NOT_ASCENDING',
    message: (a) => `signature ${s(a[0])} (signer ${s(a[1])}) repeats a signer or is out of order`,
    hint: 'Give one signature per verifier, ordered by ascending signer address',
  },
  SignaturesMalformed: {
    code: 'SIGNATURE_INVALID',
    message: (a) => `signatures are ${s(a[0])} bytes, not a multiple of 65`,
  },
  ECDSAInvalidSignature: { code: 'SIGNATURE_INVALID', message: () => 'a signature is invalid' },
  ECDSAInvalidSignatureLength: {
    code: 'SIGNATURE_INVALID',
    message: (a) => `a signature has length ${s(a[0])}, expected 65 bytes`,
  },
  ECDSAInvalidSignatureS: { code: 'SIGNATURE_INVALID', message: () => 'a signature is malleable (high s)' },
  SignerIsAccused: {
    code: 'QUORUM_SIGNER_ACCUSED',
    message: (a) => `verifier ${s(a[0])} cannot sign its own slash`,
    hint: 'Collect the quorum from the other verifiers',
  },
  EvidenceAlreadyUsed: {
    code: 'SLASH_EVIDENCE_USED',
    message: (a) => `evidence ${s(a[0])} was already used`,
  },
  ZeroAmount: { code: 'ZERO_AMOUNT', message: () => 'the amount must be greater than zero' },
  ZeroAddress: { code: 'ZERO_ADDRESS', message: () => 'an address must not be zero' },
  InvalidParameter: { code: 'INVALID_PARAMETER', message: (a) => `invalid parameter: ${s(a[0])}` },
  OwnableUnauthorizedAccount: {
    code: 'NOT_OWNER',
    message: (a) => `${s(a[0])} may not change this parameter`,
    hint: 'Parameters change only by a governance proposal: `meshwork gov propose --set KEY=VALUE`',
  },
  // EpochRewards
  EpochOutOfOrder: {
    code: 'ROOT_EPOCH_OUT_OF_ORDER',
    message: (a) => `the next epoch to post is ${s(a[0])}, not ${s(a[1])}`,
  },
  EpochNotEnded: {
    code: 'ROOT_EPOCH_NOT_ENDED',
    message: (a) => `epoch ${s(a[0])} ends at ${s(a[1])} (unix seconds)`,
    hint: 'Post the root after the epoch has ended',
  },
  EmissionExceeded: {
    code: 'ROOT_EMISSION_EXCEEDED',
    message: (a) => `cumulative total ${s(a[0])} exceeds the ${s(a[1])} emitted so far`,
  },
  CumulativeDecreased: {
    code: 'ROOT_CUMULATIVE_DECREASED',
    message: (a) => `cumulative total ${s(a[0])} is below the previous ${s(a[1])}`,
  },
  EmptyRoot: { code: 'ROOT_EMPTY', message: () => 'the root must not be zero' },
  RootNotPending: {
    code: 'ROOT_NOT_PENDING',
    message: (a) => `epoch ${s(a[0])} has no pending root ${s(a[1])}`,
  },
  PreviousRootInDispute: {
    code: 'ROOT_PREVIOUS_IN_DISPUTE',
    message: (a) => `the root of epoch ${s(a[0])} is in its dispute window until block ${s(a[1])}`,
    hint: 'Post the next root once the previous one has passed its dispute window',
  },
  DisputeWindowOver: {
    code: 'ROOT_DISPUTE_WINDOW_OVER',
    message: (a) => `the dispute window of epoch ${s(a[0])} is over`,
  },
  NoClaimableRoot: {
    code: 'CLAIM_NO_ROOT',
    message: () => 'no root is claimable yet',
    hint: 'Wait until the first root has passed its dispute window',
  },
  InvalidProof: {
    code: 'CLAIM_INVALID_PROOF',
    message: (a) => `no leaf (${s(a[0])}, ${s(a[1])}) in the claimable root`,
    hint: 'Fetch a fresh proof for the current claimable root',
  },
  NothingToClaim: {
    code: 'CLAIM_NOTHING_TO_CLAIM',
    message: (a) => `${s(a[0])} already claimed ${s(a[2])} of ${s(a[1])}`,
  },
  LengthMismatch: {
    code: 'CLAIM_LENGTH_MISMATCH',
    message: () => 'accounts, amounts and proofs differ in length',
  },
  // Governance (MeshGovernor, MeshTimelock, NetworkParams)
  GovernorNonexistentProposal: {
    code: 'GOV_PROPOSAL_UNKNOWN',
    message: (a) => `there is no proposal ${s(a[0])}`,
    hint: 'List proposals with `meshwork gov list`',
  },
  GovernorUnexpectedProposalState: {
    code: 'GOV_PROPOSAL_STATE',
    message: (a) => `proposal ${s(a[0])} is ${proposalStateName(Number(a[1]))}`,
    hint: 'See what it waits for with `meshwork gov list`',
  },
  GovernorInsufficientProposerVotes: {
    code: 'GOV_PROPOSER_VOTES_TOO_LOW',
    message: (a) => `${s(a[0])} has ${s(a[1])} votes, a proposal needs ${s(a[2])}`,
    hint: 'Delegate enough votes to the proposer (`meshwork gov delegate ADDRESS`) and propose a second later',
  },
  GovernorAlreadyCastVote: {
    code: 'GOV_ALREADY_VOTED',
    message: (a) => `${s(a[0])} has already voted on this proposal`,
  },
  GovernorOnlyExecutor: {
    code: 'NOT_OWNER',
    message: (a) => `${s(a[0])} may not change the governor's settings`,
    hint: 'Governance settings change only by a governance proposal',
  },
  TimelockUnauthorizedCaller: {
    code: 'NOT_OWNER',
    message: (a) => `${s(a[0])} may not change the timelock`,
    hint: 'The timelock changes only by a governance proposal',
  },
  AccessControlUnauthorizedAccount: {
    code: 'NOT_OWNER',
    message: (a) => `${s(a[0])} lacks the timelock role ${s(a[1])}`,
    hint: 'Only the governor proposes to the timelock: make a proposal with `meshwork gov propose`',
  },
  TimelockUnexpectedOperationState: {
    code: 'GOV_TIMELOCK_NOT_READY',
    message: (a) =>
      `timelock operation ${s(a[0])} is not ready (its delay has not passed, or it already ran)`,
    hint: 'Execute once the time `meshwork gov list` shows has passed',
  },
  GovernorInvalidQuorumFraction: {
    code: 'INVALID_PARAMETER',
    message: (a) => `invalid parameter: quorum ${s(a[0])}/${s(a[1])}`,
  },
  GovernorInvalidVotingPeriod: {
    code: 'INVALID_PARAMETER',
    message: (a) => `invalid parameter: voting period ${s(a[0])}`,
  },
  WeightsDoNotSum: {
    code: 'PARAMS_WEIGHTS_SUM',
    message: (a) => `the service weights sum to ${s(a[0])} bps, not 10000`,
    hint: 'Set the weights so that they sum to 10000 (100%)',
  },
  ParamsVersionStale: {
    code: 'PARAMS_VERSION_STALE',
    message: (a) => `the proposal replaces parameter version ${s(a[0])}, but version ${s(a[1])} is newer`,
    hint: 'Another proposal changed the parameters meanwhile: propose again from the current set',
  },
  UnknownVersion: {
    code: 'PARAMS_UNKNOWN_VERSION',
    message: (a) => `there is no parameter version ${s(a[0])}`,
  },
  InvalidMaker: {
    code: 'PARAMS_INVALID_MAKER',
    message: (a) =>
      /^0x0{64}$/.test(s(a[1]))
        ? `maker ${s(a[0])} of the list is the zero key`
        : `maker ${s(a[0])} of the list (${makerName(a[1])}) is a repeat or out of order: a maker list is strictly ascending`,
    hint: 'Build the list with `meshwork gov propose --approve-maker/--revoke-maker`, which sorts it',
  },
  // Payments
  UnknownChannel: { code: 'CHANNEL_UNKNOWN', message: (a) => `channel ${s(a[0])} does not exist` },
  NotBuilder: {
    code: 'CHANNEL_NOT_BUILDER',
    message: (a) => `${s(a[1])} is not the builder of channel ${s(a[0])}`,
  },
  ChannelClosed: { code: 'CHANNEL_CLOSED', message: (a) => `channel ${s(a[0])} is closed` },
  InvalidVoucherSigner: {
    code: 'VOUCHER_WRONG_SIGNER',
    message: (a) => `the voucher for channel ${s(a[0])} is signed by ${s(a[1])}, not the builder`,
  },
  VoucherAlreadyRedeemed: {
    code: 'VOUCHER_ALREADY_REDEEMED',
    message: (a) =>
      `voucher ${s(a[1])} on channel ${s(a[0])} does not exceed the ${s(a[2])} already redeemed`,
  },
  VoucherExceedsDeposit: {
    code: 'VOUCHER_EXCEEDS_DEPOSIT',
    message: (a) => `voucher ${s(a[1])} on channel ${s(a[0])} exceeds the deposit of ${s(a[2])}`,
  },
  CloseNotRequested: {
    code: 'CHANNEL_CLOSE_NOT_REQUESTED',
    message: (a) => `channel ${s(a[0])} is not closing`,
  },
  CloseTimeoutNotOver: {
    code: 'CHANNEL_CLOSE_TIMEOUT',
    message: (a) => `channel ${s(a[0])} can be withdrawn from ${s(a[1])} (unix seconds)`,
  },
}

/** The Governor's proposal states, by their number in `IGovernor.ProposalState`. */
export const PROPOSAL_STATES = [
  'pending',
  'active',
  'canceled',
  'defeated',
  'succeeded',
  'queued',
  'expired',
  'executed',
] as const
export type ProposalStateName = (typeof PROPOSAL_STATES)[number]

/** The name of a proposal state number (`unknown (N)` for one the Governor does not define). */
export function proposalStateName(state: number): string {
  return PROPOSAL_STATES[state] ?? `unknown (${state})`
}

/** Codes the chain layer raises itself, with no revert behind them. */
export const chainErrorCodes = [
  'RPC_UNREACHABLE',
  'CHAIN_ID_MISMATCH',
  'CONTRACT_MISSING',
  'NETWORK_FILE_MISSING',
  'NETWORK_FILE_INVALID',
  'NETWORK_FILE_EXISTS',
  'TX_REVERTED',
  'CONTRACT_REVERTED',
  'CHAIN_STATE_INVALID',
  'INSUFFICIENT_FUNDS',
  ...new Set(Object.values(REVERTS).map((r) => r.code)),
] as const

/** Builds a {@link ChainError}. */
export function chainError(code: string, message: string, options?: MeshworkErrorOptions): ChainError {
  return new ChainError(code, message, options)
}
