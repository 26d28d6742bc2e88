import { resolve } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Command } from 'commander'
import { InvalidArgumentError } from '../../core/errors.js'
import { createPeerSigner } from '../../mesh/peer-key.js'
import { signMakerCertificate } from '../../sensors/maker.js'
import { createMakerKey, readMakerKey, writeMakerCertificate } from '../../sensors/maker-files.js'
import { globalOptions } from '../context.js'
import { createOutput, toJson } from '../output.js'

/** The maker key file unless --key says otherwise. */
export const DEFAULT_MAKER_KEY = 'maker.key'

/**
 * A device key's peer id: an Ed25519 peer id (the only kind that signs readings), in its base58
 * spelling (the one the node's device signer compares with), however it was written.
 */
function parseDevice(value: string): string {
  let peerId: ReturnType<typeof peerIdFromString> | undefined
  try {
    peerId = peerIdFromString(value)
  } catch {
    peerId = undefined
  }
  if (peerId?.type !== 'Ed25519')
    throw new InvalidArgumentError(
      `--device ${JSON.stringify(value.slice(0, 140))} is not an Ed25519 peer id`,
      {
        hint: 'Pass the device key that `meshwork node sensors` shows (12D3KooW…)',
      },
    )
  return peerId.toString()
}

/**
 * `meshwork maker init` and `meshwork maker certify`: a hardware maker's key, and its certificates
 * of device keys (docs/protocol.md, "Maker certificate"). Governance approves a maker by its peer id;
 * only sensors whose device key an approved maker certified are paid.
 */
export function makerCommands(program: Command): Command {
  const maker = program
    .command('maker')
    .description("a hardware maker: its key, and certificates of its devices' keys")
  maker
    .command('init')
    .description('make a maker key (Ed25519) and print its peer id, which governance approves')
    .option('--key <file>', 'where to write the key (never overwritten)', DEFAULT_MAKER_KEY)
    .action(async (opts: { key: string }, cmd: Command) => {
      const out = createOutput(globalOptions(cmd))
      const path = resolve(opts.key)
      const key = await createMakerKey(path)
      const peerId = createPeerSigner(key).peerId
      out.json({ key: path, maker: peerId })
      out.info(`Created maker key ${path}`)
      out.info(`  maker  ${peerId}`)
      out.info(`  next: have governance approve it: meshwork gov propose --approve-maker ${peerId}`)
      out.info(
        `        then certify each device key: meshwork maker certify --key ${opts.key} --device PEERID --model MODEL -o FILE`,
      )
    })
  maker
    .command('certify')
    .description("certify a device key as one of this maker's models (a JSON certificate for the node)")
    .requiredOption('--device <peerId>', 'the device key, as `meshwork node sensors` shows it')
    .requiredOption('--model <model>', 'the hardware model, 1 to 64 printable ASCII characters')
    .option('--key <file>', 'the maker key', DEFAULT_MAKER_KEY)
    .option('-o, --output <file>', 'write the certificate here (default: stdout)')
    .action(async (opts: { device: string; model: string; key: string; output?: string }, cmd: Command) => {
      const out = createOutput(globalOptions(cmd))
      const device = parseDevice(opts.device)
      const signer = createPeerSigner(readMakerKey(opts.key))
      const certificate = signMakerCertificate(signer, device, opts.model)
      if (opts.output === undefined) {
        // The certificate itself is the result, for people and scripts alike.
        process.stdout.write(`${toJson(certificate, 2)}\n`)
        return
      }
      const path = resolve(opts.output)
      writeMakerCertificate(path, certificate)
      out.json({ file: path, certificate })
      out.info(`Wrote ${path}: ${device} certified as "${certificate.model}" by maker ${signer.peerId}`)
      out.info(
        `  next: the node running this device names it in its config: [sensors.certificates] NAME = "${path}"`,
      )
    })
  return maker
}
