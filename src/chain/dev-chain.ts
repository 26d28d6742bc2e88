import {
  closeSync,
  existsSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  truncateSync,
  writeSync,
} from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Logger } from '../core/logger.js'
import { type DevAccount, devAccounts } from './dev-accounts.js'
import { createDevChainMetrics, type DevChainMetrics } from './dev-chain-metrics.js'
import { chainError } from './errors.js'

/** A minimal EIP-1193 provider: what viem's `custom` transport and the HTTP front need. */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>
}

/** Options of {@link startDevChain}. */
export interface DevChainInit {
  /** Default 31337. */
  chainId?: number
  /** Funded dev accounts derived from the dev mnemonic. Default 20. */
  accounts?: number
  /** Wei given to each dev account. Default 10,000 ether. */
  balance?: bigint
  /** Serve JSON-RPC over HTTP on this port (0 picks a free one). Omit for in-process use only. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /**
   * Keep the chain in this directory: every state-changing request is appended to a journal (fsynced
   * before it is answered) and replayed, with its block timestamps, on the next start.
   */
  stateDir?: string
  logger?: Logger
}

/** A running embedded chain. */
export interface DevChain {
  /** In-process provider (no HTTP). */
  readonly provider: Eip1193Provider
  /** The JSON-RPC URL, when served over HTTP. */
  readonly url: string | undefined
  readonly chainId: number
  readonly accounts: readonly DevAccount[]
  /** Blocks replayed from the state directory at start. */
  readonly replayed: number
  /** Prometheus metrics, also served at GET /metrics when served over HTTP. */
  readonly metrics: DevChainMetrics
  stop(): Promise<void>
}

/** Largest JSON-RPC request body accepted over HTTP. */
export const MAX_RPC_BODY_BYTES = 8 * 1024 * 1024

/** Requests that change chain state and therefore go to the journal. */
const STATEFUL = new Set([
  'eth_sendRawTransaction',
  'eth_sendTransaction',
  'evm_mine',
  'hardhat_mine',
  'evm_increaseTime',
  'evm_setNextBlockTimestamp',
  'evm_snapshot',
  'evm_revert',
  'hardhat_setBalance',
  'hardhat_setCode',
  'hardhat_setNonce',
  'hardhat_setStorageAt',
  'hardhat_impersonateAccount',
  'hardhat_stopImpersonatingAccount',
])
/** Time changes are not replayed: each journaled block carries its own timestamp instead. */
const TIME_ONLY = new Set(['evm_increaseTime', 'evm_setNextBlockTimestamp'])
const REFUSED = new Set(['hardhat_reset', 'hardhat_setLoggingEnabled', 'hardhat_dropTransaction'])

interface JournalEntry {
  m: string
  p: unknown[]
  /** Block number before the request, and the timestamp of the first block it mined, if any. */
  b: number
  t?: number
}

interface HardhatProviderModule {
  createHardhatNetworkProvider(
    config: Record<string, unknown>,
    logger: { enabled: boolean },
  ): Promise<Eip1193Provider>
}

const require = createRequire(import.meta.url)

/**
 * Starts an in-process EVM dev chain (Hardhat 2's EDR network) and, when `port` is given, serves it as
 * JSON-RPC over HTTP on 127.0.0.1, so that any EVM client (viem, ethers, a wallet) can use it.
 * Transactions mine instantly (automine); reverted transactions are mined with status 0, as on a real
 * chain.
 *
 * @example
 * ```ts
 * const chain = await startDevChain({ port: 8545, stateDir: '.meshwork/chain' })
 * // ... http://127.0.0.1:8545
 * await chain.stop()
 * ```
 */
