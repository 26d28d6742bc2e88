import { bytesToHex } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'

/** The well-known development mnemonic (the one Hardhat and Anvil use). Never hold real value with it. */
export const DEV_MNEMONIC = 'test test test test test test test test test test test junk'

/** A funded account of the embedded dev chain. */
export interface DevAccount {
  address: `0x${string}`
  privateKey: `0x${string}`
}

/**
 * Derives the first `count` accounts of {@link DEV_MNEMONIC} (BIP-44 path m/44'/60'/0'/0/i).
 * Account 0 deploys and is the devnet treasury.
 */
export function devAccounts(count: number): DevAccount[] {
  const accounts: DevAccount[] = []
  for (let i = 0; i < count; i++) {
    const hd = mnemonicToAccount(DEV_MNEMONIC, { addressIndex: i })
    const key = hd.getHdKey().privateKey
    if (!key) throw new Error(`cannot derive dev account ${i}`)
    accounts.push({ address: hd.address, privateKey: bytesToHex(key) })
  }
  return accounts
}
