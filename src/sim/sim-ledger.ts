import { createHash } from 'node:crypto'
import { privateKeyToAccount } from 'viem/accounts'
import { chainError } from '../chain/errors.js'
import { contractDomain, recoverSigner, signMessageOf } from '../chain/typed-data.js'

import type { Clock } from '../core/clock.js'
import {
  DEFAULT_REWARD_PARAMS,
  type EmissionSchedule,
  emittedThrough,
  type RewardParams,
} from '../rewards/index.js'
import type { RegistrySnapshot, RootPoster, VerifierChain } from '../verifier/chain-port.js'

/** Options of a {@link SimLedger}. */
export interface SimLedgerInit {
  clock: Pick<Clock, 'now'>
  /** Seeds the block hashes (each epoch's challenge schedule follows from its first block's hash). */
  seed: number
  /** Unix seconds and seconds, as the contracts hold them. */
  genesisTime: number
  epochDuration: number
  /** Seconds between blocks (default 2). */
  blockSeconds?: number
  /** Signatures a root needs. */
  quorum: number
  emission: EmissionSchedule
  /** The reward parameter set of every epoch (default {@link DEFAULT_REWARD_PARAMS}). */
  params?: RewardParams
  /** The fee Payments burns from every redeemed payment, basis points (default 500, the deploy's). */
  paymentFeeBps?: number
  /** The chain id and EpochRewards address the PostRoot signatures are bound to. */
  chainId?: number
  epochRewards?: `0x${string}`
}

/** The hash of simulated block `n` of a run seeded with `seed`. */
export function simBlockHash(seed: number, n: bigint): `0x${string}` {
  return `0x${createHash('sha256').update(`meshwork-sim-block\n${seed}\n${n}`).digest('hex')}`
}

/** When the simulated chain's block 0 is: an hour before genesis (registrations happen before epoch 0). */
export function chainOrigin(genesisTime: number): number {
  return genesisTime - 3_600
}

/** The number of the first block at or after `timestamp` (unix seconds). */
export function firstBlockNumberAtOrAfter(
  genesisTime: number,
  blockSeconds: number,
  timestamp: number,
): bigint {
  return BigInt(Math.max(0, Math.ceil((timestamp - chainOrigin(genesisTime)) / blockSeconds)))
}

/** A registration as the ledger keeps it: registered at `fromBlock`, active until `toBlock` (exclusive). */
interface Registration {
  peerId: string
  operator: `0x${string}`
  stake: bigint
  registeredAt: number
  /** The H3 cell it claims (hex). */
  h3Cell?: string
  fromBlock: bigint
  toBlock: bigint | undefined
}

/** A root the ledger accepted. */
export interface LedgerRoot {
  root: `0x${string}`
  digest: `0x${string}`
  totalCumulative: bigint
  block: bigint
}

/** A post the ledger refused, and why (the contract's error code). */
export interface RefusedPost {
  epoch: number
  code: string
  signers: number
  at: number
}

/**
 * The chain in memory, for the simulator: NodeRegistry's registrations, stake and slashing,
 * EpochRewards' posting rules (the next epoch only, after it ended, with a quorum of distinct
 * active verifiers' EIP-712 signatures of exactly the message, the cumulative total within what the
 * schedule released) and NetworkParams' set per epoch. It implements the verifiers' chain interfaces
 * ({@link VerifierChain}, {@link RootPoster}), so the real verifier code runs on it; blocks are a
 * pure function of virtual time (one every `blockSeconds`, hashes from the seed), so a run is
 * deterministic. No dispute window: a root is final when posted.
 */
export class SimLedger {
  readonly #init: Required<Omit<SimLedgerInit, 'clock'>> & Pick<SimLedgerInit, 'clock'>
  readonly #nodes: Registration[] = []
  /** Each node's newest registration. */
  readonly #latest = new Map<string, Registration>()
  readonly #verifiers: (Registration & { address: `0x${string}` })[] = []
  readonly #posted = new Map<number, LedgerRoot>()
  readonly #domain: ReturnType<typeof contractDomain>
  /** Stake taken by slashing, by peer id (base units). */
  readonly slashed = new Map<string, bigint>()
  /** Posts refused, in order. */
  readonly refusals: RefusedPost[] = []
  /** Fees burned by redeemed payments: block, provider (lower-case), fee. */
  readonly #fees: { block: bigint; provider: string; fee: bigint }[] = []

