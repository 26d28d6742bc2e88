import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { MAX_MAKERS, makerKeyOfPeerId, makerKeysOf, makerPeerIdOf, sortMakerKeys } from './maker-key.js'

const ed25519 = async () => {
  const key = await generateKeyPair('Ed25519')
  return { peerId: peerIdFromPrivateKey(key), raw: key.publicKey.raw }
}

describe('maker keys', () => {
  it('are the raw Ed25519 public key inside the peer id, and name the same peer id back', async () => {
    for (let i = 0; i < 5; i++) {
      const { peerId, raw } = await ed25519()
      const key = makerKeyOfPeerId(peerId.toString())
      expect(key).toBe(`0x${Buffer.from(raw).toString('hex')}`)
      expect(makerPeerIdOf(key)).toBe(peerId.toString())
      // The CID form of the same peer id is the same maker.
      expect(makerKeyOfPeerId(peerId.toCID().toString())).toBe(key)
    }
  })

  it('refuse what is not an Ed25519 peer id, with a hint', async () => {
    const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString()
    const rsaLike = 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'
    expect(() => makerKeyOfPeerId(secp)).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: `maker ${secp} is not an Ed25519 key's peer id (its key type: secp256k1)`,
        hint: expect.stringContaining('12D3KooW'),
      }),
    )
    expect(() => makerKeyOfPeerId(rsaLike)).toThrow(
      expect.objectContaining({
        message: `maker ${rsaLike} is not an Ed25519 key's peer id (its key type: RSA)`,
      }),
    )
    for (const bad of ['', 'not a peer id', '0x1234'])
      expect(() => makerKeyOfPeerId(bad)).toThrow(
        expect.objectContaining({
          code: 'INVALID_ARGUMENT',
          message: expect.stringContaining('is not a peer id'),
        }),
      )
    expect(() => makerPeerIdOf('0x1234')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
  })

  it('make lists sorted as NetworkParams keeps them, refusing a repeat or too many', async () => {
    const ids = await Promise.all([ed25519(), ed25519(), ed25519()])
    const peerIds = ids.map((k) => k.peerId.toString())
    const keys = makerKeysOf(peerIds)
    expect(keys).toEqual([...keys].sort())
    expect(keys.map(makerPeerIdOf).sort()).toEqual([...peerIds].sort())
    expect(makerKeysOf([...peerIds].reverse())).toEqual(keys)
    expect(makerKeysOf([])).toEqual([])
    expect(() => makerKeysOf([peerIds[0] as string, peerIds[1] as string, peerIds[0] as string])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: `maker ${peerIds[0]} is named twice` }),
    )
    const many = Array.from({ length: MAX_MAKERS + 1 }, (_, i) =>
      makerPeerIdOf(`0x${(i + 1).toString(16).padStart(64, '0')}`),
    )
    expect(makerKeysOf(many.slice(1))).toHaveLength(MAX_MAKERS)
    expect(() => makerKeysOf(many)).toThrow(
      expect.objectContaining({
        message: `${MAX_MAKERS + 1} makers are more than the ${MAX_MAKERS} one version lists`,
      }),
    )
    // Upper-case hex sorts as its value.
    expect(sortMakerKeys([`0x${'B'.repeat(64)}`, `0x${'a'.repeat(64)}`])).toEqual([
      `0x${'a'.repeat(64)}`,
      `0x${'b'.repeat(64)}`,
    ])
  })
})
