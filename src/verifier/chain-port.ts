import { base58btc } from 'multiformats/bases/base58'
import { type Hex, hexToBytes } from 'viem'
import { epochRewardsAbi, networkParamsAbi, nodeRegistryAbi, paymentsAbi } from '../chain/abi/index.js'
import { getEpochState } from '../chain/actions/get-epoch-state.js'
import { getNetworkParams } from '../chain/actions/get-network-params.js'
import { postRoot } from '../chain/actions/post-root.js'
import { signPostRoot } from '../chain/actions/sign-post-root.js'
import { signSlashNode } from '../chain/actions/sign-slash-node.js'
import { slashNode } from '../chain/actions/slash-node.js'
import type { ChainClient, ChainReader } from '../chain/client.js'
import { toRewardParams } from '../chain/network-params.js'
import { readContract } from '../chain/transact.js'
import { contractDomain, type Messages, recoverSigner, type SignedBy } from '../chain/typed-data.js'
import type { RewardParams } from '../rewards/index.js'

/**
 * What verifiers need of the chain, as one interface: the EVM (through the chain layer) implements
 * it here, and the simulator's in-memory ledger implements it for speed (the simulator issue). Reads
 * that must agree between verifiers take a block number: everyone reads the same snapshot.
 */
export interface VerifierChain {
  /** The newest block. */
  head(): Promise<{ number: bigint; timestamp: number }>
  /**
   * The first block whose timestamp is at or after `timestamp` (unix seconds): an epoch's seed block.
   * Undefined while no such block exists yet.
   */
  firstBlockAtOrAfter(
    timestamp: number,
  ): Promise<{ number: bigint; hash: Hex; timestamp: number } | undefined>
  /** Registered nodes with at least the minimum stake, and active verifiers, as of `block`. */
  registry(block: bigint): Promise<RegistrySnapshot>
  /** Roots posted and not revoked, as of now, by epoch. */
  postedRoots(): Promise<Map<number, { root: Hex; digest: Hex; totalCumulative: bigint; block: bigint }>>
  /**
   * The reward parameter set in force in `epoch`, with its on-chain version (NetworkParams'
   * `versionAt(epoch)` and `paramsAt(epoch)`). Always by epoch, never "the current set": a change
   * executed during epoch e applies from e + 1, so every verifier settles an epoch with the same set
   * whenever it reads it. Final once the chain's clock has reached `epoch`.
   */
  paramsAt(epoch: number): Promise<RewardParams>
  /**
   * Payment fees burned in blocks `fromBlock` to `toBlock` (inclusive), per provider (lower-case
   * address, base units): Payments' VoucherRedeemed events. The compute rebate cap reads an epoch's.
   */
  paymentFees(fromBlock: bigint, toBlock: bigint): Promise<Map<string, bigint>>
}

/** The registry at one block. */
export interface RegistrySnapshot {
  nodes: {
    peerId: string
    operator: `0x${string}`
    stake: bigint
    registeredAt: number
    /** The H3 cell it registered at (hex index), when the chain holds one. */
    h3Cell?: string
    /** Its registered services bitmask (`SERVICES`), when the chain holds one. */
    services?: number
  }[]
  verifiers: { peerId: string; address: `0x${string}`; stake: bigint }[]
}

/** The peer id (base58btc of its multihash) of the bytes NodeRegistry stores. */
export function peerIdOfBytes(bytes: Hex): string {
  return base58btc.baseEncode(hexToBytes(bytes))
}

/**
 * The {@link VerifierChain} of an EVM with the Meshwork contracts. Events are read from
 * `deployBlock` on; block timestamps are cached (blocks do not change below the head on this chain's
 * finality, and a reorg on a public chain is handled by reading at a block behind the head).
 */