  constructor(init: SimLedgerInit) {
    this.#init = {
      blockSeconds: 2,
      params: DEFAULT_REWARD_PARAMS,
      paymentFeeBps: 500,
      chainId: 31337,
      epochRewards: `0x${'e0'.repeat(20)}`,
      ...init,
    }
    this.#domain = contractDomain('EpochRewards', this.#init.chainId, this.#init.epochRewards)
  }

  /** The EIP-712 domain PostRoot signatures are bound to (this ledger's EpochRewards). */
  get domain(): ReturnType<typeof contractDomain> {
    return this.#domain
  }

  /** The block the clock is in. */
  headNumber(): bigint {
    const s = Math.floor(this.#init.clock.now() / 1000) - chainOrigin(this.#init.genesisTime)
    return s < 0 ? 0n : BigInt(Math.floor(s / this.#init.blockSeconds))
  }

  #timestampOf(n: bigint): number {
    return chainOrigin(this.#init.genesisTime) + Number(n) * this.#init.blockSeconds
  }

  #hashOf(n: bigint): `0x${string}` {
    return simBlockHash(this.#init.seed, n)
  }

  /** Registers a node now (its stake, its operator); a node that left may register again. */
  registerNode(node: { peerId: string; operator: `0x${string}`; stake: bigint; h3Cell?: string }): void {
    const reg: Registration = {
      ...node,
      operator: node.operator.toLowerCase() as `0x${string}`,
      registeredAt: Math.floor(this.#init.clock.now() / 1000),
      fromBlock: this.headNumber(),
      toBlock: undefined,
    }
    this.#nodes.push(reg)
    this.#latest.set(node.peerId, reg)
  }

  /**
   * Redeems a payment of `amount` to `provider` now, as Payments does: the fee is burned (and
   * returned), the provider receives the rest.
   */
  redeemPayment(provider: string, amount: bigint): bigint {
    const fee = (amount * BigInt(this.#init.paymentFeeBps)) / 10_000n
    if (fee > 0n) this.#fees.push({ block: this.headNumber(), provider: provider.toLowerCase(), fee })
    return fee
  }

  /** Ends a node's registration now (it unbonds: the epochs from the next block on no longer see it). */
  deregisterNode(peerId: string): void {
    const reg = this.#latest.get(peerId)
    if (reg !== undefined && reg.toBlock === undefined) reg.toBlock = this.headNumber() + 1n
  }

  /** Registers a verifier now, with its EVM address (its PostRoot signing key). */
  registerVerifier(v: { peerId: string; address: `0x${string}`; stake: bigint }): void {
    this.#verifiers.push({
      ...v,
      address: v.address.toLowerCase() as `0x${string}`,
      operator: v.address.toLowerCase() as `0x${string}`,
      registeredAt: Math.floor(this.#init.clock.now() / 1000),
      fromBlock: this.headNumber(),
      toBlock: undefined,
    })
  }

  /** Takes `amount` of a node's stake (at most all of it), as a quorum-signed SlashNode does. */
  slashNode(peerId: string, requested: bigint): bigint {
    const reg = this.#latest.get(peerId)
    if (reg === undefined || reg.toBlock !== undefined) return 0n
    const amount = requested < reg.stake ? requested : reg.stake
    reg.stake -= amount
    this.slashed.set(peerId, (this.slashed.get(peerId) ?? 0n) + amount)
    return amount
  }

  /** The registry as of `block`. */
  registryAt(block: bigint): RegistrySnapshot {
    const active = (r: Registration) => r.fromBlock <= block && (r.toBlock === undefined || r.toBlock > block)
    return {
      nodes: this.#nodes.filter(active).map((r) => ({
        peerId: r.peerId,
        operator: r.operator,
        stake: r.stake,
        registeredAt: r.registeredAt,
        ...(r.h3Cell === undefined ? {} : { h3Cell: r.h3Cell }),
      })),
      verifiers: this.#verifiers
        .filter(active)
        .map((v) => ({ peerId: v.peerId, address: v.address, stake: v.stake })),
    }
  }

  /** Roots posted so far, by epoch. */
  posted(): ReadonlyMap<number, LedgerRoot> {
    return this.#posted
  }

  /** The {@link VerifierChain} every simulated verifier reads. */
  chain(): VerifierChain {
    return {
      head: async () => {
        const n = this.headNumber()
        return { number: n, timestamp: this.#timestampOf(n) }
      },
      firstBlockAtOrAfter: async (timestamp) => {
        const head = this.headNumber()
        const { genesisTime, blockSeconds } = this.#init
        const n = firstBlockNumberAtOrAfter(genesisTime, blockSeconds, timestamp)
        if (n > head) return undefined
        return { number: n, hash: this.#hashOf(n), timestamp: this.#timestampOf(n) }
      },
      registry: async (block) => this.registryAt(block),
      postedRoots: async () => new Map(this.#posted),
      paramsAt: async () => this.#init.params,
      paymentFees: async (fromBlock, toBlock) => {
        const fees = new Map<string, bigint>()
        for (const f of this.#fees)
          if (f.block >= fromBlock && f.block <= toBlock)
            fees.set(f.provider, (fees.get(f.provider) ?? 0n) + f.fee)
        return fees
      },
    }
  }

  /** A {@link RootPoster} signing with `privateKey` (a verifier's EVM key). */
  poster(privateKey: `0x${string}`): RootPoster {
    const account = privateKeyToAccount(privateKey)
    return {
      address: account.address,
      state: async () => ({ quorum: this.#init.quorum, revocations: 0, nextEpoch: this.#posted.size }),
      sign: async (message) => (await signMessageOf(account, this.#domain, 'PostRoot', message)).signature,
      recover: (message, signature) => recoverSigner(this.#domain, 'PostRoot', message, signature),
      post: (message, signatures) => this.post(message, signatures),
    }
  }

  /**
   * Records a root as posted without signatures: the fast engine's stand-in for an honest quorum
   * (it signs nothing). Only the next epoch.
   */
  forcePost(epoch: number, root: Omit<LedgerRoot, 'block'>): void {
    if (epoch !== this.#posted.size) throw new RangeError(`epoch ${epoch} is not next`)
    this.#posted.set(epoch, { ...root, block: this.headNumber() })
  }

  /**
   * EpochRewards' `postRoot` rules, refusing with the chain layer's error codes (and recording the
   * refusal): the next epoch only, once ended; a quorum of distinct active verifiers that signed
   * exactly this message; a cumulative total within the emission released so far.
   */
  async post(
    message: { epoch: bigint; root: `0x${string}`; bundleDigest: `0x${string}`; totalCumulative: bigint },
    signatures: readonly { signer: `0x${string}`; signature: `0x${string}` }[],
  ): Promise<void> {
    const epoch = Number(message.epoch)
    const head = this.headNumber()
    const refuse = (code: string, text: string, signers: number) => {
      this.refusals.push({ epoch, code, signers, at: this.#init.clock.now() })
      return chainError(code, text, { details: { epoch } })
    }
    if (epoch !== this.#posted.size) throw refuse('ROOT_EPOCH_OUT_OF_ORDER', `epoch ${epoch} is not next`, 0)
    const { genesisTime, epochDuration } = this.#init
    if (this.#timestampOf(head) < genesisTime + (epoch + 1) * epochDuration)
      throw refuse('ROOT_EPOCH_NOT_ENDED', `epoch ${epoch} has not ended`, 0)
    const active = new Set(this.registryAt(head).verifiers.map((v) => v.address))
    const signers = new Set<string>()
    for (const s of signatures) {
      const who = (
        await recoverSigner(this.#domain, 'PostRoot', { ...message, revocations: 0 }, s.signature)
      ).toLowerCase()
      if (active.has(who as `0x${string}`)) signers.add(who)
    }
    if (signers.size < this.#init.quorum)
      throw refuse('QUORUM_NOT_REACHED', `${signers.size} of ${this.#init.quorum} signatures`, signers.size)
    if (message.totalCumulative > emittedThrough(this.#init.emission, message.epoch))
      throw refuse('ROOT_EMISSION_EXCEEDED', 'the total exceeds the emission released', signers.size)
    this.#posted.set(epoch, {
      root: message.root,
      digest: message.bundleDigest,
      totalCumulative: message.totalCumulative,
      block: head,
    })
  }
}
