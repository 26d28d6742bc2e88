import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import fc from 'fast-check'
import { latLngToCell } from 'h3-js'
import { afterAll, describe, expect, it } from 'vitest'
import { createPeerSigner, createPeerVerifier, type PeerVerifier } from '../mesh/peer-key.js'
import { createWireCodec, type SignedEnvelope } from '../mesh/wire-codec.js'
import { DeviceSigner } from './device.js'
import {
  MAX_MODEL_CHARS,
  type MakerCertificate,
  makerCertificateBytes,
  signMakerCertificate,
  verifyMakerCertificate,
} from './maker.js'
import { createMakerKey, readMakerCertificate, readMakerKey, writeMakerCertificate } from './maker-files.js'
import {
  CertificateCache,
  checkReading,
  SENSOR_DEVICE,
  SENSOR_READING,
  type SensorReadingBody,
} from './reading.js'
import { readingChecker } from './subscriber.js'

const T0 = Date.UTC(2026, 5, 1)
const CELL = latLngToCell(52.5, 13.4, 5)
const verifier = createPeerVerifier()
const newSigner = async () => createPeerSigner(await generateKeyPair('Ed25519'))

describe('maker certificate of a device', () => {
  it('signs the UTF-8 bytes of meshwork/device-certificate/1, the device and the model, and verifies', async () => {
    const maker = await newSigner()
    const device = (await newSigner()).peerId
    const c = signMakerCertificate(maker, device, 'WS-2000 rev B')
    expect(c).toMatchObject({ maker: maker.peerId, device, model: 'WS-2000 rev B' })
    expect(c.sig).toMatch(/^[A-Za-z0-9_-]{86}$/)
    const bytes = new TextEncoder().encode(`meshwork/device-certificate/1\n${device}\nWS-2000 rev B`)
    expect(makerCertificateBytes(device, 'WS-2000 rev B')).toEqual(bytes)
    expect(verifier.verify(maker.peerId, bytes, Buffer.from(c.sig, 'base64url'))).toBe(true)
    // As it travels: JSON and back.
    expect(verifyMakerCertificate(JSON.parse(JSON.stringify(c)), verifier)).toEqual({
      ok: true,
      certificate: c,
    })
  })

  it('refuses a tampered signature, model or device, and a signature by another key', async () => {
    const maker = await newSigner()
    const device = (await newSigner()).peerId
    const other = (await newSigner()).peerId
    const c = signMakerCertificate(maker, device, 'WS-2000')
    const flip = (sig: string) => `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`
    for (const bad of [
      { ...c, sig: flip(c.sig) },
      { ...c, model: 'WS-2001' },
      { ...c, device: other },
      // Claimed by another maker (a well-formed peer id whose key did not sign it).
      { ...c, maker: other },
    ])
      expect(verifyMakerCertificate(bad, verifier)).toEqual({ ok: false, fault: 'bad_signature' })
  })

  it('refuses malformed and oversized fields, never throwing', async () => {
    const maker = await newSigner()
    const device = (await newSigner()).peerId
    const c = signMakerCertificate(maker, device, 'WS-2000')
    for (const bad of [
      null,
      'x',
      [],
      { ...c, model: '' },
      { ...c, model: 'x'.repeat(MAX_MODEL_CHARS + 1) },
      { ...c, model: 'line\nbreak' },
      { ...c, model: 'café' },
      { ...c, device: 'd'.repeat(129) },
      { ...c, device: `${device}\n` },
      { ...c, maker: '' },
      // The same key spelled as a CID: approved makers are matched by their base58 text.
      { ...c, maker: peerIdFromString(c.maker).toCID().toString() },
      { ...c, sig: `${c.sig}A` },
      { ...c, extra: 1 },
      { maker: c.maker, device: c.device, model: c.model },
    ])
      expect(verifyMakerCertificate(bad, verifier)).toEqual({ ok: false, fault: 'malformed' })
    expect(() => signMakerCertificate(maker, device, 'x'.repeat(65))).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/printable ASCII/),
      }),
    )
    expect(() => signMakerCertificate(maker, 'not a peer id', 'WS')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/not a peer id/) }),
    )
    // The longest model is 64 characters.
    const longest = signMakerCertificate(maker, device, '~'.repeat(MAX_MODEL_CHARS))
    expect(verifyMakerCertificate(longest, verifier).ok).toBe(true)
  })

  it('holds for every printable model, and any one changed character breaks it (property)', async () => {
    const maker = await newSigner()
    const device = (await newSigner()).peerId
    const printable = fc
      .array(fc.integer({ min: 0x20, max: 0x7e }), { minLength: 1, maxLength: MAX_MODEL_CHARS })
      .map((codes) => String.fromCharCode(...codes))
    fc.assert(
      fc.property(
        printable,
        fc.constantFrom('device', 'model', 'sig'),
        fc.nat(),
        fc.integer({ min: 0x20, max: 0x7e }),
        (model, field, at, code) => {
          const c = signMakerCertificate(maker, device, model)
          expect(verifyMakerCertificate(c, verifier).ok).toBe(true)
          const text = c[field]
          const i = at % text.length
          const changed = `${text.slice(0, i)}${String.fromCharCode(code)}${text.slice(i + 1)}`
          if (changed === text) return
          const result = verifyMakerCertificate({ ...c, [field]: changed }, verifier)
          expect(result.ok).toBe(false)
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('maker files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'maker-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('makes a maker key readable by its owner only, never overwriting it, and reads it back', async () => {
    const path = join(dir, 'maker.key')
    const key = await createMakerKey(path)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(createPeerSigner(readMakerKey(path)).peerId).toBe(createPeerSigner(key).peerId)
    await expect(createMakerKey(path)).rejects.toThrow(/already exists/)
    expect(() => readMakerKey(join(dir, 'none.key'))).toThrow(
      expect.objectContaining({
        message: expect.stringMatching(/does not exist/),
        hint: expect.stringContaining('meshwork maker init'),
      }),
    )
    const junk = join(dir, 'junk.key')
    writeFileSync(junk, 'not a key', { mode: 0o600 })
    expect(() => readMakerKey(junk)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
  })

  it('reads a certificate back, checked, and says what is wrong with a bad one', async () => {
    const maker = await newSigner()
    const device = (await newSigner()).peerId
    const other = (await newSigner()).peerId
    const c = signMakerCertificate(maker, device, 'WS-2000')
    const path = join(dir, 'good.json')
    writeMakerCertificate(path, c)
    expect(readMakerCertificate(path, { device })).toEqual(c)
    const file = (name: string, text: string) => {
      const p = join(dir, name)
      writeFileSync(p, text)
      return p
    }
    const cases: [string, RegExp][] = [
      [join(dir, 'missing.json'), /does not exist/],
      [file('big.json', ' '.repeat(2_000)), /larger than 1024 bytes/],
      [file('text.json', 'hello'), /is not JSON/],
      [file('shape.json', JSON.stringify({ ...c, model: '' })), /is not a maker certificate/],
      [file('sig.json', JSON.stringify({ ...c, model: 'WS-2001' })), /does not carry its maker's signature/],
    ]
    for (const [p, message] of cases)
      expect(() => readMakerCertificate(p, { what: 'sensor porch’s certificate' })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) }),
      )
    expect(() => readMakerCertificate(path, { device: other })).toThrow(
      expect.objectContaining({
        message: expect.stringContaining(`certifies device ${device}, not ${other}`),
        hint: expect.stringContaining(`meshwork maker certify --device ${other}`),
      }),
    )
  })
})

describe('readings of a maker-certified device', () => {
  /** A device of a node, certified by `maker` (its own certificate unless `certificate` is given). */
  async function certified(certificate?: (device: string) => MakerCertificate) {
    const maker = await newSigner()
    const key = await generateKeyPair('Ed25519')
    const device = createPeerSigner(key).peerId
    const cert = certificate?.(device) ?? signMakerCertificate(maker, device, 'WS-2000')
    let now = T0
    const clock = { now: () => now }
    let seq = 0
    const nodeCodec = createWireCodec({
      network: 'n',
      signer: await newSigner(),
      clock,
      types: [SENSOR_DEVICE],
      nextSeq: () => ++seq,
    })
    // What a dishonest node could sign: any maker's certificate in its certificate of the device.
    const body = { device, kinds: ['temperature' as const], cell: CELL, maker: cert }
    const certificateEnvelope = () =>
      JSON.parse(new TextDecoder().decode(nodeCodec.encode(SENSOR_DEVICE, body, { ttlMs: 3_600_000 }).bytes))
    const deviceCodec = createWireCodec({
      network: 'n',
      signer: createPeerSigner(key),
      clock,
      types: [SENSOR_READING],
      nextSeq: () => ++seq,
    })
    const reading = (value: number, deviceCertificate: unknown = certificateEnvelope()) =>
      deviceCodec.encode(SENSOR_READING, {
        kind: 'temperature',
        value,
        unit: '°C',
        at: now,
        cell: CELL,
        device: deviceCertificate,
      }).bytes
    const receiver = createWireCodec({
      network: 'n',
      signer: await newSigner(),
      clock,
      types: [SENSOR_READING],
      nextSeq: () => 1,
    })
    const decode = (bytes: Uint8Array) => {
      const d = receiver.decode(bytes)
      if (!d.ok) throw new Error(d.reason)
      return d.envelope as SignedEnvelope<SensorReadingBody>
    }
    return {
      maker,
      device,
      key,
      clock,
      nodeCodec,
      reading,
      certificateEnvelope,
      decode,
      advance: (ms: number) => (now += ms),
    }
  }

  /** A verifier that counts the maker signatures it checks. */
  function counting(): PeerVerifier & { makerChecks: number } {
    const inner = createPeerVerifier()
    const v = {
      makerChecks: 0,
      verify(peerId: string, data: Uint8Array, sig: Uint8Array) {
        if (new TextDecoder().decode(data).startsWith('meshwork/device-certificate/1\n')) v.makerChecks++
        return inner.verify(peerId, data, sig)
      },
    }
    return v
  }

  it('names the maker of a good certificate, checking it once per device across the node’s renewals', async () => {
    const d = await certified()
    const v = counting()
    const certificates = new CertificateCache()
    const check = (bytes: Uint8Array) =>
      checkReading(d.decode(bytes), { network: 'n', verifier: v, certificates })
    // Each reading here carries a new node certificate (as after each renewal): the maker's
    // certificate inside is checked once all the same.
    expect(check(d.reading(20))).toMatchObject({ ok: true, maker: d.maker.peerId })
    expect(check(d.reading(21))).toMatchObject({ ok: true, maker: d.maker.peerId })
    d.advance(50 * 60_000)
    expect(check(d.reading(22))).toMatchObject({ ok: true, maker: d.maker.peerId })
    expect(v.makerChecks).toBe(1)
    // Without a cache, every certificate is checked.
    expect(checkReading(d.decode(d.reading(23)), { network: 'n', verifier: v })).toMatchObject({ ok: true })
    expect(v.makerChecks).toBe(2)
  })

  it('a DeviceSigner carries the maker certificate in every node certificate, and refuses another device’s', async () => {
    const d = await certified()
    const cert = signMakerCertificate(d.maker, d.device, 'WS-2000')
    const signer = new DeviceSigner({
      network: 'n',
      key: d.key,
      kinds: ['temperature'],
      cell: CELL,
      nodeCodec: d.nodeCodec,
      clock: d.clock,
      maker: cert,
    })
    expect(signer.certificate().body.maker).toEqual(cert)
    const checked = checkReading(d.decode(signer.sign({ kind: 'temperature', value: 20, at: T0 })), {
      network: 'n',
      verifier,
    })
    expect(checked).toMatchObject({ ok: true, maker: d.maker.peerId })
    const stranger = await generateKeyPair('Ed25519')
    expect(
      () =>
        new DeviceSigner({
          network: 'n',
          key: stranger,
          kinds: ['temperature'],
          cell: CELL,
          nodeCodec: d.nodeCodec,
          clock: d.clock,
          maker: cert,
        }),
    ).toThrow(/is for device/)
  })

  it('refuses a reading whose maker certificate is forged or for another device, counted, never thrown', async () => {
    const someMaker = await newSigner()
    const otherDevice = (await newSigner()).peerId
    // The model changed after signing.
    const forged = await certified((device) => ({
      ...signMakerCertificate(someMaker, device, 'WS-2000'),
      model: 'WS-9000',
    }))
    // A good certificate, of another device.
    const elsewhere = await certified(() => signMakerCertificate(someMaker, otherDevice, 'WS-2000'))
    for (const [d, fault] of [
      [forged, 'bad_maker_certificate'],
      [elsewhere, 'maker_certificate_mismatch'],
    ] as const)
      expect(checkReading(d.decode(d.reading(20)), { network: 'n', verifier })).toEqual({ ok: false, fault })
    // A subscriber drops them (and counts them) without throwing.
    const checker = readingChecker({
      codec: createWireCodec({
        network: 'n',
        signer: await newSigner(),
        clock: forged.clock,
        types: [SENSOR_READING],
        nextSeq: () => 1,
      }),
      verifier,
      network: 'n',
      now: () => T0,
    })
    expect(checker.check(forged.reading(21))).toEqual({ verdict: 'reject' })
    expect(checker.check(elsewhere.reading(21))).toEqual({ verdict: 'reject' })
    expect(checker.dropped()).toBe(2)
    const good = await certified()
    expect(checker.check(good.reading(21)).reading).toMatchObject({ maker: good.maker.peerId })
  })

  it('fits the caps with the longest fields: a certificate in 1 KiB, a reading in 2 KiB', async () => {
    const net = 'x'.repeat(128)
    const key = await generateKeyPair('Ed25519')
    const maker = signMakerCertificate(await newSigner(), createPeerSigner(key).peerId, '~'.repeat(64))
    const clock = { now: () => T0 }
    const signer = new DeviceSigner({
      network: net,
      key,
      kinds: ['temperature', 'humidity', 'pressure', 'pm25'],
      cell: CELL,
      clock,
      maker,
      nodeCodec: createWireCodec({
        network: net,
        signer: await newSigner(),
        clock,
        types: [SENSOR_DEVICE],
        nextSeq: () => Number.MAX_SAFE_INTEGER,
      }),
    })
    expect(JSON.stringify(signer.certificate()).length).toBeLessThan(SENSOR_DEVICE.maxBytes)
    const bytes = signer.sign({ kind: 'pm25', value: -1.2345678901234568e-300, at: Number.MAX_SAFE_INTEGER })
    expect(bytes.length).toBeLessThan(SENSOR_READING.maxBytes)
  })
})