export function createEvmVerifierChain(
  client: ChainReader | ChainClient,
  options: { deployBlock: bigint },
): VerifierChain {
  const pub = client.public
  const stamps = new Map<bigint, { hash: Hex; timestamp: number }>()
  const blockAt = async (n: bigint) => {
    let b = stamps.get(n)
    if (b === undefined) {
      const block = await pub.getBlock({ blockNumber: n })
      b = { hash: block.hash as Hex, timestamp: Number(block.timestamp) }
      stamps.set(n, b)
    }
    return b
  }
  const read = <T>(
    address: `0x${string}`,
    abi: typeof nodeRegistryAbi | typeof epochRewardsAbi,
    functionName: string,
    args: readonly unknown[],
    blockNumber: bigint,
  ) => readContract<T>(client, { address, abi, functionName, args, blockNumber })

  // Parameter sets by epoch, kept once final (the chain's clock has reached the epoch); the newest
  // PARAMS_CACHED epochs only.
  const paramsCache = new Map<number, RewardParams>()
  let clock: Promise<{ genesisTime: number; epochDuration: number }> | undefined
  const epochClock = () => {
    clock ??= (async () => {
      const call = (functionName: string) =>
        readContract<bigint>(client, {
          address: client.contracts.NetworkParams,
          abi: networkParamsAbi,
          functionName,
          args: [],
        })
      const [genesisTime, epochDuration] = await Promise.all([call('genesisTime'), call('epochDuration')])
      return { genesisTime: Number(genesisTime), epochDuration: Number(epochDuration) }
    })().catch((err: unknown) => {
      clock = undefined
      throw err
    })
    return clock
  }

  // Posted roots, kept up to date by postedRoots() from the blocks it has not read yet.
  const roots = new Map<number, { root: Hex; digest: Hex; totalCumulative: bigint; block: bigint }>()
  let scannedTo = options.deployBlock - 1n
  let scanning: Promise<void> = Promise.resolve()

  return {
    async head() {
      const block = await pub.getBlock()
      return { number: block.number as bigint, timestamp: Number(block.timestamp) }
    },

    async paymentFees(fromBlock, toBlock) {
      const fees = new Map<string, bigint>()
      if (toBlock < fromBlock) return fees
      const logs = await pub.getContractEvents({
        address: client.contracts.Payments,
        abi: paymentsAbi,
        eventName: 'VoucherRedeemed',
        fromBlock,
        toBlock,
      })
      for (const log of logs) {
        const { provider, fee } = log.args as { provider: `0x${string}`; fee: bigint }
        const key = provider.toLowerCase()
        if (fee > 0n) fees.set(key, (fees.get(key) ?? 0n) + fee)
      }
      return fees
    },

    async firstBlockAtOrAfter(timestamp) {
      const head = (await pub.getBlock()).number as bigint
      if ((await blockAt(head)).timestamp < timestamp) return undefined
      // Binary search: timestamps never decrease with the block number.
      let lo = options.deployBlock
      let hi = head
      while (lo < hi) {
        const mid = (lo + hi) / 2n
        if ((await blockAt(mid)).timestamp >= timestamp) hi = mid
        else lo = mid + 1n
      }
      const b = await blockAt(lo)
      return { number: lo, hash: b.hash, timestamp: b.timestamp }
    },

    async registry(block) {
      const registry = client.contracts.NodeRegistry
      const [nodeLogs, verifierLogs] = await Promise.all([
        pub.getContractEvents({
          address: registry,
          abi: nodeRegistryAbi,
          eventName: 'NodeRegistered',
          fromBlock: options.deployBlock,
          toBlock: block,
        }),
        pub.getContractEvents({
          address: registry,
          abi: nodeRegistryAbi,
          eventName: 'VerifierRegistered',
          fromBlock: options.deployBlock,
          toBlock: block,
        }),
      ])
      // The newest registration of each node id (a node can register again after leaving).
      const nodeIds = new Map<Hex, Hex>()
      for (const log of nodeLogs) {
        const args = log.args as { nodeId: Hex; peerId: Hex }
        nodeIds.set(args.nodeId, args.peerId)
      }
      const nodes: RegistrySnapshot['nodes'] = []
      for (const [nodeId, peerIdBytes] of nodeIds) {
        const active = await read<boolean>(registry, nodeRegistryAbi, 'isActiveNode', [nodeId], block)
        if (!active) continue
        const n = await read<{
          operator: `0x${string}`
          stake: bigint
          registeredAt: bigint
          h3Cell: bigint
          services: number
        }>(registry, nodeRegistryAbi, 'getNode', [nodeId], block)
        nodes.push({
          peerId: peerIdOfBytes(peerIdBytes),
          operator: n.operator,
          stake: n.stake,
          registeredAt: Number(n.registeredAt),
          h3Cell: n.h3Cell.toString(16),
          services: Number(n.services),
        })
      }
      const verifierPeers = new Map<`0x${string}`, Hex>()
      for (const log of verifierLogs) {
        const args = log.args as { verifier: `0x${string}`; peerId: Hex }
        verifierPeers.set(args.verifier, args.peerId)
      }
      const verifiers: RegistrySnapshot['verifiers'] = []
      for (const [address, peerIdBytes] of verifierPeers) {
        const active = await read<boolean>(registry, nodeRegistryAbi, 'isActiveVerifier', [address], block)
        if (!active) continue
        const v = await read<{ stake: bigint }>(registry, nodeRegistryAbi, 'getVerifier', [address], block)
        verifiers.push({ peerId: peerIdOfBytes(peerIdBytes), address, stake: v.stake })
      }
      return { nodes, verifiers }
    },

    async postedRoots() {
      // Incremental: only blocks not scanned before are read (one call a second per verifier would
      // otherwise read every root since deploy). Calls are serialised so that no range is read twice.
      // A failed scan leaves `scannedTo` where it was: the next call reads the range again.
      const run = scanning
        .catch(() => undefined)
        .then(async () => {
          const head = (await pub.getBlock()).number as bigint
          if (head < scannedTo + 1n) return
          const range = {
            address: client.contracts.EpochRewards,
            abi: epochRewardsAbi,
            fromBlock: scannedTo + 1n,
            toBlock: head,
          }
          const [posted, revoked] = await Promise.all([
            pub.getContractEvents({ ...range, eventName: 'RootPosted' }),
            pub.getContractEvents({ ...range, eventName: 'RootRevoked' }),
          ])
          // Replay in chain order: a revoke removes the epoch's root until it is posted again.
          const events = [
            ...posted.map((l) => ({ kind: 'posted' as const, l })),
            ...revoked.map((l) => ({ kind: 'revoked' as const, l })),
          ].sort(
            (a, b) =>
              Number((a.l.blockNumber ?? 0n) - (b.l.blockNumber ?? 0n)) ||
              (a.l.logIndex ?? 0) - (b.l.logIndex ?? 0),
          )
          for (const { kind, l } of events) {
            const args = l.args as { epoch: bigint; root: Hex; bundleDigest?: Hex; totalCumulative?: bigint }
            if (kind === 'revoked') roots.delete(Number(args.epoch))
            else
              roots.set(Number(args.epoch), {
                root: args.root,
                digest: args.bundleDigest as Hex,
                totalCumulative: args.totalCumulative as bigint,
                block: l.blockNumber as bigint,
              })
          }
          scannedTo = head
        })
      scanning = run
      await run
      return new Map(roots)
    },

    async paramsAt(epoch) {
      const held = paramsCache.get(epoch)
      if (held !== undefined) return held
      const [head, { genesisTime, epochDuration }] = await Promise.all([pub.getBlock(), epochClock()])
      // Read as of the head block: if that block is in `epoch` or later, no change can still land
      // for `epoch` (one executed from now on applies from a later epoch), so the answer is final.
      const read = await getNetworkParams(client, {
        epoch: BigInt(epoch),
        blockNumber: head.number as bigint,
      })
      const params = toRewardParams(read)
      if (Number(head.timestamp) >= genesisTime + epoch * epochDuration) {
        paramsCache.set(epoch, params)
        if (paramsCache.size > PARAMS_CACHED) paramsCache.delete(Math.min(...paramsCache.keys()))
      }
      return params
    },
  }
}

