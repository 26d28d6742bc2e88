import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, describe, expect, it } from 'vitest'
import { parseJobSpec } from '../compute/job-spec.js'
import { quoteSigningBytes } from '../compute/placement.js'
import { computeTopic, FRAUD_EVIDENCE, SLASH_SIGNATURE, WORK_RECEIPT } from '../compute/receipts.js'
import { resultSigningBytes } from '../compute/result-signing.js'
import { SandboxPool } from '../compute/sandbox-pool.js'
import { systemClock } from '../core/clock.js'
import { createLogger } from '../core/logger.js'
import { createPeerSigner, createPeerVerifier, type PeerSigner } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import type { RegistrySnapshot } from './chain-port.js'
import { ComputeAuditor } from './compute-auditor.js'
import { openVerifierStore } from './store.js'

const NET = '31337:0xauditor'
const EPOCH = 5
const dir = mkdtempSync(join(tmpdir(), 'mw-auditor-'))
const pool = new SandboxPool({ size: 1 })
afterAll(async () => {
  await pool.close()
  rmSync(dir, { recursive: true, force: true })
})
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url')
const signer = async () => createPeerSigner(await generateKeyPair('Ed25519'))

async function setup() {
  const net = new SimNetwork({ seed: 4, clock: systemClock, latency: () => ({ latencyMs: 1, jitterMs: 0 }) })
  const [verifierKey, builder, a, b, c] = await Promise.all([
    signer(),
    signer(),
    signer(),
    signer(),
    signer(),
  ])
  // a and b are one operator's nodes; c another's.
  const registry: RegistrySnapshot = {
    nodes: [
      {
        peerId: a.peerId,
        operator: '0x00000000000000000000000000000000000000a1',
        stake: 1n,
        registeredAt: 0,
      },
      {
        peerId: b.peerId,
        operator: '0x00000000000000000000000000000000000000a1',
        stake: 1n,
        registeredAt: 0,
      },
      {
        peerId: c.peerId,
        operator: '0x00000000000000000000000000000000000000c1',
        stake: 1n,
        registeredAt: 0,
      },
    ],
    verifiers: [],
  }
  const store = openVerifierStore(join(dir, `${randomBytes(4).toString('hex')}.db`))
  const types = [WORK_RECEIPT, FRAUD_EVIDENCE, SLASH_SIGNATURE]
  const auditor = new ComputeAuditor(
    { network: NET, slashAmount: 1n },
    {
      port: net.createPort(verifierKey.peerId),
      codec: createWireCodec({
        network: NET,
        signer: verifierKey,
        clock: systemClock,
        types,
        nextSeq: () => 1,
      }),
      store,
      verifier: createPeerVerifier(),
      logger: createLogger({ level: 'silent' }),
      epochNow: () => EPOCH,
      epochAt: () => EPOCH,
      registry: () => registry,
      rerun: async (e) =>
        (
          await pool.run({
            kind: e.spec.kind,
            code: e.code,
            input: e.input,
            limits: e.spec.limits,
            seed: e.spec.id,
            now: e.spec.deadline,
          })
        ).output,
    },
  )
  auditor.start()
  let seq = 0
  const builderPort = net.createPort(builder.peerId)
  const codec = createWireCodec({
    network: NET,
    signer: builder,
    clock: systemClock,
    types,
    nextSeq: () => ++seq,
  })
  const publish = async (type: typeof WORK_RECEIPT | typeof FRAUD_EVIDENCE, body: unknown) => {
    await builderPort.publish(
      computeTopic(NET),
      codec.encode(type as typeof WORK_RECEIPT, body as never).bytes,
    )
    await new Promise((r) => setTimeout(r, 20))
    await auditor.settled()
  }
  return { auditor, store, builder, a, b, c, publish }
}

const code = new Uint8Array(Buffer.from('(x) => x * 2'))
const input = new Uint8Array(Buffer.from('21'))
const spec = () =>
  parseJobSpec({
    v: 1,
    id: randomBytes(16).toString('hex'),
    kind: 'js',
    code: { inline: Buffer.from(code).toString('base64') },
    input: { inline: Buffer.from(input).toString('base64') },
    deadline: Date.now() + 60_000,
    maxPrice: '100',
  })

/** A node's signed quote and result for `jobId`, output `out`, for `client`. */
function signedRun(node: PeerSigner, client: string, jobId: string, out: string) {
  const hashes = { jobId, codeHash: sha(code), inputHash: sha(input), outputHash: sha(Buffer.from(out)) }
  const expiresAt = Date.now() + 5_000
  return {
    hashes,
    run: {
      node: node.peerId,
      price: '7',
      expiresAt,
      quoteSig: b64url(
        node.sign(quoteSigningBytes({ net: NET, jobId, node: node.peerId, client, price: 7n, expiresAt })),
      ),
      resultSig: b64url(node.sign(resultSigningBytes({ net: NET, ...hashes, node: node.peerId, client }))),
    },
  }
}

describe('the compute auditor', () => {
  it('counts verified work once per node and job, and never on the word of one operator’s nodes alone', async () => {
    const s = await setup()
    const job = spec()
    const ra = signedRun(s.a, s.builder.peerId, job.id, '42')
    const rc = signedRun(s.c, s.builder.peerId, job.id, '42')
    await s.publish(WORK_RECEIPT, { ...ra.hashes, runs: [ra.run, rc.run] })
    await s.publish(WORK_RECEIPT, { ...ra.hashes, runs: [ra.run, rc.run] })
    expect(s.store.workOf(EPOCH)).toEqual(
      new Map([
        [s.a.peerId, { jobs: 1, value: 7n }],
        [s.c.peerId, { jobs: 1, value: 7n }],
      ]),
    )
    // Two nodes of the same operator vouching for each other count for nothing.
    const other = spec()
    const oa = signedRun(s.a, s.builder.peerId, other.id, '42')
    const ob = signedRun(s.b, s.builder.peerId, other.id, '42')
    await s.publish(WORK_RECEIPT, { ...oa.hashes, runs: [oa.run, ob.run] })
    expect(s.store.workOf(EPOCH).get(s.b.peerId)).toBeUndefined()
    expect(s.auditor.counts).toMatchObject({ receipts: 2, receiptsRefused: 1 })
  })

  it('confirms fraud only when its own re-run disagrees with what the node signed', async () => {
    const s = await setup()
    const honest = spec()
    const right = signedRun(s.a, s.builder.peerId, honest.id, '42')
    // A builder (or two colluding nodes) accusing an honest node: the re-run agrees with it.
    await s.publish(FRAUD_EVIDENCE, {
      spec: honest,
      node: s.a.peerId,
      outputHash: right.hashes.outputHash,
      sig: right.run.resultSig,
    })
    expect(s.store.frauds(EPOCH)).toEqual([])
    const lied = spec()
    const wrong = signedRun(s.c, s.builder.peerId, lied.id, '43')
    const evidence = {
      spec: lied,
      node: s.c.peerId,
      outputHash: wrong.hashes.outputHash,
      sig: wrong.run.resultSig,
    }
    await s.publish(FRAUD_EVIDENCE, evidence)
    await s.publish(FRAUD_EVIDENCE, evidence)
    expect(s.store.frauds(EPOCH)).toMatchObject([{ node: s.c.peerId, jobId: lied.id, slashedTx: null }])
    expect(s.auditor.counts).toMatchObject({ evidence: 2, frauds: 1 })
  })
})
