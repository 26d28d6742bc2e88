import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  type Hex,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import type { Eip1193Provider } from './dev-chain.js'
import { chainError } from './errors.js'
import type { NetworkFile } from './network-file.js'

/** Contract addresses by name. */
export type ContractAddresses = NetworkFile['contracts']

/**
 * What every chain action takes: a public client to read, a wallet client to send (with a local
 * account that signs), and the contracts' addresses.
 */
export interface ChainClient {
  readonly public: PublicClient<Transport, Chain>
  readonly wallet: WalletClient<Transport, Chain, Account>
  readonly contracts: ContractAddresses
  readonly chainId: number
}

/** A read-only client: enough for views, proofs and verification. */
export type ChainReader = Pick<ChainClient, 'public' | 'contracts' | 'chainId'>

/** Options of {@link createChainReader}. */
export interface ChainReaderInit {
  chainId: number
  contracts: ContractAddresses
  /** JSON-RPC URL, or an in-process EIP-1193 provider (tests, the embedded chain). */
  rpc: string | Eip1193Provider
  /** Receipt polling interval in ms. Default 100 for loopback and in-process, 2000 otherwise. */
  pollingInterval?: number
}

/** Options of {@link createChainClient}. */
export interface ChainClientInit extends ChainReaderInit {
  /** The sending account's private key (never logged). */
  privateKey: Hex
}

/** Builds the viem chain object for a Meshwork network. */
export function meshworkChain(chainId: number, rpcUrl = 'http://127.0.0.1:8545'): Chain {
  return defineChain({
    id: chainId,
    name: chainId === 31337 ? 'Meshwork devnet' : `Meshwork (chain ${chainId})`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  })
}

function transportFor(rpc: string | Eip1193Provider): Transport {
  if (typeof rpc === 'string') return http(rpc, { timeout: 15_000, retryCount: 1 })
  return custom(
    { request: (args: { method: string; params?: unknown }) => rpc.request(args as never) },
    { retryCount: 0 },
  )
}

function setup(init: ChainReaderInit) {
  const local = typeof init.rpc !== 'string' || LOOPBACK.test(init.rpc)
  const pollingInterval = init.pollingInterval ?? (local ? 100 : 2_000)
  const chain = meshworkChain(init.chainId, typeof init.rpc === 'string' ? init.rpc : undefined)
  return { chain, transport: transportFor(init.rpc), pollingInterval }
}

const LOOPBACK = /^https?:\/\/(127\.|localhost|\[::1\])/

/** Creates a read-only client without checking the chain. */
export function createChainReader(init: ChainReaderInit): ChainReader {
  const { chain, transport, pollingInterval } = setup(init)
  return {
    public: createPublicClient({ chain, transport, pollingInterval }) as PublicClient<Transport, Chain>,
    contracts: init.contracts,
    chainId: init.chainId,
  }
}

/** Creates a sending client without checking the chain; see {@link connectChain} for the checked version. */
export function createChainClient(init: ChainClientInit): ChainClient {
  const { chain, transport, pollingInterval } = setup(init)
  return {
    ...createChainReader(init),
    wallet: createWalletClient({
      chain,
      transport,
      pollingInterval,
      account: privateKeyToAccount(init.privateKey),
    }),
  }
}

/**
 * Creates a client and checks, with one-line errors that name the fix, that the RPC answers, that
 * its chain id is the network file's, and that the token contract is deployed there. Without a
 * private key the client is read-only.
 */
export async function connectChain(init: ChainClientInit): Promise<ChainClient>
export async function connectChain(init: ChainReaderInit): Promise<ChainReader>
export async function connectChain(init: ChainReaderInit & { privateKey?: Hex }): Promise<ChainReader> {
  const client = init.privateKey
    ? createChainClient({ ...init, privateKey: init.privateKey })
    : createChainReader(init)
  await checkChain(client, init)
  return client
}

/** Checks that the RPC answers with the expected chain id and has our contracts. */
export async function checkChain(client: ChainReader, init: ChainReaderInit): Promise<void> {
  const where = typeof init.rpc === 'string' ? init.rpc : 'the in-process chain'
  let chainId: number
  try {
    chainId = await client.public.getChainId()
  } catch (err) {
    throw chainError('RPC_UNREACHABLE', `cannot reach the chain at ${where}`, {
      hint: 'Start it with `meshwork chain start` (or `meshwork devnet`), or pass the right --rpc URL',
      cause: err,
    })
  }
  if (chainId !== init.chainId) {
    throw chainError(
      'CHAIN_ID_MISMATCH',
      `the chain at ${where} has chain id ${chainId}, the network file says ${init.chainId}`,
      {
        hint: 'Point --rpc at the chain the network was deployed to, or redeploy with `meshwork deploy --force`',
        details: { expected: init.chainId, actual: chainId },
      },
    )
  }
  const code = await client.public.getCode({ address: init.contracts.MeshToken })
  if (code === undefined || code === '0x') {
    throw chainError('CONTRACT_MISSING', `no MeshToken contract at ${init.contracts.MeshToken} on ${where}`, {
      hint: 'The chain was reset since the deploy: run `meshwork deploy --force` (or restart `meshwork devnet`)',
    })
  }
}

/** Asks a chain for its id; fails with RPC_UNREACHABLE (naming the fix) when it does not answer. */
export async function probeChainId(rpc: string | Eip1193Provider): Promise<number> {
  const reader = createChainReader({ chainId: 1, contracts: NO_CONTRACTS, rpc })
  try {
    return await reader.public.getChainId()
  } catch (err) {
    throw chainError(
      'RPC_UNREACHABLE',
      `cannot reach the chain at ${typeof rpc === 'string' ? rpc : 'the in-process chain'}`,
      {
        hint: 'Start it with `meshwork chain start` (or `meshwork devnet`), or pass the right --rpc URL',
        cause: err,
      },
    )
  }
}

const ZERO = '0x0000000000000000000000000000000000000000'
/** Placeholder addresses for a client used before anything is deployed. */
export const NO_CONTRACTS: ContractAddresses = {
  MeshToken: ZERO,
  NodeRegistry: ZERO,
  EpochRewards: ZERO,
  Payments: ZERO,
  MeshTimelock: ZERO,
  MeshGovernor: ZERO,
  NetworkParams: ZERO,
}
