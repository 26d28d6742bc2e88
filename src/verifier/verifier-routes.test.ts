import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, describe, expect, it } from 'vitest'
import { createPeerSigner, createPeerVerifier } from '../mesh/peer-key.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import { DEFAULT_REWARD_PARAMS } from '../rewards/index.js'
import { bytesMatchCid, fetchBundle } from './audit.js'
import { buildBundle, checkBundle, settleBundle } from './bundle.js'
import { UPTIME_OBSERVATION } from './observation.js'
import { openVerifierStore } from './store.js'
import { verifierRoutes } from './verifier-service.js'

const NET = '31337:0xregistry'
const MESH = 10n ** 18n
const dir = mkdtempSync(join(tmpdir(), 'mw-routes-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A store holding one posted epoch (0) whose bundle pays two operators. */
async function postedEpoch() {
  const signer = createPeerSigner(await generateKeyPair('Ed25519'))
  let seq = 0
  const codec = createWireCodec({
    network: NET,
    signer,
    clock: { now: () => 1_700_000_000_000 },
    types: [UPTIME_OBSERVATION],
    nextSeq: () => ++seq,
  })
  const observation = (node: string, answered: number) =>
    JSON.parse(
      new TextDecoder().decode(
        codec.encode(UPTIME_OBSERVATION, { epoch: 0, node, challenges: 4, answered }).bytes,
      ),
    )
  const encoded = buildBundle({
    net: NET,
    epoch: 0,
    seed: `0x${'ab'.repeat(32)}`,
    emission: 1_000n * MESH,
    params: DEFAULT_REWARD_PARAMS,
    nodes: [
      { peerId: 'n-a', operator: `0x${'a'.repeat(40)}`, stake: 1_000n * MESH, registeredEpoch: 0 },
      { peerId: 'n-b', operator: `0x${'b'.repeat(40)}`, stake: 1_000n * MESH, registeredEpoch: 0 },
    ],
    verifiers: [{ peerId: signer.peerId, address: `0x${'c'.repeat(40)}` }],
    observations: [observation('n-a', 4), observation('n-b', 2)],
    carried: { root: null, entries: [] },
  })
  const checked = checkBundle(encoded.bytes, {
    network: NET,
    verifier: createPeerVerifier(),
    previousRoot: null,
  })
  if (!checked.ok) throw new Error(checked.fault)
  const settled = settleBundle(checked.bundle)
  const store = openVerifierStore(join(dir, `v-${Math.random()}.db`))
  store.saveBundle({ ...encoded, epoch: 0, root: settled.root, totalCumulative: settled.totalCumulative })
  store.recordRoot({
    epoch: 0,
    root: settled.root,
    totalCumulative: settled.totalCumulative,
    digest: encoded.digest,
    block: 3,
  })
  return { store, encoded, settled }
}

describe('verifier HTTP routes', () => {
  it('serves a held bundle by CID, byte for byte, and 404 for another', async () => {
    const { store, encoded } = await postedEpoch()
    const routes = verifierRoutes(store, { network: NET, verifier: createPeerVerifier() })
    const held = routes(`/bundles/${encoded.cid}`, new URLSearchParams())
    expect(held?.status).toBe(200)
    expect(Buffer.from(held?.body as Uint8Array).equals(Buffer.from(encoded.bytes))).toBe(true)
    expect(bytesMatchCid(held?.body as Uint8Array, encoded.cid)).toBe(true)
    const other = `b${'a'.repeat(58)}`
    expect(routes(`/bundles/${other}`, new URLSearchParams())?.status).toBe(404)
    expect(routes('/bundles/../../etc/passwd', new URLSearchParams())).toBeUndefined()
    store.close()
  })

  it('serves an operator the proof claim takes, and refuses what it cannot answer', async () => {
    const { store, settled } = await postedEpoch()
    const routes = verifierRoutes(store, { network: NET, verifier: createPeerVerifier() })
    const account = `0x${'A'.repeat(40)}`
    const ok = routes(`/proofs/${account}`, new URLSearchParams())
    expect(ok?.status).toBe(200)
    const body = JSON.parse(ok?.body as string)
    const expected = settled.tree.proof(`0x${'a'.repeat(40)}`)
    expect(body).toEqual({
      epoch: 0,
      root: settled.root,
      account: `0x${'a'.repeat(40)}`,
      cumulativeAmount: expected?.cumulativeAmount.toString(),
      proof: expected?.proof,
    })
    // The operator that answered half its challenges earned less, but earned.
    expect(BigInt(body.cumulativeAmount)).toBeGreaterThan(0n)
    const error = (path: string, query = '') => {
      const r = routes(path, new URLSearchParams(query))
      return [r?.status, JSON.parse((r?.body as string) ?? '{}').error?.code]
    }
    expect(error(`/proofs/0x${'d'.repeat(40)}`)).toEqual([404, 'NOT_IN_ROOT'])
    expect(error(`/proofs/${account}`, 'epoch=7')).toEqual([404, 'EPOCH_NOT_POSTED'])
    expect(error(`/proofs/${account}`, 'epoch=-1')).toEqual([400, 'INVALID_ARGUMENT'])
    expect(routes('/proofs/0x1234', new URLSearchParams())).toBeUndefined()
    store.close()
  })
})

describe('fetchBundle', () => {
  it('refuses bytes that do not hash to the CID and takes the next source', async () => {
    const { store, encoded } = await postedEpoch()
    store.close()
    const liar = { name: 'liar', fetch: async () => new TextEncoder().encode('{"v":1}') }
    const down = {
      name: 'down',
      fetch: async () => {
        throw new Error('HTTP 503')
      },
    }
    const honest = { name: 'honest', fetch: async () => encoded.bytes }
    await expect(fetchBundle(encoded.cid, [liar, down, honest])).resolves.toEqual(encoded.bytes)
    const err = await fetchBundle(encoded.cid, [liar, down]).catch((e: unknown) => e)
    expect(err).toMatchObject({
      code: 'BUNDLE_UNAVAILABLE',
      details: { failures: ['liar: bytes of another digest', 'down: HTTP 503'] },
    })
  })
})
