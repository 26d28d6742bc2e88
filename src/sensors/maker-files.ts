import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { InvalidArgumentError } from '../core/errors.js'
import { readSecretFile, writeSecretFile } from '../core/secret-file.js'
import { createPeerVerifier, type PeerVerifier } from '../mesh/peer-key.js'
import { MAX_MAKER_CERTIFICATE_BYTES, type MakerCertificate, verifyMakerCertificate } from './maker.js'

/**
 * A maker's files: its Ed25519 key (libp2p protobuf, mode 0600, as a node's peer.key) and the
 * certificates it writes (JSON), read back by the node that runs the device. Errors are one line
 * naming the fix.
 */

/** Makes a maker key at `path` (never overwriting one). */
export async function createMakerKey(path: string): Promise<Ed25519PrivateKey> {
  if (existsSync(path))
    throw new InvalidArgumentError(`${path} already exists`, {
      hint: 'Pass another --key FILE (a maker key is never overwritten)',
    })
  const key = await generateKeyPair('Ed25519')
  writeSecretFile(path, privateKeyToProtobuf(key))
  return key
}

/** Reads the maker key at `path`. */
export function readMakerKey(path: string): Ed25519PrivateKey {
  if (!existsSync(path))
    throw new InvalidArgumentError(`maker key ${path} does not exist`, {
      hint: 'Make one with `meshwork maker init --key FILE`, or pass --key FILE',
    })
  let key: ReturnType<typeof privateKeyFromProtobuf>
  try {
    key = privateKeyFromProtobuf(readSecretFile(path))
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err
    throw new InvalidArgumentError(`${path} is not a maker key`, {
      hint: 'Pass the file `meshwork maker init` wrote',
      cause: err,
    })
  }
  if (key.type !== 'Ed25519')
    throw new InvalidArgumentError(`${path} is not an Ed25519 key`, {
      hint: 'Pass the file `meshwork maker init` wrote',
    })
  return key
}

/** Writes a certificate as JSON (one object and a newline). */
export function writeMakerCertificate(path: string, certificate: MakerCertificate): void {
  writeFileSync(path, `${JSON.stringify(certificate, null, 2)}\n`)
}

/**
 * Reads and checks the maker's certificate at `path`: its size, JSON, schema and signature, and,
 * with `device`, that it certifies that device key. `what` names it in errors (e.g. `sensor porch's
 * certificate`).
 */
export function readMakerCertificate(
  path: string,
  options: { device?: string; what?: string; verifier?: PeerVerifier } = {},
): MakerCertificate {
  const what = options.what ?? 'certificate'
  const fix = 'Use the file `meshwork maker certify` wrote for this device'
  if (!existsSync(path)) throw new InvalidArgumentError(`${what} ${path} does not exist`, { hint: fix })
  if (statSync(path).size > MAX_MAKER_CERTIFICATE_BYTES)
    throw new InvalidArgumentError(`${what} ${path} is larger than ${MAX_MAKER_CERTIFICATE_BYTES} bytes`, {
      hint: fix,
    })
  let json: unknown
  try {
    json = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new InvalidArgumentError(`${what} ${path} is not JSON`, { hint: fix, cause: err })
  }
  const checked = verifyMakerCertificate(json, options.verifier ?? createPeerVerifier({ cacheSize: 4 }))
  if (!checked.ok)
    throw new InvalidArgumentError(
      checked.fault === 'malformed'
        ? `${what} ${path} is not a maker certificate (maker, device, model, sig)`
        : `${what} ${path} does not carry its maker's signature`,
      { hint: fix },
    )
  const c = checked.certificate
  if (options.device !== undefined && c.device !== options.device)
    throw new InvalidArgumentError(`${what} ${path} certifies device ${c.device}, not ${options.device}`, {
      hint: `Ask the maker to certify ${options.device} (\`meshwork maker certify --device ${options.device}\`)`,
      details: { path, certified: c.device, device: options.device },
    })
  return c
}
