import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getChannel, getTokenBalance, signVoucher } from '../../src/chain/index.js'
import { chainBuilderLedger, chainProviderLedger } from '../../src/compute/chain-ledgers.js'
import { ComputeService, JOB_PROTOCOL, runJob } from '../../src/compute/job-protocol.js'
import { type JobSpec, parseJobSpec } from '../../src/compute/job-spec.js'
import { PAY_PROTOCOL, PaymentDesk, PaymentWallet } from '../../src/compute/payments.js'
import { SandboxPool } from '../../src/compute/sandbox-pool.js'
import { systemClock } from '../../src/core/clock.js'
import { createLogger } from '../../src/core/logger.js'
import type { NetworkPort } from '../../src/mesh/network-port.js'
import { createPeerSigner, createPeerVerifier } from '../../src/mesh/peer-key.js'
import { SimNetwork } from '../../src/mesh/sim-network.js'
import { type NodeDatabase, openNodeDatabase } from '../../src/node/database.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'

/**
 * Paying for jobs on the real Payments contract: a node with its real SQLite books, a builder wallet
 * that opens a channel on first use, vouchers after each result, bounded credit, refusals of forged
 * and replayed vouchers, redeeming in a batch, and books that survive a restart.
 */

const BUILDER = 1
const PROVIDER = 2
const STRANGER = 4
const PRICE = 10n ** 15n
const NET = '31337:payments-test'

let f: ChainFixture
let dir: string
let pool: SandboxPool
let db: NodeDatabase

beforeAll(async () => {
  f = await startChainFixture()
  await f.fund(BUILDER, 100n * MESH)
  await f.fund(STRANGER, 100n * MESH)
  dir = mkdtempSync(join(tmpdir(), 'meshwork-payments-'))
  pool = new SandboxPool({ size: 2 })
  db = openNodeDatabase(join(dir, 'node.db'))
})
afterAll(async () => {
  db.close()
  await pool.close()
  await f.stop()
  rmSync(dir, { recursive: true, force: true })
})

let jobCounter = 0
const spec = (source: string, input: unknown): JobSpec =>
  parseJobSpec({
    v: 1,
    id: (++jobCounter).toString(16).padStart(32, '0'),
    kind: 'js',
    code: { inline: Buffer.from(source).toString('base64') },
    input: { inline: Buffer.from(JSON.stringify(input)).toString('base64') },
    limits: { timeMs: 500 },
    deadline: Date.now() + 60_000,
    maxPrice: (10n ** 18n).toString(),
  })

async function setup(store = db.payments) {
  const net = new SimNetwork({ seed: 3, clock: systemClock, latency: () => ({ latencyMs: 1, jitterMs: 0 }) })
  const nodeKey = createPeerSigner(await generateKeyPair('Ed25519'))
  const desk = new PaymentDesk(
    { network: NET, creditJobs: 3 },
    {
      ledger: chainProviderLedger(f.client(PROVIDER)),
      store,
      now: () => Date.now(),
    },
  )
  const service = new ComputeService(
    { network: NET, price: PRICE, now: () => Date.now() },
    { pool, signer: nodeKey, desk },
  )
  await service.start({
    port: net.createPort(nodeKey.peerId),
    clock: systemClock,
    logger: createLogger({ level: 'silent' }),
    dir,
  })
  const client = net.createPort(createPeerSigner(await generateKeyPair('Ed25519')).peerId)
  const wallet = new PaymentWallet(
    { network: NET, client: client.peerId, deposit: 10n * PRICE },
    chainBuilderLedger(f.client(BUILDER)),
  )
  return { net, node: nodeKey.peerId, desk, service, client, wallet }
}

const provider = () => f.account(PROVIDER).address
const options = { network: NET, verifier: createPeerVerifier() }
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (err: { code?: string }) => err.code,
  )

/** What a builder does per job: a ticket, the run, then the voucher for what was billed. */
async function paidJob(s: Awaited<ReturnType<typeof setup>>, job: JobSpec, port: NetworkPort = s.client) {
  const pay = await s.wallet.ticket(provider(), PRICE)
  try {
    const r = await runJob(port, s.node, job, { ...options, ...(pay ? { pay } : {}) })
    await s.wallet.pay(port, s.node, provider(), job.id, r.billed)
    return r
  } catch (err) {
    const billed = BigInt(String((err as { details?: { billed?: string } }).details?.billed ?? '0'))
    if (billed > 0n) await s.wallet.pay(port, s.node, provider(), job.id, billed)
    else await s.wallet.cancel(provider(), PRICE)
    throw err
  }
}

