import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { SignedEnvelope } from '../mesh/wire-codec.js'
import type { UptimeObservationBody } from './observation.js'
import { openVerifierStore, type VerifierStore } from './store.js'

const dirs: string[] = []
const opened: VerifierStore[] = []
function open(path?: string): { store: VerifierStore; path: string } {
  const p = path ?? join(mkdtempSync(join(tmpdir(), 'mw-verifier-store-')), 'verifier.db')
  if (path === undefined) dirs.push(p)
  const store = openVerifierStore(p)
  opened.push(store)
  return { store, path: p }
}
afterEach(() => {
  for (const s of opened.splice(0)) s.close()
  for (const d of dirs.splice(0)) rmSync(join(d, '..'), { recursive: true, force: true })
})

const obs = (
  from: string,
  node: string,
  seq: number,
  answered: number,
): SignedEnvelope<UptimeObservationBody> => ({
  v: 1,
  net: 'n',
  type: 'observation/uptime',
  from,
  seq,
  ts: 1,
  exp: 2,
  body: { epoch: 5, node, challenges: 10, answered },
  sig: 'A'.repeat(86),
})

describe('verifier store', () => {
  it('counts challenges per node, and a replayed step changes nothing', () => {
    const { store } = open()
    store.recordChallenge({ epoch: 5, node: 'a', slot: 0, at: 1, outcome: 'answered', rttMs: 12 })
    store.recordChallenge({ epoch: 5, node: 'a', slot: 1, at: 2, outcome: 'timeout' })
    store.recordChallenge({ epoch: 5, node: 'a', slot: 1, at: 3, outcome: 'answered' }) // replayed slot
    store.recordChallenge({ epoch: 5, node: 'b', slot: 0, at: 1, outcome: 'bad_signature' })
    store.recordChallenge({ epoch: 6, node: 'a', slot: 0, at: 9, outcome: 'answered' })
    expect(store.challengeCounts(5)).toEqual(
      new Map([
        ['a', { challenges: 2, answered: 1 }],
        ['b', { challenges: 1, answered: 0 }],
      ]),
    )
    expect(store.challengedSlots(5, 'a')).toEqual(new Set([0, 1]))
  })

  it('keeps the newest observation per verifier and node', () => {
    const { store } = open()
    expect(store.saveObservation(obs('v1', 'a', 3, 5))).toBe(true)
    expect(store.saveObservation(obs('v1', 'a', 2, 9))).toBe(false) // older: a replay
    expect(store.saveObservation(obs('v1', 'a', 4, 7))).toBe(true)
    expect(store.saveObservation(obs('v2', 'a', 1, 1))).toBe(true)
    expect(store.observations(5).map((o) => [o.from, o.seq, o.body.answered])).toEqual([
      ['v1', 4, 7],
      ['v2', 1, 1],
    ])
  })

  it('keeps bundles, attestations, roots and sequence numbers across a reopen', () => {
    const { store, path } = open()
    const digest = `0x${'1'.repeat(64)}` as const
    store.saveBundle({
      cid: 'bafy',
      epoch: 5,
      digest,
      root: digest,
      totalCumulative: 10n ** 24n,
      bytes: new Uint8Array([1, 2]),
    })
    store.saveAttestation({ epoch: 5, cid: 'bafy', signer: '0xAB', signature: '0x01' })
    store.saveAttestation({ epoch: 5, cid: 'bafy', signer: '0xab', signature: '0x02' }) // the same signer again: the newer one
    store.recordRoot({ epoch: 5, root: digest, totalCumulative: 7n, digest, block: 40 })
    const seq = store.nextSeq('observation/uptime')
    store.close()
    opened.splice(opened.indexOf(store), 1)
    const again = open(path).store
    expect(again.bundle('bafy')).toEqual({
      cid: 'bafy',
      epoch: 5,
      digest,
      root: digest,
      totalCumulative: 10n ** 24n,
      bytes: new Uint8Array([1, 2]),
    })
    expect(again.attestations(5, 'bafy')).toEqual([{ signer: '0xab', signature: '0x02' }])
    again.saveAttestation({ epoch: 5, cid: 'bafy', signer: '0xcd', signature: '0x03' })
    expect(again.attestations(5, 'bafy')).toEqual([
      { signer: '0xab', signature: '0x02' },
      { signer: '0xcd', signature: '0x03' },
    ])
    expect(again.attestations(6, 'bafy')).toEqual([])
    expect(again.latestRoot()).toEqual({ epoch: 5, root: digest, totalCumulative: 7n, digest, block: 40 })
    expect(again.nextSeq('observation/uptime')).toBeGreaterThan(seq)
    again.forgetRootsFrom(5)
    expect(again.latestRoot()).toBeUndefined()
  })
})
