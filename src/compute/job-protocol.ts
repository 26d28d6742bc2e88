import { createHash } from 'node:crypto'
import { z } from 'zod'
import type { NetworkPort, RequestContext } from '../mesh/network-port.js'
import type { PeerSigner, PeerVerifier } from '../mesh/peer-key.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import type { ServiceOffer } from '../node/advertisement.js'
import type { NodeService, ServiceContext } from '../node/service.js'
import { BlobCache, blobHash, resolveBlob } from './blobs.js'
import { ComputeError, type ComputeErrorCode, computeErrorCodes } from './errors.js'
import { type JobSpec, MAX_JOB_SPEC_BYTES, parseJobSpec } from './job-spec.js'
import { type Admission, type PaymentDesk, type PayTicket, payTicketSchema } from './payments.js'
import { serveQuotes } from './placement.js'
import { computeTopic, FRAUD_EVIDENCE, SLASH_SIGNATURE, WORK_RECEIPT } from './receipts.js'
import { type ResultCommitment, resultSigningBytes } from './result-signing.js'
import type { SandboxPool } from './sandbox-pool.js'

/**
 * Running a job on a node over the mesh (`/meshwork/job/1`): the client sends the job spec; the node
 * validates it, runs it in its sandbox pool and answers with the output and its signature over
 * (network, job id, input hash, code hash, output hash, node, client). That signature is what makes a
 * wrong result evidence: the node cannot deny having returned it (docs/protocol.md, "Job run").
 */

export const JOB_PROTOCOL = '/meshwork/job/1'

const hex64 = z.string().regex(/^[0-9a-f]{64}$/)
const resultSchema = z
  .object({
    jobId: z.string().regex(/^[0-9a-f]{32}$/),
    codeHash: hex64,
    inputHash: hex64,
    outputHash: hex64,
    output: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/),
    ms: z.number().nonnegative(),
    sig: z.string().regex(/^[A-Za-z0-9_-]{85}[AQgw]$/),
  })
  .strict()
const billed = z.string().regex(/^(0|[1-9][0-9]{0,38})$/)
const responseSchema = z.union([
  z.object({ ok: z.literal(true), result: resultSchema, billed: billed.optional() }).strict(),
  z
    .object({
      ok: z.literal(false),
      error: z.object({ code: z.enum(computeErrorCodes), message: z.string().max(1_000) }).strict(),
      billed: billed.optional(),
    })
    .strict(),
])
/** A job request: the spec, and the payment ticket when the node charges. */
const requestSchema = z.object({ spec: z.unknown(), pay: payTicketSchema.optional() }).strict()

/** Codes of a job that ran and failed in the sandbox: the node billed its time. */
const RAN_AND_FAILED: readonly string[] = [
  'JOB_TIMEOUT',
  'JOB_MEMORY_LIMIT',
  'JOB_OUTPUT_TOO_LARGE',
  'JOB_FAILED',
]

export { type ResultCommitment, resultSigningBytes } from './result-signing.js'

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

/** A job run's signed result, as the client checked it. */
export interface JobResult {
  jobId: string
  node: string
  output: Uint8Array
  codeHash: string
  inputHash: string
  outputHash: string
  /** The node's signature over {@link resultSigningBytes} (base64url): evidence if the output is wrong. */
  sig: string
  /** Time in the sandbox (ms), as the node reports it. */
  ms: number
  /** What the node billed for it (0 when free). */
  billed: bigint
}

/**
 * The compute service of a node: serves {@link JOB_PROTOCOL} with its sandbox pool, and quotes
 * (`/meshwork/quote/1`) its price with its current load. A bad spec or a
 * failing job gets an error answer with its code; nothing a job does stops the node serving.
 */
export class ComputeService implements NodeService {
  readonly name = 'compute' as const
  readonly #pool: SandboxPool
  readonly #signer: PeerSigner
  readonly #init: { network: string; price: bigint; now: () => number }
  #port: ServiceContext['port'] | undefined
  /** Jobs answered, by outcome (for metrics and tests). */
  readonly counts = new Map<string, number>()