/** Epochs whose parameter set the EVM chain port keeps in memory. */
const PARAMS_CACHED = 64

/** A PostRoot message (the EIP-712 fields). */
export type PostRootMessage = Messages['PostRoot']

/** What closing an epoch needs of the chain beyond reading: signing, checking and posting roots. */
export interface RootPoster {
  /** The verifier's address (its EIP-712 signing key). */
  readonly address: `0x${string}`
  /** NodeRegistry's quorum and EpochRewards' revocation count and next epoch, now. */
  state(): Promise<{ quorum: number; revocations: number; nextEpoch: number }>
  sign(message: PostRootMessage): Promise<`0x${string}`>
  /** Who signed `message` (EIP-712 recovery against EpochRewards' domain). */
  recover(message: PostRootMessage, signature: `0x${string}`): Promise<`0x${string}`>
  /** Posts the root; throws the chain layer's coded error when the contract refuses. */
  post(message: Omit<PostRootMessage, 'revocations'>, signatures: readonly SignedBy[]): Promise<void>
}

/** The {@link RootPoster} of a chain client whose account is the verifier's. */
export function createEvmRootPoster(client: ChainClient): RootPoster {
  const domain = contractDomain('EpochRewards', client.chainId, client.contracts.EpochRewards)
  const account = client.wallet.account as Parameters<typeof signPostRoot>[1]
  return {
    address: account.address,
    async state() {
      const [quorum, epochs] = await Promise.all([
        readContract<number | bigint>(client, {
          address: client.contracts.NodeRegistry,
          abi: nodeRegistryAbi,
          functionName: 'quorum',
          args: [],
        }),
        getEpochState(client),
      ])
      return { quorum: Number(quorum), revocations: epochs.revocations, nextEpoch: Number(epochs.nextEpoch) }
    },
    async sign(message) {
      return (await signPostRoot(client, account, message)).signature as `0x${string}`
    },
    recover: (message, signature) => recoverSigner(domain, 'PostRoot', message, signature),
    async post(message, signatures) {
      await postRoot(client, { ...message, signatures })
    },
  }
}

