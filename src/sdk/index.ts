import '../core/polyfill.js'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { getEpochState } from '../chain/actions/get-epoch-state.js'
import { type ChainReader, createChainClient, createChainReader } from '../chain/client.js'
import { type NetworkFile, readNetworkFile } from '../chain/network-file.js'
import { BlobServer } from '../compute/blobs.js'
import { chainBuilderLedger, chainVerifyBounds } from '../compute/chain-ledgers.js'
import { ComputeError } from '../compute/errors.js'
import { runJob } from '../compute/job-protocol.js'
import { type JobLimits, type JobSpec, parseJobSpec } from '../compute/job-spec.js'
import { PaymentWallet } from '../compute/payments.js'
import { placeJob, type ScoredQuote } from '../compute/placement.js'
import { FRAUD_EVIDENCE, reportRun, WORK_RECEIPT } from '../compute/receipts.js'
import { type FraudEvidence, NodeHistory, runVerified } from '../compute/verification.js'
import { type CurrentVerifyBounds, VerifyBoundsCache } from '../compute/verify-bounds-cache.js'
import { systemClock } from '../core/clock.js'
import { InvalidArgumentError } from '../core/errors.js'
import { createLogger, type Logger } from '../core/logger.js'
import { createMeshLibp2p, type MeshLibp2p } from '../mesh/create-libp2p.js'
import { createLibp2pPort } from '../mesh/libp2p-port.js'
import type { NetworkPort } from '../mesh/network-port.js'
import { createPeerSigner, createPeerVerifier } from '../mesh/peer-key.js'
import { createWireCodec, type Envelope, networkIdOf, type WireCodec } from '../mesh/wire-codec.js'
import { AdTable, type KnownAd } from '../node/ad-table.js'
import { ADVERTISEMENT, type Advertisement, adTopic } from '../node/advertisement.js'
import { syncAds } from '../node/advertiser.js'
import { SENSOR_READING } from '../sensors/reading.js'
import { type SensorQuery, type SubscribedReading, subscribeSensors } from '../sensors/subscriber.js'
import {
  getFile,
  putFile,
  type RepairResult,
  repairFile,
  type StorageClientComponents,
  type StoragePayment,
} from '../storage/client.js'
import { type Manifest, shardBytesOf } from '../storage/file-codec.js'
import { rankHolders, storageCandidates } from '../storage/placement.js'
import { STORAGE_MESSAGES, type StorageReceiptBody, shardPrice } from '../storage/protocol.js'
import { type Lease, type LeaseStore, leaseOf, leasesOf, RentPayer, rentBillId } from '../storage/rent.js'
import { type ContentKey, formatContentKey, parseContentKey, SEGMENT_BYTES } from '../storage/sealed.js'

/**
 * The builder's SDK: join a Meshwork network as a light client and run jobs on it.
 *
 * @example
 * ```ts
 * import { Meshwork } from 'meshwork/sdk'
 * const mw = await Meshwork.connect({ network: 'network.json' })
 * const r = await mw.jobs.run({ kind: 'js', code: '(xs) => xs.map((x) => x * x)', input: [1, 2, 3] })
 * console.log(r.value, r.provider, r.tier, r.latencyMs)
 * await mw.close()
 * ```
 */

/** Options of {@link Meshwork.connect}. */
export interface ConnectOptions {
  /** The network file (a path, or its parsed content). */
  network: string | NetworkFile
  /** More bootstrap peers (multiaddrs with /p2p/), on top of the network file's. */
  bootstrap?: string[]
  /** The builder's own operator addresses (for `localOnly` jobs). */
  ownOperators?: string[]
  logger?: Logger
  /** How long to wait for the first peer (default 10 s). */
  connectTimeoutMs?: number
  /**
   * Pays for jobs: the builder's account (a funded private key). A channel is opened to each
   * provider on first use with `deposit` (default 1 MESH) and each job is paid with a voucher after
   * its result checked. Without it only free nodes run this client's jobs.
   */
  payer?: { privateKey: `0x${string}`; rpc?: string; deposit?: bigint }
  /**
   * Where the current NetworkParams (the compute re-run bounds, `compute.verifyMinPpm` and
   * `compute.verifyMaxPpm`) are read, once per epoch: by default the network file's RPC (the
   * payer's `rpc` when given); a reader of your own; or `false` for none, when the bounds of
   * `INITIAL_NETWORK_PARAMS` (5% to 100%) apply. An RPC that does not answer falls back the same way
   * (the last set read, else the initial one) and is asked again 30 s later.
   */
  chain?: ChainReader | false
}