  readonly #desk: PaymentDesk | undefined
  /** Code and inputs sent by hash, kept for the next job that names them. */
  readonly #blobs = new BlobCache()

  /** Without a `desk` the node runs jobs for free whatever its advertised price. */
  constructor(
    init: { network: string; price: bigint; now: () => number },
    components: { pool: SandboxPool; signer: PeerSigner; desk?: PaymentDesk },
  ) {
    this.#init = init
    this.#pool = components.pool
    this.#signer = components.signer
    this.#desk = components.desk
  }

  advertise(): ServiceOffer {
    return {
      name: 'compute',
      price: this.#init.price.toString(),
      unit: 'job',
      params: { kinds: this.#pool.kinds.join(','), slots: this.#pool.size },
    }
  }

  async start(context: ServiceContext): Promise<void> {
    this.#port = context.port
    context.port.handle(JOB_PROTOCOL, (request, ctx) => this.#serve(request, ctx), {
      maxRequestBytes: MAX_JOB_SPEC_BYTES + 1_024,
    })
    this.#stopPay = this.#desk?.serve(context.port)
    // Relay builders' receipts and evidence (and verifiers' slash signatures) towards the verifiers:
    // a builder's client may be connected to nodes only. Checked like every wire message first.
    const codec = createWireCodec({
      network: this.#init.network,
      signer: this.#signer,
      clock: context.clock,
      types: [WORK_RECEIPT, FRAUD_EVIDENCE, SLASH_SIGNATURE],
      nextSeq: () => 1,
    })
    this.#stopRelay = context.port.subscribe(computeTopic(this.#init.network), (m) => {
      const decoded = codec.decode(m.data, { from: m.from })
      return decoded.ok ? 'accept' : decoded.verdict
    })
    this.#stopQuotes = serveQuotes(context.port, {
      network: this.#init.network,
      signer: this.#signer,
      price: () => this.#init.price,
      load: () => {
        const { running, queued } = this.#pool.load
        return Math.min(1, (running + queued) / this.#pool.size)
      },
      now: this.#init.now,
      kinds: this.#pool.kinds,
    })
  }

  #stopQuotes: (() => void) | undefined
  #stopPay: (() => void) | undefined
  #stopRelay: (() => void) | undefined

  async stop(): Promise<void> {
    this.#port?.unhandle(JOB_PROTOCOL)
    this.#stopQuotes?.()
    this.#stopPay?.()
    this.#stopRelay?.()
  }

  async answerChallenge(): Promise<Record<string, unknown>> {
    throw new ComputeError('JOB_FAILED', 'compute challenges are re-runs of jobs (not yet)')
  }

  async #serve(request: Uint8Array, ctx: RequestContext): Promise<Uint8Array> {
    const answer = (body: unknown) => new TextEncoder().encode(JSON.stringify(body))
    const count = (outcome: string) => this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1)
    let admission: Admission | undefined
    let jobId = ''
    /** Set once the sandbox has the job: only then is a failure billed. */
    let running = false
    try {
      let json: z.infer<typeof requestSchema>
      try {
        json = requestSchema.parse(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(request)))
      } catch {
        throw new ComputeError(
          'JOB_SPEC_INVALID',
          'the job request is not {"spec": …, "pay"?: …} in UTF-8 JSON',
        )
      }
      // The spec is checked in full before any payment is looked at.
      const spec = parseJobSpec(json.spec)
      if (spec.deadline < this.#init.now())
        throw new ComputeError('JOB_SPEC_INVALID', 'job spec deadline: it has passed')
      if (this.#init.price > BigInt(spec.maxPrice))
        throw new ComputeError(
          'PAYMENT_REQUIRED',
          `this node charges ${this.#init.price}, above the job's maxPrice`,
        )
      admission = await this.#desk?.admit(json.pay, ctx.from, this.#init.price)
      jobId = spec.id
      // Code and input by hash come from the client (or this node's cache) once it may run the job.
      const fetch = { port: this.#port as NetworkPort, from: ctx.from, cache: this.#blobs }
      const code = await resolveBlob(spec.code, 'code', fetch)
      const input = await resolveBlob(spec.input, 'input', fetch)
      running = true
      const run = await this.#pool.run({
        kind: spec.kind,
        code,
        input,
        limits: spec.limits,
        seed: spec.id,
        // Every node must compute the same output: the job's clock is its deadline, not this machine's.
        now: spec.deadline,
      })
      const commitment: ResultCommitment = {
        net: this.#init.network,
        jobId: spec.id,
        codeHash: sha256(code),
        inputHash: sha256(input),
        outputHash: sha256(run.output),
        node: this.#signer.peerId,
        client: ctx.from,
      }
      const sig = Buffer.from(this.#signer.sign(resultSigningBytes(commitment))).toString('base64url')
      count('ok')
      admission?.bill(spec.id)
      const { net: _net, node: _node, client: _client, ...hashes } = commitment
      return answer({
        ok: true,
        result: { ...hashes, output: Buffer.from(run.output).toString('base64'), ms: run.ms, sig },
        ...(admission ? { billed: admission.price.toString() } : {}),
      })
    } catch (err) {
      const code: ComputeErrorCode =
        err instanceof ComputeError ? (err.code as ComputeErrorCode) : 'JOB_FAILED'
      count(code)
      // A job that ran and failed used the node's time: it is billed; anything refused before is not.
      const ran = running && admission !== undefined && RAN_AND_FAILED.includes(code)
      if (ran) admission?.bill(jobId)
      else admission?.release()
      return answer({
        ok: false,
        error: { code, message: (err as Error).message.slice(0, 1_000) },
        ...(ran && admission ? { billed: admission.price.toString() } : {}),
      })
    }
  }
}

