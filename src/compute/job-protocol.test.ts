import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, describe, expect, it } from 'vitest'
import { systemClock } from '../core/clock.js'
import { createLogger } from '../core/logger.js'
import { createPeerSigner, createPeerVerifier } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { BLOB_PROTOCOL, BlobServer } from './blobs.js'
import { ComputeService, JOB_PROTOCOL, runJob } from './job-protocol.js'
import { type JobSpec, parseJobSpec } from './job-spec.js'
import { QUOTE_PROTOCOL } from './placement.js'
import { SandboxPool } from './sandbox-pool.js'

const NET = '31337:0xregistry'
const pool = new SandboxPool({ size: 2 })
afterAll(() => pool.close())

const spec = (source: string, input: unknown, limits = {}): JobSpec =>
  parseJobSpec({
    v: 1,
    id: `${Math.floor(Math.random() * 2 ** 32)
      .toString(16)
      .padStart(8, '0')}${'0'.repeat(24)}`,
    kind: 'js',
    code: { inline: Buffer.from(source).toString('base64') },
    input: { inline: Buffer.from(JSON.stringify(input)).toString('base64') },
    limits: { timeMs: 300, ...limits },
    deadline: Date.now() + 60_000,
    maxPrice: '100',
  })

async function setup() {
  const net = new SimNetwork({
    seed: 1,
    clock: systemClock,
    latency: () => ({ latencyMs: 1, jitterMs: 0, lossRate: 0 }),
  })
  const nodeKey = createPeerSigner(await generateKeyPair('Ed25519'))
  const client = net.createPort(createPeerSigner(await generateKeyPair('Ed25519')).peerId)
  const service = new ComputeService(
    { network: NET, price: 10n, now: () => Date.now() },
    { pool, signer: nodeKey },
  )
  const nodePort = net.createPort(nodeKey.peerId)
  await service.start({
    port: nodePort,
    clock: systemClock,
    logger: createLogger({ level: 'silent' }),
    dir: '/tmp',
  })
  return { net, node: nodeKey.peerId, nodePort, client, service }
}

describe('running a job on a node (/meshwork/job/1)', () => {
  it('returns the output with the node’s signature over code, input and output hashes', async () => {
    const { node, client, service } = await setup()
    const r = await runJob(client, node, spec('(x) => x * 2', 21), {
      network: NET,
      verifier: createPeerVerifier(),
    })
    expect(new TextDecoder().decode(r.output)).toBe('42')
    expect(r.node).toBe(node)
    expect(r.sig).toMatch(/^[A-Za-z0-9_-]{86}$/)
    expect(service.counts.get('ok')).toBe(1)
    expect(service.advertise()).toMatchObject({ name: 'compute', price: '10', unit: 'job' })
    // It quotes too, signed, for placement.
    const quote = JSON.parse(
      new TextDecoder().decode(
        await client.request(
          node,
          QUOTE_PROTOCOL,
          new TextEncoder().encode(
            JSON.stringify({ jobId: 'ab'.repeat(16), kind: 'js', timeMs: 100, maxPrice: '50' }),
          ),
        ),
      ),
    )
    expect(quote).toMatchObject({ jobId: 'ab'.repeat(16), price: '10', load: 0 })
  })

  it('passes the node’s error code to the client: a failing job, a bad spec, a past deadline', async () => {
    const { node, client, service } = await setup()
    const options = { network: NET, verifier: createPeerVerifier() }
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: { code: string }) => e.code,
      )
    expect(await codeOf(runJob(client, node, spec('() => { for (;;) {} }', null), options))).toBe(
      'JOB_TIMEOUT',
    )
    expect(await codeOf(runJob(client, node, spec('() => { throw 1 }', null), options))).toBe('JOB_FAILED')
    const late = { ...spec('(x) => x', 1), deadline: Date.now() - 1 }
    expect(await codeOf(runJob(client, node, late, options))).toBe('JOB_SPEC_INVALID')
    // A hand-made request the client library would not send.
    const raw = await client.request(node, JOB_PROTOCOL, new TextEncoder().encode('{"v":9}'))
    expect(JSON.parse(new TextDecoder().decode(raw)).error.code).toBe('JOB_SPEC_INVALID')
    expect(service.counts.get('JOB_SPEC_INVALID')).toBe(2)
  })

  it('never returns a result that does not check as good', async () => {
    const { node, nodePort, client } = await setup()
    const options = { network: NET, verifier: createPeerVerifier() }
    const good = spec('(x) => x + 1', 1)
    // A node that runs the job but swaps the output after signing.
    const honest = await client.request(
      node,
      JOB_PROTOCOL,
      new TextEncoder().encode(JSON.stringify({ spec: good })),
    )
    nodePort.unhandle(JOB_PROTOCOL)
    nodePort.handle(JOB_PROTOCOL, async () => {
      const body = JSON.parse(new TextDecoder().decode(honest))
      body.result.output = Buffer.from('3').toString('base64')
      return new TextEncoder().encode(JSON.stringify(body))
    })
    await expect(runJob(client, node, good, options)).rejects.toMatchObject({ code: 'JOB_FAILED' })
    // And one that replays another job's signed answer.
    nodePort.unhandle(JOB_PROTOCOL)
    nodePort.handle(JOB_PROTOCOL, async () => honest)
    await expect(runJob(client, node, spec('(x) => x + 1', 1), options)).rejects.toMatchObject({
      code: 'JOB_FAILED',
      message: expect.stringContaining('does not check'),
    })
  })
})

describe('code and input by hash (/meshwork/blob/1)', () => {
  const byHash = (input: unknown, hashes: { code: string; input?: string }) =>
    parseJobSpec({
      v: 1,
      id: randomBytes(16).toString('hex'),
      kind: 'js',
      code: { sha256: hashes.code },
      input: hashes.input
        ? { sha256: hashes.input }
        : { inline: Buffer.from(JSON.stringify(input)).toString('base64') },
      limits: { timeMs: 500 },
      deadline: Date.now() + 60_000,
      maxPrice: '100',
    })

  it('fetches what the client serves, checks its hash, and keeps it for the next job', async () => {
    const { node, client } = await setup()
    const options = { network: NET, verifier: createPeerVerifier() }
    const server = new BlobServer(client)
    const code = new TextEncoder().encode('(x) => x * 10')
    const hash = server.add(code)
    const first = await runJob(client, node, byHash(4, { code: hash }), options)
    expect(new TextDecoder().decode(first.output)).toBe('40')
    expect(first.codeHash).toBe(hash)
    // The client stops serving it: the node runs the next job from its cache.
    server.release(hash)
    const second = await runJob(client, node, byHash(5, { code: hash }), options)
    expect(new TextDecoder().decode(second.output)).toBe('50')
    server.close()
  })

  it('refuses a blob the client does not serve, or whose bytes do not match the hash', async () => {
    const { node, client, nodePort } = await setup()
    const options = { network: NET, verifier: createPeerVerifier() }
    const missing = 'ab'.repeat(32)
    await expect(runJob(client, node, byHash(1, { code: missing }), options)).rejects.toMatchObject({
      code: 'JOB_SPEC_INVALID',
      message: expect.stringContaining('did not serve it'),
    })
    // A client that serves other bytes under the hash.
    client.handle(BLOB_PROTOCOL, async () => new TextEncoder().encode('(x) => 0'))
    await expect(runJob(client, node, byHash(1, { code: missing }), options)).rejects.toMatchObject({
      code: 'JOB_SPEC_INVALID',
      message: expect.stringContaining('do not match'),
    })
    expect(nodePort.peerId).toBe(node)
  })
})