describe('paying for jobs with a Payments channel', () => {
  it('refuses a job without payment and a bad spec before looking at payment; bills nothing for either', async () => {
    const s = await setup()
    expect(await codeOf(runJob(s.client, s.node, spec('(x) => x', 1), options))).toBe('PAYMENT_REQUIRED')
    const raw = await s.client.request(
      s.node,
      JOB_PROTOCOL,
      new TextEncoder().encode(
        JSON.stringify({
          spec: { v: 1, kind: 'js' },
          pay: { channel: '1', session: `0x${'1'.repeat(130)}` },
        }),
      ),
    )
    expect(JSON.parse(new TextDecoder().decode(raw)).error.code).toBe('JOB_SPEC_INVALID')
    expect(s.desk.counts.get('admitted')).toBeUndefined()
    expect(s.service.counts.get('ok')).toBeUndefined()
  })

  it('opens a channel on first use, pays each job once with a cumulative voucher, and redeems them in one batch', async () => {
    const s = await setup()
    const before = await getTokenBalance(f.client(0), provider())
    for (let i = 0; i < 5; i++) {
      const r = await paidJob(s, spec('(x) => x * 2', i))
      expect(new TextDecoder().decode(r.output)).toBe(String(i * 2))
      expect(r.billed).toBe(PRICE)
    }
    // A job that throws ran on the node's time: billed and paid as well.
    expect(await codeOf(paidJob(s, spec('() => { throw new Error("no") }', 0)))).toBe('JOB_FAILED')
    expect(s.wallet.spent).toBe(6n * PRICE)
    const open = db.payments.unredeemed()
    expect(open).toHaveLength(1)
    const channel = open[0]?.channel as bigint
    expect(open[0]?.book).toMatchObject({ billed: 6n * PRICE, paid: 6n * PRICE, redeemed: 0n })
    // Nothing on-chain until the batch.
    expect(await getTokenBalance(f.client(0), provider())).toBe(before)
    expect(await s.desk.redeemDue()).toBe(6n * PRICE)
    expect(await getTokenBalance(f.client(0), provider())).toBe(before + 6n * PRICE)
    expect((await getChannel(f.client(0), channel)).redeemed).toBe(6n * PRICE)
    expect(await s.desk.redeemDue()).toBe(0n)
    expect(s.desk.counts.get('redeemed')).toBe(1)
  })

  it('gives a channel credit for a few unpaid jobs only, and takes payment again after', async () => {
    const s = await setup()
    const jobs: JobSpec[] = []
    const tickets = []
    for (let i = 0; i < 3; i++) {
      const job = spec('(x) => x + 1', i)
      const pay = await s.wallet.ticket(provider(), PRICE)
      await runJob(s.client, s.node, job, { ...options, ...(pay ? { pay } : {}) })
      jobs.push(job)
      tickets.push(pay)
    }
    const pay = await s.wallet.ticket(provider(), PRICE)
    const refused = runJob(s.client, s.node, spec('(x) => x', 0), { ...options, ...(pay ? { pay } : {}) })
    await expect(refused).rejects.toMatchObject({
      code: 'PAYMENT_REQUIRED',
      message: expect.stringContaining('owes'),
    })
    await s.wallet.cancel(provider(), PRICE)
    // Paying (vouchers may arrive out of order: a later one covers an earlier one) reopens the credit.
    for (const job of jobs.reverse()) await s.wallet.pay(s.client, s.node, provider(), job.id, PRICE)
    expect(await codeOf(paidJob(s, spec('(x) => x', 0)))).toBe('ok')
  })

  it('refuses a session or voucher not signed by the channel’s builder, and a replayed voucher', async () => {
    const s = await setup()
    await paidJob(s, spec('(x) => x', 1))
    const channel = db.payments.unredeemed().at(-1)?.channel as bigint
    const book = db.payments.get(channel)
    // Another mesh identity cannot use the builder's session.
    const ticket = await s.wallet.ticket(provider(), PRICE)
    await s.wallet.cancel(provider(), PRICE)
    const thief = s.net.createPort('12D3KooWThief')
    expect(
      await codeOf(
        runJob(thief, s.node, spec('(x) => x', 1), { ...options, ...(ticket ? { pay: ticket } : {}) }),
      ),
    ).toBe('PAYMENT_INVALID')
    const send = async (body: unknown) =>
      JSON.parse(
        new TextDecoder().decode(
          await s.client.request(s.node, PAY_PROTOCOL, new TextEncoder().encode(JSON.stringify(body))),
        ),
      )
    // A voucher signed by someone else.
    const forged = await signVoucher(f.client(STRANGER), f.client(STRANGER).wallet.account as never, {
      channelId: channel,
      cumulativeAmount: 50n * PRICE,
    })
    expect(
      (
        await send({
          channel: channel.toString(),
          cumulative: (50n * PRICE).toString(),
          sig: forged.signature,
          jobs: [],
        })
      ).error.code,
    ).toBe('PAYMENT_INVALID')
    // The builder's own latest voucher, sent again.
    expect(
      await send({
        channel: channel.toString(),
        cumulative: String(book?.paid),
        sig: book?.voucher,
        jobs: [],
      }),
    ).toMatchObject({ ok: false, error: { code: 'VOUCHER_STALE' }, paid: String(book?.paid) })
    // Garbage.
    expect((await send({ channel: 'x' })).error.code).toBe('PAYMENT_INVALID')
    expect(db.payments.get(channel)).toEqual(book)
  })

  it('keeps its books across a restart and redeems what the previous run was owed', async () => {
    const s = await setup()
    await paidJob(s, spec('(x) => x', 1))
    await paidJob(s, spec('(x) => x', 2))
    db.close()
    db = openNodeDatabase(join(dir, 'node.db'))
    const owed = db.payments.unredeemed()
    expect(owed.length).toBeGreaterThan(0)
    const again = await setup(db.payments)
    expect(await again.desk.redeemDue()).toBeGreaterThanOrEqual(2n * PRICE)
    expect(db.payments.unredeemed()).toEqual([])
  })
})
