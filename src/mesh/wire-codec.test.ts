import { generateKeyPair } from '@libp2p/crypto/keys'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createPeerSigner, type PeerSigner } from './peer-key.js'
import { createWireCodec, defineMessage, type Envelope, SEQ_WINDOW, type WireCodec } from './wire-codec.js'

const note = defineMessage('note', z.object({ text: z.string().max(200), n: z.number().int() }).strict(), {
  maxBytes: 2_048,
})
const NET = '31337:0xregistry'

let alice: PeerSigner
let bob: PeerSigner
let mallory: PeerSigner
beforeAll(async () => {
  ;[alice, bob, mallory] = (await Promise.all(
    [0, 1, 2].map(async () => createPeerSigner(await generateKeyPair('Ed25519'))),
  )) as [PeerSigner, PeerSigner, PeerSigner]
})

function node(signer: PeerSigner, opts: { now?: () => number; net?: string } = {}) {
  let seq = 0
  const clock = { now: opts.now ?? (() => 1_700_000_000_000) }
  return createWireCodec({ network: opts.net ?? NET, signer, clock, types: [note], nextSeq: () => ++seq })
}
/** A sender whose messages carry the sequence numbers the test chooses. */
function numbered(signer: PeerSigner): (seq: number, text?: string) => Uint8Array {
  let next = 0
  const codec = createWireCodec({
    network: NET,
    signer,
    clock: { now: () => 1_700_000_000_000 },
    types: [note],
    nextSeq: () => next,
  })
  return (seq, text = '') => {
    next = seq
    return codec.encode(note, { text, n: seq }).bytes
  }
}
const utf8 = (b: Uint8Array) => new TextDecoder().decode(b)
const bytes = (s: string) => new TextEncoder().encode(s)
const reasonOf = (codec: WireCodec, b: Uint8Array, from?: string) => {
  const d = codec.decode(b, from === undefined ? {} : { from })
  return d.ok ? 'ok' : d.reason
}

