/** What a downloader receipts one node for at the end of a download session. */
export interface ReceiptOwed {
  /** Bytes of pieces the node served itself. */
  served: number
  /** Bytes of pieces (from any holder) that came through the node as a circuit relay. */
  relayed: number
}

/**
 * Sums, per node, the bytes a download owes a receipt for: pieces each holder served and pieces each
 * relay carried. A node that served changed bytes (`faulty`) is owed nothing, not even for what it
 * relayed; a relay is owed for pieces of a faulty holder, since it cannot change what it carries
 * (Noise encrypts end to end). Nodes owed 0 bytes are left out.
 *
 * @example
 * ```ts
 * byteReceiptsOwed(new Map([['holder', 10]]), new Map([['relay', 10]]), new Set())
 * // Map { 'holder' => { served: 10, relayed: 0 }, 'relay' => { served: 0, relayed: 10 } }
 * ```
 */
export function byteReceiptsOwed(
  served: ReadonlyMap<string, number>,
  relayed: ReadonlyMap<string, number>,
  faulty: ReadonlySet<string>,
): Map<string, ReceiptOwed> {
  const owed = new Map<string, ReceiptOwed>()
  const add = (peer: string, kind: keyof ReceiptOwed, bytes: number) => {
    if (faulty.has(peer) || !(bytes > 0)) return
    const o = owed.get(peer) ?? { served: 0, relayed: 0 }
    o[kind] += bytes
    owed.set(peer, o)
  }
  for (const [peer, bytes] of served) add(peer, 'served', bytes)
  for (const [peer, bytes] of relayed) add(peer, 'relayed', bytes)
  return owed
}