/** A job as the SDK takes it; everything but kind and code has a default. */
export interface JobRequest {
  kind: 'wasm' | 'js' | 'onnx'
  /** WASM bytes, a JS function's source `(input) => output`, or an ONNX model's bytes. */
  code: Uint8Array | string
  /**
   * JS: any JSON value. WASM: bytes (or a string, as UTF-8). ONNX: the feeds,
   * `{ [input]: { type: 'float32' | …, dims: number[], data: number[] } }`.
   */
  input?: unknown
  limits?: Partial<JobLimits>
  /** Near a point (radius in km, default 100) or an H3 cell. */
  near?: { lat: number; lon: number; radiusKm?: number } | { cell: string }
  maxRttMs?: number
  localOnly?: boolean
  tier?: 'edge' | 'cloud' | 'any'
  /** The most to pay, MESH base units (default 1 MESH). */
  maxPrice?: bigint
  /** How long the result is wanted for (default 60 s from now). */
  deadlineMs?: number
  /**
   * The chance of re-running the job on an independent node to check it, 0 to 1. Default: adaptive,
   * by the network's current NetworkParams: `compute.verifyMaxPpm` (100% at deploy) for a node this
   * client has no history with, falling to `compute.verifyMinPpm` (5% at deploy) as it proves itself
   * (`verificationPpm`).
   */
  verify?: number
  /**
   * Send code and input by sha-256 and serve them to the nodes that ask (they cache them, so a model
   * or module sent once is not sent again). Default: only blobs over 256 KiB.
   */
  byHash?: boolean
  /** Progress: placing (candidates), running (on which node), verifying, done. */
  onProgress?: (stage: 'placing' | 'running' | 'verifying' | 'done', detail: Record<string, unknown>) => void
}

/** A job's outcome. */
export interface JobOutcome {
  jobId: string
  output: Uint8Array
  /** JS jobs: the parsed JSON output. ONNX jobs: `{ [output]: { type, dims, data } }`. */
  value?: unknown
  /** The node that ran it, its tier, and whether it won as a cloud fallback. */
  provider: string
  tier: 'edge' | 'cloud'
  fallback: boolean
  price: bigint
  /** From submit to a checked, signed result (ms); placement and the run within it. */
  latencyMs: number
  placementMs: number
  /** The node's signature over the result's hashes (evidence if it is wrong). */
  sig: string
  /**
   * `signed`: the node's signed result, not re-run; `verified`: an independent node got the same
   * output; `majority`: outputs differed and a third node decided (see `evidence`).
   */
  verification: 'signed' | 'verified' | 'majority'
  /** Signed wrong results caught while checking this job (fraud evidence against those nodes). */
  evidence: FraudEvidence[]
  /** Paid in vouchers for this job, verification re-runs included (caught nodes are not paid). */
  paid: bigint
  /** Each node paid for this job and how much (one entry a node; acknowledged vouchers only). */
  payments: { node: string; amount: bigint }[]
}

const min = (a: bigint, b: bigint) => (a < b ? a : b)
/** Code or input larger than this goes by hash (the spec's inline limit is 512 KiB). */
const BY_HASH_BYTES = 256 * 1024

/** Puts a node's advertised addresses into the peer store, so that requests dial it directly. */
async function learnAddresses(libp2p: MeshLibp2p, peer: string, addrs: readonly string[], logger: Logger) {
  try {
    await libp2p.peerStore.merge(peerIdFromString(peer), { multiaddrs: addrs.map((a) => multiaddr(a)) })
  } catch (err) {
    logger.debug({ err, peer }, 'could not keep advertised addresses')
  }
}

/** A connected client: {@link Meshwork.jobs}, the ads it knows, and {@link Meshwork.close}. */
export class Meshwork {
  readonly network: NetworkFile
  readonly #port: NetworkPort
  readonly #table: AdTable
  readonly #net: string
  readonly #ownOperators: string[]
  readonly #unsubscribe: () => void
  readonly #history = new NodeHistory()
  readonly #wallet: PaymentWallet | undefined
  readonly #logger: Logger
  readonly #codec: WireCodec
  readonly #blobs: BlobServer
  readonly #bounds: VerifyBoundsCache
  readonly #reader: ChainReader | undefined