/** What a verifier needs to slash a node with a quorum (the EVM here; a ledger in the simulator). */
export interface NodeSlasher {
  readonly address: `0x${string}`
  quorum(): Promise<number>
  /** Whether this evidence already slashed (each evidence hash slashes once). */
  used(evidenceHash: Hex): Promise<boolean>
  sign(message: Messages['SlashNode']): Promise<`0x${string}`>
  recover(message: Messages['SlashNode'], signature: `0x${string}`): Promise<`0x${string}`>
  /** Submits the slash; resolves with the transaction hash. */
  slash(message: Messages['SlashNode'], signatures: readonly SignedBy[]): Promise<string>
}

/** The {@link NodeSlasher} of NodeRegistry, signing and sending as the verifier's operator key. */
export function createEvmNodeSlasher(client: ChainClient): NodeSlasher {
  const domain = contractDomain('NodeRegistry', client.chainId, client.contracts.NodeRegistry)
  const account = client.wallet.account as Parameters<typeof signSlashNode>[1]
  const registry = { address: client.contracts.NodeRegistry, abi: nodeRegistryAbi }
  return {
    address: account.address,
    quorum: async () =>
      Number(await readContract<number | bigint>(client, { ...registry, functionName: 'quorum', args: [] })),
    used: (evidenceHash) =>
      readContract<boolean>(client, { ...registry, functionName: 'evidenceUsed', args: [evidenceHash] }),
    sign: async (message) => (await signSlashNode(client, account, message)).signature as `0x${string}`,
    recover: (message, signature) => recoverSigner(domain, 'SlashNode', message, signature),
    slash: async (message, signatures) => (await slashNode(client, { ...message, signatures })).hash,
  }
}
