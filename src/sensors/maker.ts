import { z } from 'zod'
import { InvalidArgumentError } from '../core/errors.js'
import type { PeerSigner, PeerVerifier } from '../mesh/peer-key.js'

/**
 * A maker's certificate of a device (docs/protocol.md, "Maker certificate"): the hardware maker's
 * Ed25519 key vouches, once at the factory, that a device key belongs to hardware of one of its
 * models. It names no network and has no expiry; governance approves or revokes a maker as a whole
 * (`RewardParams.hardware.makers`). Signature and schema only: whether the maker is approved is the
 * reward function's question.
 */

/** The first line of the bytes a maker signs. */
export const MAKER_CERTIFICATE_PREFIX = 'meshwork/device-certificate/1\n'

/** Longest model name (printable ASCII). */
export const MAX_MODEL_CHARS = 64

/** Largest certificate file read (a certificate is about 300 bytes). */
export const MAX_MAKER_CERTIFICATE_BYTES = 1_024

/** A peer id in its string form (base58btc or base32): letters and digits only. */
const peerIdText = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9]+$/, 'a peer id')

/** 1 to {@link MAX_MODEL_CHARS} printable ASCII characters (so no newline: the signed bytes parse one way). */
export const modelSchema = z
  .string()
  .min(1)
  .max(MAX_MODEL_CHARS)
  .regex(/^[\x20-\x7e]+$/, 'printable ASCII characters')

/** A maker's certificate of a device, as it travels and as its file holds it. */
export const makerCertificateSchema = z
  .object({
    /**
     * The maker's Ed25519 key, as a base58 peer id (`12D3KooW…`, the one spelling governance's
     * list uses, so an approved maker is matched by its text): `sig` is by it.
     */
    maker: z.string().regex(/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/, 'an Ed25519 peer id (12D3KooW…)'),
    /** The device key it certifies, as a peer id. */
    device: peerIdText,
    /** The hardware model, for people (e.g. `WS-2000 rev B`). */
    model: modelSchema,
    /**
     * The maker's Ed25519 signature (base64url, unpadded, 64 bytes) of the UTF-8 bytes of
     * `meshwork/device-certificate/1\n<device>\n<model>`. One spelling only (the last character
     * carries 2 bits and 4 zero bits).
     */
    sig: z.string().regex(/^[A-Za-z0-9_-]{85}[AQgw]$/, 'a base64url Ed25519 signature'),
  })
  .strict()

/** A maker's certificate of a device. */
export type MakerCertificate = z.infer<typeof makerCertificateSchema>

const encoder = new TextEncoder()

/** The bytes a maker signs to certify `device` as a `model`. */
export function makerCertificateBytes(device: string, model: string): Uint8Array {
  return encoder.encode(`${MAKER_CERTIFICATE_PREFIX}${device}\n${model}`)
}

/**
 * Certifies `device` (a device key's peer id) as hardware of `model`, signed by the maker's key.
 * Throws InvalidArgumentError for a device that is not a peer id or a model that is not 1 to 64
 * printable ASCII characters.
 *
 * @example
 * ```ts
 * const certificate = signMakerCertificate(createPeerSigner(makerKey), devicePeerId, 'WS-2000')
 * ```
 */
export function signMakerCertificate(maker: PeerSigner, device: string, model: string): MakerCertificate {
  if (!peerIdText.safeParse(device).success)
    throw new InvalidArgumentError(`device ${JSON.stringify(device.slice(0, 140))} is not a peer id`, {
      hint: 'Pass the device key peer id that `meshwork node sensors` shows (12D3KooW…)',
    })
  if (!modelSchema.safeParse(model).success)
    throw new InvalidArgumentError(
      `model ${JSON.stringify(model.slice(0, 80))} is not 1 to ${MAX_MODEL_CHARS} printable ASCII characters`,
      { hint: 'Pass a short model name, e.g. --model "WS-2000 rev B"' },
    )
  const sig = Buffer.from(maker.sign(makerCertificateBytes(device, model))).toString('base64url')
  return { maker: maker.peerId, device, model, sig }
}

/** Why a maker's certificate is not good. */
export type MakerCertificateFault = 'malformed' | 'bad_signature'

/**
 * Checks a maker's certificate: its shape and sizes, then the maker's signature. Never throws.
 * Whether the maker is approved, and whether it certifies the device wanted, is the caller's.
 */
export function verifyMakerCertificate(
  value: unknown,
  verifier: PeerVerifier,
): { ok: true; certificate: MakerCertificate } | { ok: false; fault: MakerCertificateFault } {
  const parsed = makerCertificateSchema.safeParse(value)
  if (!parsed.success) return { ok: false, fault: 'malformed' }
  const c = parsed.data
  const signed = verifier.verify(
    c.maker,
    makerCertificateBytes(c.device, c.model),
    Buffer.from(c.sig, 'base64url'),
  )
  return signed ? { ok: true, certificate: c } : { ok: false, fault: 'bad_signature' }
}