  private constructor(init: {
    network: NetworkFile
    libp2p: MeshLibp2p
    port: NetworkPort
    table: AdTable
    ownOperators: string[]
    unsubscribe: () => void
    wallet: PaymentWallet | undefined
    logger: Logger
    codec: WireCodec
    bounds: VerifyBoundsCache
    reader: ChainReader | undefined
  }) {
    this.#bounds = init.bounds
    this.#reader = init.reader
    this.#codec = init.codec
    this.#blobs = new BlobServer(init.port)
    this.#wallet = init.wallet
    this.#logger = init.logger
    this.network = init.network
    this.#port = init.port
    this.#table = init.table
    this.#net = networkIdOf(init.network)
    this.#ownOperators = init.ownOperators
    this.#unsubscribe = init.unsubscribe
  }

  /**
   * Joins the network's mesh with a throwaway identity, listens to advertisements and asks its first
   * peers for the ones they hold.
   *
   * @throws MeshworkError (e.g. NETWORK_FILE_MISSING) for a bad network file; JOB_NO_PROVIDER when
   *   no bootstrap peer answers within `connectTimeoutMs`.
   */
  static async connect(options: ConnectOptions): Promise<Meshwork> {
    const network = typeof options.network === 'string' ? readNetworkFile(options.network) : options.network
    const logger = options.logger ?? createLogger({ level: 'silent' })
    const net = networkIdOf(network)
    const key = await generateKeyPair('Ed25519')
    const bootstrap = [...network.bootstrap, ...(options.bootstrap ?? [])]
    const libp2p = await createMeshLibp2p({ privateKey: key, listen: [], bootstrap })
    const port = createLibp2pPort(libp2p, { logger })
    const table = new AdTable({ clock: systemClock })
    let seq = 0
    const codec = createWireCodec({
      network: net,
      signer: createPeerSigner(key),
      clock: systemClock,
      types: [ADVERTISEMENT, WORK_RECEIPT, FRAUD_EVIDENCE, ...STORAGE_MESSAGES, SENSOR_READING],
      // A throwaway identity: its messages are numbered from 1 for this session.
      nextSeq: () => ++seq,
    })
    const unsubscribe = port.subscribe(adTopic(net), (m) => {
      const decoded = codec.decode(m.data, { from: m.from })
      if (!decoded.ok) return decoded.verdict
      if (decoded.envelope.type !== ADVERTISEMENT.type) return 'reject'
      if (table.put(decoded.envelope as Envelope<Advertisement>, m.data))
        void learnAddresses(
          libp2p,
          decoded.envelope.from,
          (decoded.envelope.body as Advertisement).addrs,
          logger,
        )
      return 'accept'
    })
    const reader =
      options.chain === false
        ? undefined
        : (options.chain ??
          createChainReader({
            chainId: network.chainId,
            contracts: network.contracts,
            rpc: options.payer?.rpc ?? network.rpcUrl,
          }))
    const client = new Meshwork({
      network,
      bounds: new VerifyBoundsCache(network.parameters, {
        ...(reader === undefined ? {} : { read: chainVerifyBounds(reader) }),
        clock: systemClock,
        logger,
      }),
      libp2p,
      port,
      table,
      ownOperators: options.ownOperators ?? [],
      unsubscribe,
      logger,
      codec,
      reader,
      wallet:
        options.payer &&
        new PaymentWallet(
          {
            network: net,
            client: port.peerId,
            ...(options.payer.deposit === undefined ? {} : { deposit: options.payer.deposit }),
          },
          chainBuilderLedger(
            createChainClient({
              chainId: network.chainId,
              contracts: network.contracts,
              rpc: options.payer.rpc ?? network.rpcUrl,
              privateKey: options.payer.privateKey,
            }),
          ),
        ),
    })
    try {
      const peers: string[] = []
      const deadline = Date.now() + (options.connectTimeoutMs ?? 10_000)
      // Until one answers or the time is up: a node may be restarting, or refusing connections from
      // this host for a moment (libp2p limits inbound connections per host and second).
      for (let round = 0; peers.length === 0 && (round === 0 || Date.now() < deadline); round++) {
        if (round > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 250 * 2 ** round)))
        for (const address of bootstrap) {
          try {
            const c = await libp2p.dial(multiaddr(address), {
              signal: AbortSignal.timeout(Math.max(100, deadline - Date.now())),
            })
            peers.push(c.remotePeer.toString())
          } catch (err) {
            logger.debug({ err, address, round }, 'could not dial a bootstrap peer')
          }
        }
      }
      if (peers.length === 0)
        throw new ComputeError('JOB_NO_PROVIDER', 'could not reach any bootstrap peer of the network', {
          hint: 'Check the network file’s bootstrap list (or pass one), and that its nodes run',
        })
      await Promise.allSettled(peers.map((p) => syncAds(port, p, { codec, table })))
      // Dial nodes where their signed advertisements say they are (no lookup needed).
      await Promise.allSettled(table.list().map((a) => learnAddresses(libp2p, a.peerId, a.ad.addrs, logger)))
      return client
    } catch (err) {
      await client.close()
      throw err
    }
  }

  /** This client's peer id. */
  get peerId(): string {
    return this.#port.peerId
  }

  /** MESH base units signed over in vouchers this session (0 without a payer). */
  get spent(): bigint {
    return this.#wallet?.spent ?? 0n
  }

  /**
   * The compute re-run bounds jobs use now (without `verify`): NetworkParams' set for the chain's
   * current epoch (`source: 'chain'`, with its epoch and version), read once an epoch; the last set
   * read when the chain stopped answering (`stale`); or the initial set (`initial`: no chain, or it
   * never answered).
   */
  verifyBounds(): Promise<CurrentVerifyBounds> {
    return this.#bounds.current()
  }

  /** The nodes this client knows (their latest advertisements). */
  ads(): KnownAd[] {
    return this.#table.list()
  }

  readonly jobs = {
    /**
     * Places and runs a job: edge first, the best-scoring quote; if that node cannot be reached the
     * next best is tried. Resolves with the checked, signed result.
     *
     * @throws ComputeError JOB_SPEC_INVALID before anything is sent; the node's code when the job
     *   itself fails (JOB_TIMEOUT, JOB_MEMORY_LIMIT, JOB_OUTPUT_TOO_LARGE, JOB_FAILED); JOB_NO_PROVIDER.
     */
    run: (request: JobRequest): Promise<JobOutcome> => this.#run(request),
  }

  async #run(request: JobRequest): Promise<JobOutcome> {
    const started = performance.now()
    const { spec, inline, held } = this.#spec(request)
    try {
      return await this.#place(request, spec, inline, started)
    } finally {
      for (const hash of held) this.#blobs.release(hash)
    }
  }

  async #place(request: JobRequest, spec: JobSpec, inline: JobSpec, started: number): Promise<JobOutcome> {
    request.onProgress?.('placing', { jobId: spec.id, known: this.#table.size })
    // The re-run bounds of this epoch (cached: the chain is read once an epoch), while placing.
    const bounds = request.verify === undefined ? this.#bounds.current() : undefined
    const placement = await placeJob(this.#port, this.#table.list(), spec, {
      network: this.#net,
      verifier: createPeerVerifier(),
      now: () => Date.now(),
      ownOperators: this.#ownOperators,
      reputation: (peerId) => this.#history.reputation(peerId),
    })
    const placementMs = performance.now() - started
    // The chosen quote first, then the others in the same edge-first order.
    const order: ScoredQuote[] = [
      placement.quote,
      ...placement.quotes
        .filter((q) => q.node !== placement.quote.node)
        .sort((a, b) => (a.tier === b.tier ? b.score - a.score : a.tier === 'edge' ? -1 : 1)),
    ]
    const operators = new Map(this.#table.list().map((a) => [a.peerId, a.ad.operator.toLowerCase()]))
    const wallet = this.#wallet
    const payable = wallet ? order : order.filter((q) => q.price === 0n)
    if (payable.length === 0)
      throw new ComputeError('PAYMENT_REQUIRED', `the ${order.length} quoting nodes charge for jobs`, {
        hint: 'Connect with a funded account (payer; `meshwork job run --key FILE`)',
      })
    const verifier = createPeerVerifier()
    const run = await runVerified(this.#port, payable, spec, {
      network: this.#net,
      verifier,
      history: this.#history,
      operatorOf: (peerId) => operators.get(peerId),
      ...(request.verify === undefined ? {} : { probability: request.verify }),
      ...(bounds === undefined ? {} : { bounds: (await bounds).bounds }),
      onProgress: (stage, detail) => request.onProgress?.(stage, { jobId: spec.id, ...detail }),
      run: async (quote) => {
        const provider = operators.get(quote.node)
        if (!wallet || quote.price === 0n || provider === undefined)
          return runJob(this.#port, quote.node, spec, { network: this.#net, verifier })
        const pay = await wallet.ticket(provider, quote.price)
        try {
          return await runJob(this.#port, quote.node, spec, {
            network: this.#net,
            verifier,
            ...(pay ? { pay } : {}),
          })
        } catch (err) {
          // A job that ran and failed is billed: pay it; anything else was never billed.
          const billed = BigInt(String((err as ComputeError).details?.billed ?? '0'))
          if (billed > 0n) await this.#pay(quote, spec.id, billed)
          else await wallet.cancel(provider, quote.price)
          throw err
        }
      },
    })
    const latencyMs = performance.now() - started
    await reportRun(this.#port, this.#codec, { network: this.#net, spec: inline, run }).catch(
      (err: unknown) => this.#logger.debug({ err, jobId: spec.id }, 'could not report the job to verifiers'),
    )
    // Pay every node whose result stood (the chosen output); a caught node is not paid.
    let paid = 0n
    const payments: JobOutcome['payments'] = []
    for (const r of run.runs) {
      const provider = operators.get(r.quote.node)
      if (!wallet || r.quote.price === 0n || provider === undefined) continue
      if (r.result.billed === 0n || r.result.outputHash !== run.result.outputHash) {
        await wallet.cancel(provider, r.quote.price)
        continue
      }
      if (await this.#pay(r.quote, spec.id, r.result.billed)) {
        const amount = min(r.result.billed, r.quote.price)
        paid += amount
        payments.push({ node: r.quote.node, amount })
      }
    }
    request.onProgress?.('done', { jobId: spec.id, latencyMs })
    return {
      jobId: spec.id,
      output: run.result.output,
      ...(spec.kind === 'wasm' ? {} : { value: JSON.parse(new TextDecoder().decode(run.result.output)) }),
      provider: run.quote.node,
      tier: run.quote.tier,
      fallback: run.quote === placement.quote ? placement.fallback : run.quote.tier === 'cloud',
      price: run.quote.price,
      latencyMs,
      placementMs,
      sig: run.result.sig,
      verification: run.verification,
      evidence: run.evidence,
      paid,
      payments,
    }
  }

  /** Pays a node for a job (at most its quoted price); false when the voucher did not get through. */
  async #pay(quote: ScoredQuote, jobId: string, billed: bigint): Promise<boolean> {
    const provider = this.#ledgerOperator(quote.node)
    if (!this.#wallet || provider === undefined) return false
    try {
      await this.#wallet.pay(this.#port, quote.node, provider, jobId, min(billed, quote.price))
      return true
    } catch (err) {
      this.#logger.warn({ err, node: quote.node, jobId }, 'could not pay a node')
      return false
    }
  }

  #ledgerOperator(peerId: string): string | undefined {
    return this.#table.get(peerId)?.ad.operator.toLowerCase()
  }

  /**
   * The spec of a request, and its blobs: code or input bigger than {@link BY_HASH_BYTES} (or all of
   * them with `byHash`) go by hash and are served to the nodes while the job runs.
   */
  #spec(r: JobRequest): { spec: JobSpec; inline: JobSpec; held: string[] } {
    const code = typeof r.code === 'string' ? new TextEncoder().encode(r.code) : r.code
    const input =
      r.kind !== 'wasm'
        ? new TextEncoder().encode(JSON.stringify(r.input ?? null))
        : r.input instanceof Uint8Array
          ? r.input
          : new TextEncoder().encode(typeof r.input === 'string' ? r.input : '')
    const near =
      r.near === undefined
        ? undefined
        : 'cell' in r.near
          ? r.near
          : { lat: r.near.lat, lon: r.near.lon, radiusKm: r.near.radiusKm ?? 100 }
    const held: string[] = []
    const blob = (bytes: Uint8Array) => {
      if (!r.byHash && bytes.length <= BY_HASH_BYTES) return { inline: Buffer.from(bytes).toString('base64') }
      const sha256 = this.#blobs.add(bytes)
      held.push(sha256)
      return { sha256 }
    }
    const fields = {
      v: 1,
      id: randomBytes(16).toString('hex'),
      kind: r.kind,
      ...(r.limits ? { limits: r.limits } : {}),
      deadline: Date.now() + (r.deadlineMs ?? 60_000),
      maxPrice: (r.maxPrice ?? 10n ** 18n).toString(),
      placement: {
        ...(near ? { near } : {}),
        ...(r.maxRttMs === undefined ? {} : { maxRttMs: r.maxRttMs }),
        localOnly: r.localOnly ?? false,
        tier: r.tier ?? 'any',
      },
    }
    const inline = { inline: '' }
    // Validated before anything is held or sent.
    parseJobSpec({ ...fields, code: inline, input: inline })
    const spec = parseJobSpec({ ...fields, code: blob(code), input: blob(input) })
    // The same job with everything inline: what fraud evidence carries, so verifiers can re-run it.
    const whole = {
      ...spec,
      code: { inline: Buffer.from(code).toString('base64') },
      input: { inline: Buffer.from(input).toString('base64') },
    }
    return { spec, inline: whole, held }
  }

  readonly storage = {
    /**
     * Stores a file: sealed with a fresh content key on this machine, coded K-of-N and streamed to
     * N storage nodes (distinct operators and cells where the network allows; nearer, cheaper and
     * emptier first). `source` is the file's bytes or any (async) iterable of slices; `size` is
     * needed up front for a stream. Resolves with the identifier, the key (keep it: nothing else
     * opens the file), the holders and their signed receipts.
     *
     * @throws StorageError STORAGE_NO_HOLDERS when fewer than N nodes take a shard.
     */
    put: (
      source: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
      options: StoragePutOptions = {},
    ): Promise<StoredFile> => this.#put(source, options),
    /**
     * Fetches a file by its identifier and key, any K of N shards per segment, nearest holders
     * first, and writes the plaintext to `sink` in order (or collects it when no sink is given).
     *
     * @throws StorageError STORAGE_KEY_INVALID for a wrong key, STORAGE_NO_HOLDERS,
     *   STORAGE_UNAVAILABLE or STORAGE_DATA_CORRUPT; never returns unchecked bytes.
     */
    get: (
      id: string,
      key: string | ContentKey,
      options: StorageGetOptions = {},
    ): Promise<{ bytes: number; data?: Uint8Array; faulty: string[] }> => this.#get(id, key, options),
    /**
     * Brings a file back to N shards (no key needed): rebuilds the shards no reachable node holds
     * (and those of `exclude`d holders) from any K others and places them on new nodes, paid from
     * the payer's wallet where they charge (the first epoch; `leases` for `mw.storage.rent` then
     * pay each later epoch as the new holders prove it).
     *
     * @throws StorageError STORAGE_UNAVAILABLE with fewer than K shards left; STORAGE_NO_HOLDERS.
     */
    repair: (
      id: string,
      options: { exclude?: string[]; epochs?: number; epoch?: number } = {},
    ): Promise<RepairResult & { leases: Lease[] }> => this.#repair(id, options),
    /**
     * The rent payer of the leases in `store` (a put's `leases`, added with `payer.add`): call
     * `payer.settle(await mw.currentEpoch(), seed)` at least once an epoch, with a fresh random seed.
     * Each holder that proves a chunk it could not predict is paid that epoch's rent from the payer's
     * wallet (with the epochs before it that nobody checked); an epoch whose challenges failed is
     * never paid, and `graceEpochs` (default 2) of them in a row void the lease (repair the file then).
     */
    rent: (store: LeaseStore, options: { graceEpochs?: number } = {}): RentPayer =>
      this.#rentPayer(store, options),
  }

  readonly sensors = {
    /**
     * Subscribes to the sensor readings within `radiusKm` (at most 100) of `near`, of one `kind` or
     * all: every reading is checked (the device key's signature, the node's certificate, replay,
     * clock skew) and handed to `onReading` with its quality flag. Resolves once subscribed.
     *
     * @throws InvalidArgumentError for a bad place, radius or kind.
     */
    subscribe: async (
      query: SensorQuery,
      onReading: (reading: SubscribedReading) => void,
    ): Promise<SensorSubscription> => {
      const sub = subscribeSensors(
        {
          port: this.#port,
          codec: this.#codec,
          verifier: createPeerVerifier(),
          network: this.#net,
          now: () => Date.now(),
        },
        query,
        onReading,
      )
      return { cells: sub.cells, dropped: sub.dropped, unsubscribe: sub.unsubscribe }
    },
  }

  async #repair(
    id: string,
    options: { exclude?: string[]; epochs?: number; epoch?: number },
  ): Promise<RepairResult & { leases: Lease[] }> {
    const payment = this.#storagePayment()
    const epochs = options.epochs ?? 10
    const r = await repairFile(this.#storageClient(), await this.#storageNodes(0), id, {
      ...(options.exclude ? { exclude: options.exclude } : {}),
      epochs,
      ...(payment ? { payment } : {}),
    })
    const epoch = r.repaired.length === 0 ? 0 : await this.#leaseEpoch(options.epoch)
    return {
      ...r,
      leases: r.repaired.map((x) =>
        leaseOf(
          { cid: id, manifest: r.manifest },
          x.shard,
          x.holder,
          epoch,
          epochs,
          this.#storageTerms(x.holder),
        ),
      ),
    }
  }

  /**
   * The first epoch of new leases: a paying client reads it from the chain it pays on; a free put
   * or repair does not need a chain (its leases carry no rent), so an unreachable one counts as 0.
   */
  async #leaseEpoch(given: number | undefined): Promise<number> {
    if (given !== undefined) return given
    if (this.#wallet) return this.currentEpoch()
    return this.currentEpoch().catch((err: unknown) => {
      this.#logger.debug({ err }, 'no chain epoch for free storage; its leases start at 0')
      return 0
    })
  }

  #storageClient(): StorageClientComponents {
    return { port: this.#port, codec: this.#codec, logger: this.#logger }
  }

  /** Storage nodes in the order to use them (RTT measured to the best few). */
  async #storageNodes(shardBytes: number, near?: StoragePutOptions['near']): Promise<string[]> {
    const candidates = storageCandidates(this.#table.list(), shardBytes, this.#port.peerId)
    await Promise.all(
      candidates.slice(0, 32).map(async (c) => {
        try {
          c.rttMs = await this.#port.rtt(c.peerId, { timeoutMs: 2_000 })
        } catch {}
      }),
    )
    return rankHolders(candidates, near ? { near } : {}).map((c) => c.peerId)
  }

  /** A storage holder's terms as its advertisement states them: price per GiB-epoch and operator. */
  #storageTerms(peer: string): { price: bigint; operator: string } {
    const ad = this.#table.get(peer)?.ad
    const offer = ad?.services.find((s) => s.name === 'storage')
    return { price: offer ? BigInt(offer.price) : 0n, operator: ad?.operator.toLowerCase() ?? '' }
  }

  /** Pays storage holders the first epoch's rent from the payer's wallet, at each one's advertised price. */
  #storagePayment(): StoragePayment | undefined {
    const wallet = this.#wallet
    if (wallet === undefined) return undefined
    const quote = (peer: string, bytes: number) => {
      const t = this.#storageTerms(peer)
      return { operator: t.operator, price: shardPrice(t.price, bytes, 1) }
    }
    return {
      ticket: async (peer, bytes) => {
        const q = quote(peer, bytes)
        return q.price > 0n ? wallet.ticket(q.operator, q.price) : undefined
      },
      pay: async (peer, id, bytes) => {
        const q = quote(peer, bytes)
        if (q.price > 0n) await wallet.pay(this.#port, peer, q.operator, id, q.price)
      },
      cancel: async (peer, bytes) => {
        const q = quote(peer, bytes)
        if (q.price > 0n) await wallet.cancel(q.operator, q.price)
      },
    }
  }

  /** The chain's current epoch (0 when this client reads no chain). */
  async currentEpoch(): Promise<number> {
    if (this.#reader === undefined) return 0
    return Number((await getEpochState(this.#reader)).currentEpoch)
  }

  #rentPayer(store: LeaseStore, options: { graceEpochs?: number }): RentPayer {
    const wallet = this.#wallet
    return new RentPayer(
      { owner: this.#port.peerId, ...options },
      {
        port: this.#port,
        store,
        logger: this.#logger,
        pay: async (lease, epoch, amount) => {
          if (amount === 0n || lease.operator === '') return
          if (wallet === undefined)
            throw new InvalidArgumentError('storage rent needs a payer', {
              hint: 'Connect with `payer: { privateKey }`',
            })
          const id = rentBillId(lease.cid, lease.shard, epoch)
          // Signed before (its voucher unanswered): the channel's next voucher carries it.
          if (wallet.hasPaid(lease.holder, id)) return
          // A ticket first: it tops the channel up when the rent would not fit its deposit.
          await wallet.ticket(lease.operator, amount)
          // Signed into the channel's cumulative amount before it is sent: if the holder does not
          // acknowledge it, the channel's next voucher carries it.
          await wallet.pay(this.#port, lease.holder, lease.operator, id, amount)
        },
      },
    )
  }

  async #put(
    source: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: StoragePutOptions,
  ): Promise<StoredFile> {
    const bytes = source instanceof Uint8Array ? source : undefined
    const size = bytes?.length ?? options.size
    if (size === undefined) throw new InvalidArgumentError('a streamed file needs its size (options.size)')
    const k = options.k ?? 4
    const n = options.n ?? 6
    // The leases' first epoch is the chain's at the start of the put. A paying client needs it (and
    // its chain) before it pays anyone; a free put does not wait for it: it is read while the file
    // goes out (an unreachable chain, which counts as epoch 0, took a third of a second to give up).
    const payment = this.#storagePayment()
    const epochRead = this.#leaseEpoch(options.epoch)
    if (this.#wallet) await epochRead
    const holders = await this.#storageNodes(shardBytesOf(size, SEGMENT_BYTES, k), options.near)
    const slices = bytes
      ? sliced(bytes, 1 << 20)
      : (source as AsyncIterable<Uint8Array> | Iterable<Uint8Array>)
    const epochs = options.epochs ?? 10
    const r = await putFile(this.#storageClient(), holders, slices, size, {
      k,
      n,
      ...(payment ? { payment } : {}),
      epochs,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    })
    const epoch = await epochRead
    return {
      id: r.cid,
      key: formatContentKey(r.key),
      manifest: r.manifest,
      holders: r.holders,
      receipts: r.receipts,
      leases: leasesOf(r, epoch, epochs, (holder) => this.#storageTerms(holder)),
    }
  }

  async #get(
    id: string,
    key: string | ContentKey,
    options: StorageGetOptions,
  ): Promise<{ bytes: number; data?: Uint8Array; faulty: string[] }> {
    const contentKey = typeof key === 'string' ? parseContentKey(key) : key
    const nodes = await this.#storageNodes(0)
    const parts: Uint8Array[] = []
    const sink = options.sink ?? ((b: Uint8Array) => void parts.push(b))
    const r = await getFile(this.#storageClient(), nodes, id, contentKey, sink, {
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    })
    return {
      bytes: r.bytes,
      faulty: r.faulty,
      ...(options.sink ? {} : { data: new Uint8Array(Buffer.concat(parts)) }),
    }
  }

  /** Leaves the mesh. */
  async close(): Promise<void> {
    this.#unsubscribe()
    this.#blobs.close()
    await this.#port.close()
  }
}

/** Options of `mw.storage.put`. */
export interface StoragePutOptions {
  /** Data shards K (default 4) and total shards N (default 6): any K give the file back. */
  k?: number
  n?: number
  /** Epochs to keep the file (default 10): the first paid with the put, each later one as it is proven. */
  epochs?: number
  /** The epoch the put is made in (default: the chain's current epoch; 0 without a chain). */
  epoch?: number
  /** The file's size, needed when `source` is a stream. */
  size?: number
  /** Prefer holders near a place. */
  near?: { lat: number; lon: number } | { cell: string }
  onProgress?: (done: number, total: number) => void
}

/** Options of `mw.storage.get`. */
export interface StorageGetOptions {
  /** Where the plaintext goes, a segment at a time (default: collected and returned as `data`). */
  sink?: (plaintext: Uint8Array) => void | Promise<void>
  onProgress?: (done: number, total: number) => void
}

/** A stored file as `mw.storage.put` returns it. */
export interface StoredFile {
  /** The content identifier (the manifest's CID). */
  id: string
  /** The content key, `mwk1.…`: whoever has it can read the file. */
  key: string
  manifest: Manifest
  holders: string[]
  receipts: Envelope<StorageReceiptBody>[]
  /**
   * One lease per shard, its first epoch paid: keep them in a {@link LeaseStore} and settle them with
   * `mw.storage.rent` once an epoch, or the holders are paid for nothing more.
   */
  leases: Lease[]
}

function* sliced(bytes: Uint8Array, size: number): Iterable<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size)
  if (bytes.length === 0) yield bytes
}

/** A live sensor subscription (`mw.sensors.subscribe`). */
export interface SensorSubscription {
  /** The coarse cells (H3, resolution 5) it follows. */
  cells: string[]
  /** Readings dropped so far (forged, replayed, malformed). */
  dropped(): number
  unsubscribe(): void
}

export type { ChainReader } from '../chain/client.js'
export type { JobLimits, JobSpec } from '../compute/job-spec.js'
export type { VerifyBounds } from '../compute/verification.js'
export type { CurrentVerifyBounds } from '../compute/verify-bounds-cache.js'
export type { KnownAd } from '../node/ad-table.js'
export type { SensorQuery, SubscribedReading } from '../sensors/subscriber.js'
export {
  type Lease,
  type LeaseStore,
  memoryLeaseStore,
  openLeaseStore,
  type RentPayer,
  type RentReport,
} from '../storage/rent.js'