describe('wire codec', () => {
  it('round-trips a signed message to another node', () => {
    const sent = node(alice).encode(note, { text: 'hi', n: 1 }, { ttlMs: 60_000 }).bytes
    const got = node(bob).decode(sent, { from: alice.peerId })
    expect(got).toMatchObject({
      ok: true,
      envelope: {
        type: 'note',
        from: alice.peerId,
        seq: 1,
        body: { text: 'hi', n: 1 },
        exp: 1_700_000_060_000,
      },
    })
  })

  it('refuses a forged signature, a changed body and a message claiming another sender', () => {
    const sent = JSON.parse(utf8(node(alice).encode(note, { text: 'pay me', n: 1 }).bytes))
    const b = () => node(bob)
    expect(reasonOf(b(), bytes(JSON.stringify({ ...sent, body: { text: 'pay me', n: 2 } })))).toBe(
      'bad_signature',
    )
    expect(reasonOf(b(), bytes(JSON.stringify({ ...sent, from: mallory.peerId })))).toBe('bad_signature')
    const forged = JSON.parse(utf8(node(mallory).encode(note, { text: 'pay me', n: 1 }).bytes))
    expect(reasonOf(b(), bytes(JSON.stringify({ ...forged, from: alice.peerId })))).toBe('bad_signature')
    // The transport says who relayed it first-hand; the envelope must agree.
    expect(reasonOf(b(), bytes(JSON.stringify(sent)), mallory.peerId)).toBe('sender_mismatch')
    expect(reasonOf(b(), bytes(JSON.stringify({ ...sent, from: 'not-a-peer-id' })))).toBe('bad_signature')
  })

  it('takes each message once, a late one too, and drops replays (rejected) and duplicates (ignored)', () => {
    const at = numbered(alice)
    const first = at(1, 'a')
    const second = at(2, 'b')
    const b = node(bob)
    expect(reasonOf(b, second)).toBe('ok')
    expect(b.decode(second)).toMatchObject({ ok: false, reason: 'duplicate', verdict: 'ignore' })
    // Sent first but heard second (another peer gossiped it, or it came on another stream): taken.
    expect(reasonOf(b, first)).toBe('ok')
    expect(b.decode(first)).toMatchObject({ ok: false, reason: 'duplicate', verdict: 'ignore' })
    // Once a later one is heard, anything a whole window further back is a replay.
    const old = at(3, 'c')
    expect(reasonOf(b, at(3 + SEQ_WINDOW, 'd'))).toBe('ok')
    expect(b.decode(old)).toMatchObject({ ok: false, reason: 'replay', verdict: 'reject' })
    expect(reasonOf(b, at(4, 'e'))).toBe('ok')
    // Another sender's sequence is its own.
    expect(reasonOf(b, node(mallory).encode(note, { text: 'c', n: 3 }).bytes)).toBe('ok')
  })

  it("takes a sender's messages in any order of arrival exactly once, and nothing a window behind", () => {
    // The window against a plain model: the set of numbers taken and the highest one heard.
    fc.assert(
      fc.property(
        // Numbers near whole windows apart (they share a place in the window), in any order, some
        // more than once: late ones, duplicates, replays at and past the window's edge.
        fc.array(
          fc
            .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 24 }))
            .map(([windows, offset]) => windows * SEQ_WINDOW + offset),
          { minLength: 1, maxLength: 200 },
        ),
        (arrivals) => {
          const at = numbered(alice)
          const sent = new Map<number, Uint8Array>()
          const messageOf = (seq: number) => {
            let m = sent.get(seq)
            if (m === undefined) {
              m = at(seq)
              sent.set(seq, m)
            }
            return m
          }
          const b = node(bob)
          const taken = new Set<number>()
          let high = -1
          for (const seq of arrivals) {
            const expected = high - seq >= SEQ_WINDOW ? 'replay' : taken.has(seq) ? 'duplicate' : 'ok'
            expect(reasonOf(b, messageOf(seq))).toBe(expected)
            if (expected === 'ok') taken.add(seq)
            high = Math.max(high, seq)
          }
        },
      ),
      { numRuns: 100 },
    )
  })

  it('drops expired messages, messages from the future and messages for another network', () => {
    const now = 1_700_000_000_000
    const sent = node(alice, { now: () => now }).encode(note, { text: 'x', n: 0 }, { ttlMs: 10_000 }).bytes
    expect(reasonOf(node(bob, { now: () => now + 10_000 }), sent)).toBe('expired')
    expect(reasonOf(node(bob, { now: () => now - 31_000 }), sent)).toBe('future')
    expect(reasonOf(node(bob, { now: () => now - 29_000 }), sent)).toBe('ok')
    expect(reasonOf(node(bob, { net: '1:0xother' }), sent)).toBe('wrong_network')
  })

  it('drops oversized, malformed and unknown messages without throwing', () => {
    const b = node(bob)
    expect(reasonOf(b, new Uint8Array(2_049))).toBe('too_large')
    expect(reasonOf(b, bytes('{"v":1,'))).toBe('malformed')
    expect(reasonOf(b, new Uint8Array([0xff, 0xfe, 0x00]))).toBe('malformed')
    const sent = JSON.parse(utf8(node(alice).encode(note, { text: 'x', n: 0 }).bytes))
    expect(reasonOf(b, bytes(JSON.stringify({ ...sent, type: 'future-kind' })))).toBe('unknown_type')
    expect(reasonOf(b, bytes(JSON.stringify({ ...sent, extra: 1 })))).toBe('malformed')
    expect(reasonOf(b, bytes(JSON.stringify({ ...sent, body: { text: 'x', n: 0.5 } })))).toBe('malformed')
    expect(() => node(alice).encode(note, { text: 'x'.repeat(300), n: 0 }).bytes).toThrow()
  })

  it('never throws on random bytes, and a mutated message either fails or means exactly the original', () => {
    const original = node(alice).encode(note, { text: 'the same text', n: 42 }).bytes
    const reference = (node(bob).decode(original) as { envelope: Envelope }).envelope
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3_000 }), (random) => {
        expect(node(bob).decode(random).ok).toBe(false)
      }),
      { numRuns: 2_000 },
    )
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(original.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (edits) => {
          const mutated = Uint8Array.from(original)
          for (const [at, value] of edits) mutated[at] = value
          const d = node(bob).decode(mutated)
          if (d.ok) expect(d.envelope).toEqual(reference)
        },
      ),
      { numRuns: 5_000 },
    )
  })

  it('keeps replay memory bounded, forgetting the oldest senders first', async () => {
    let seq = 0
    const small = createWireCodec({
      network: NET,
      signer: bob,
      clock: { now: () => 1_700_000_000_000 },
      types: [note],
      nextSeq: () => ++seq,
      replayCacheSize: 2,
    })
    const signers = await Promise.all(
      [0, 1, 2].map(async () => createPeerSigner(await generateKeyPair('Ed25519'))),
    )
    const first = signers.map((s) => node(s).encode(note, { text: 'a', n: 0 }).bytes)
    for (const m of first) expect(reasonOf(small, m)).toBe('ok')
    // The first sender was forgotten (cache of 2), the last two are remembered.
    expect(reasonOf(small, first[0] as Uint8Array)).toBe('ok')
    expect(reasonOf(small, first[2] as Uint8Array)).toBe('duplicate')
  })
})