export async function startDevChain(init: DevChainInit = {}): Promise<DevChain> {
  const chainId = init.chainId ?? 31337
  const accounts = devAccounts(init.accounts ?? 20)
  const balance = init.balance ?? 10_000n * 10n ** 18n
  const log = init.logger
  const { createHardhatNetworkProvider } =
    require('hardhat/internal/hardhat-network/provider/provider') as HardhatProviderModule
  const inner = await createHardhatNetworkProvider(
    {
      hardfork: 'prague',
      chainId,
      networkId: chainId,
      blockGasLimit: 30_000_000,
      minGasPrice: 0n,
      automine: true,
      intervalMining: 0,
      mempoolOrder: 'priority',
      chains: new Map(),
      genesisAccounts: accounts.map((a) => ({ privateKey: a.privateKey, balance: balance.toString() })),
      allowUnlimitedContractSize: false,
      throwOnTransactionFailures: false,
      throwOnCallFailures: true,
      // Blocks may share a second: the chain's time then follows the wall clock even when many
      // transactions land in a second, as a live chain's does (epochs are chain time).
      allowBlocksWithSameTimestamp: true,
      enableTransientStorage: false,
      enableRip7212: false,
      initialDate: init.stateDir ? journalGenesisDate(init.stateDir) : undefined,
    },
    { enabled: false },
  )

  const blockNumber = async () =>
    Number(BigInt((await inner.request({ method: 'eth_blockNumber' })) as string))
  const blockTimestamp = async (n: number) => {
    const block = (await inner.request({
      method: 'eth_getBlockByNumber',
      params: [`0x${n.toString(16)}`, false],
    })) as {
      timestamp: string
    }
    return Number(BigInt(block.timestamp))
  }

  let replayed = 0
  let journalFd: number | undefined
  if (init.stateDir) {
    mkdirSync(init.stateDir, { recursive: true })
    const path = join(init.stateDir, 'journal.ndjson')
    replayed = await replayJournal(inner, path, blockNumber)
    journalFd = openSync(path, 'a', 0o600)
    if (replayed > 0) {
      log?.info({ blocks: replayed }, 'replayed chain journal')
      // The chain was paused while stopped; let its clock catch up with the wall clock again.
      const last = await blockTimestamp(replayed)
      const now = Math.floor(Date.now() / 1000)
      if (now > last) await inner.request({ method: 'evm_setNextBlockTimestamp', params: [now] })
    }
  }

  const metrics = createDevChainMetrics({ head: blockNumber })

  // With a journal, state-changing requests run one at a time so that the journal's order is the
  // chain's order, and each is on disk before it is answered.
  let queue: Promise<unknown> = Promise.resolve()
  const journaled = async (fd: number, args: { method: string; params?: unknown[] }): Promise<unknown> => {
    const before = await blockNumber()
    let result: unknown
    let failure: unknown
    try {
      result = await inner.request(args)
    } catch (err) {
      failure = err
    }
    const after = await blockNumber()
    if (failure === undefined || after !== before) {
      const entry: JournalEntry = { m: args.method, p: args.params ?? [], b: before }
      if (after > before) entry.t = await blockTimestamp(before + 1)
      writeSync(fd, `${JSON.stringify(entry)}\n`)
      fdatasyncSync(fd)
      metrics.journaled()
    }
    if (failure !== undefined) throw failure
    return result
  }
  const route = (args: { method: string; params?: unknown[] }): Promise<unknown> => {
    if (REFUSED.has(args.method)) {
      return Promise.reject(new RpcError(`${args.method} is not supported by the Meshwork dev chain`, -32601))
    }
    const fd = journalFd
    if (fd === undefined || !STATEFUL.has(args.method)) return inner.request(args)
    const run = () => journaled(fd, args)
    const next = queue.then(run, run)
    queue = next.catch(() => undefined)
    return next
  }
  const provider: Eip1193Provider = {
    async request(args) {
      const started = performance.now()
      try {
        const result = await route(args)
        metrics.request(args.method, 'ok', (performance.now() - started) / 1000)
        return result
      } catch (err) {
        metrics.request(args.method, 'error', (performance.now() - started) / 1000)
        throw toRpcError(err)
      }
    },
  }

  let server: Server | undefined
  let url: string | undefined
  if (init.port !== undefined) {
    server = createServer((req, res) => {
      if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
        void metrics.registry.metrics().then((text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text)
        })
        return
      }
      void serveRpc(provider, req, res)
    })
    const host = init.host ?? '127.0.0.1'
    await new Promise<void>((resolve, reject) => {
      server?.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'EADDRINUSE'
            ? chainError('INVALID_ARGUMENT', `port ${init.port} is already in use`, {
                hint: 'Stop what uses it, or pass another --port',
                cause: err,
              })
            : err,
        ),
      )
      server?.listen(init.port, host, () => resolve())
    })
    const address = server.address() as AddressInfo
    url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`
  }

  let stopped = false
  return {
    provider,
    url,
    chainId,
    accounts,
    replayed,
    metrics,
    async stop() {
      if (stopped) return
      stopped = true
      if (server) {
        server.closeAllConnections()
        await new Promise<void>((resolve) => server?.close(() => resolve()))
      }
      await queue
      if (journalFd !== undefined) closeSync(journalFd)
    },
  }
}

/** The first journaled block's date, so that a replayed chain has the same genesis time. */
function journalGenesisDate(dir: string): Date | undefined {
  const path = join(dir, 'genesis.json')
  if (existsSync(path)) {
    let timestamp: unknown
    try {
      timestamp = (JSON.parse(readFileSync(path, 'utf8')) as { timestamp?: unknown }).timestamp
    } catch {
      timestamp = undefined
    }
    if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0) {
      throw chainError('CHAIN_STATE_INVALID', `chain state ${path} is corrupt`, {
        hint: 'Move the state directory away to start a fresh chain',
      })
    }
    return new Date(timestamp * 1000)
  }
  mkdirSync(dir, { recursive: true })
  const timestamp = Math.floor(Date.now() / 1000)
  const fd = openSync(path, 'w', 0o600)
  writeSync(fd, JSON.stringify({ timestamp }))
  fdatasyncSync(fd)
  closeSync(fd)
  return new Date(timestamp * 1000)
}

async function replayJournal(
  inner: Eip1193Provider,
  path: string,
  blockNumber: () => Promise<number>,
): Promise<number> {
  if (!existsSync(path)) return 0
  const text = readFileSync(path, 'utf8')
  const lines = text.split('\n')
  let offset = 0
  for (const [i, line] of lines.entries()) {
    const start = offset
    offset += Buffer.byteLength(line) + 1
    if (line.trim() === '') continue
    let entry: JournalEntry
    try {
      entry = JSON.parse(line) as JournalEntry
    } catch (err) {
      // Only the last line can be torn (a crash mid-write); it was never acknowledged. Cut it off so
      // that new entries do not land after it.
      if (i === lines.length - 1) {
        truncateSync(path, start)
        break
      }
      throw chainError('CHAIN_STATE_INVALID', `chain journal ${path} is corrupt at line ${i + 1}`, {
        hint: 'Move the state directory away to start a fresh chain',
        cause: err,
      })
    }
    if (TIME_ONLY.has(entry.m)) continue
    const now = await blockNumber()
    if (now !== entry.b) {
      throw chainError('CHAIN_STATE_INVALID', `chain journal ${path} diverged at line ${i + 1}`, {
        details: { expectedBlock: entry.b, block: now },
        hint: 'Move the state directory away to start a fresh chain',
      })
    }
    if (entry.t !== undefined) await inner.request({ method: 'evm_setNextBlockTimestamp', params: [entry.t] })
    try {
      await inner.request({ method: entry.m, params: entry.p })
    } catch {
      // It failed the first time too (only requests that mined a block are journaled after failing).
    }
  }
  return blockNumber()
}

/** A JSON-RPC error as EIP-1193 providers throw it: `code` 3 with revert `data` for a revert. */
export class RpcError extends Error {
  override readonly name = 'RpcError'
  constructor(
    message: string,
    readonly code: number,
    readonly data?: unknown,
  ) {
    super(message)
  }
}

function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err
  const e = err as { code?: unknown; message?: string; data?: unknown }
  const hasData = typeof e.data === 'string' && e.data.startsWith('0x')
  const code = hasData ? 3 : typeof e.code === 'number' ? e.code : -32603
  return new RpcError(e.message ?? String(err), code, e.data)
}

interface RpcRequest {
  jsonrpc?: unknown
  id?: unknown
  method?: unknown
  params?: unknown
}

async function serveRpc(provider: Eip1193Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
  res.setHeader('Access-Control-Allow-Origin', '*')
  res.setHeader('Access-Control-Allow-Headers', 'content-type')
  if (req.method === 'OPTIONS') {
    res.writeHead(204).end()
    return
  }
  if (req.method !== 'POST') {
    res
      .writeHead(405, { 'content-type': 'text/plain' })
      .end('POST JSON-RPC requests here (GET /metrics for Prometheus)\n')
    return
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_RPC_BODY_BYTES) {
      res.writeHead(413, { 'content-type': 'application/json' })
      res.end(JSON.stringify(rpcError(null, -32600, 'request body too large')))
      req.destroy()
      return
    }
    chunks.push(chunk as Buffer)
  }
  let body: unknown
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify(rpcError(null, -32700, 'parse error')))
    return
  }
  const reply = Array.isArray(body)
    ? await Promise.all(body.map((r) => handleOne(provider, r as RpcRequest)))
    : await handleOne(provider, body as RpcRequest)
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply))
}

function rpcError(id: unknown, code: number, message: string, data?: unknown) {
  return { jsonrpc: '2.0', id: id ?? null, error: { code, message, ...(data === undefined ? {} : { data }) } }
}

async function handleOne(provider: Eip1193Provider, r: RpcRequest) {
  if (typeof r !== 'object' || r === null || typeof r.method !== 'string') {
    return rpcError(r?.id, -32600, 'invalid request')
  }
  if (r.params !== undefined && !Array.isArray(r.params))
    return rpcError(r.id, -32602, 'params must be an array')
  try {
    const result = await provider.request({ method: r.method, ...(r.params ? { params: r.params } : {}) })
    return { jsonrpc: '2.0', id: r.id ?? null, result: result ?? null }
  } catch (err) {
    const e = toRpcError(err)
    return rpcError(r.id, e.code, e.message, e.data)
  }
}