/**
 * Runs `spec` on `node` and checks the answer: the signature must be the node's over this job's
 * code, input and output hashes for this client, and the output must hash to what it signed.
 *
 * @throws ComputeError with the node's code when the job failed there, or JOB_FAILED when the answer
 *   is malformed or its signature or hashes do not check (a result that fails a check is never
 *   returned as good).
 */
export async function runJob(
  port: Pick<NetworkPort, 'peerId' | 'request'>,
  node: string,
  spec: JobSpec,
  options: { network: string; verifier: PeerVerifier; timeoutMs?: number; pay?: PayTicket },
): Promise<JobResult> {
  const body = JSON.stringify({ spec, ...(options.pay ? { pay: options.pay } : {}) })
  const bytes = await port.request(node, JOB_PROTOCOL, new TextEncoder().encode(body), {
    timeoutMs: options.timeoutMs ?? spec.limits.timeMs + 5_000,
    maxResponseBytes: Math.ceil((spec.limits.outputBytes * 4) / 3) + 4_096,
  })
  let parsed: z.infer<typeof responseSchema>
  try {
    parsed = responseSchema.parse(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)))
  } catch {
    throw new ComputeError('JOB_FAILED', `node ${node} sent a malformed answer`)
  }
  if (!parsed.ok)
    throw new ComputeError(parsed.error.code, `node ${node}: ${parsed.error.message}`, {
      details: { billed: parsed.billed ?? '0' },
    })
  const r = parsed.result
  const output = new Uint8Array(Buffer.from(r.output, 'base64'))
  const commitment: ResultCommitment = {
    net: options.network,
    jobId: spec.id,
    codeHash: blobHash(spec.code),
    inputHash: blobHash(spec.input),
    outputHash: sha256(output),
    node,
    client: port.peerId,
  }
  const checks =
    r.jobId === spec.id &&
    r.codeHash === commitment.codeHash &&
    r.inputHash === commitment.inputHash &&
    r.outputHash === commitment.outputHash &&
    options.verifier.verify(node, resultSigningBytes(commitment), Buffer.from(r.sig, 'base64url'))
  if (!checks) throw new ComputeError('JOB_FAILED', `node ${node} sent a result that does not check`)
  return {
    jobId: spec.id,
    node,
    output,
    codeHash: r.codeHash,
    inputHash: r.inputHash,
    outputHash: r.outputHash,
    sig: r.sig,
    ms: r.ms,
    billed: BigInt(parsed.billed ?? '0'),
  }
}
