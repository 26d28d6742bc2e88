/** The typed arrays settlement keeps per node, operator or leaf. */
type LargeArrayType<T> = {
  new (buffer: ArrayBuffer | SharedArrayBuffer): T
  readonly BYTES_PER_ELEMENT: number
}

/** From this many bytes an array is allocated on a `SharedArrayBuffer`. */
export const LARGE_ARRAY_BYTES = 1 << 20

/**
 * A zeroed typed array of `length` elements; from 1 MiB, on a `SharedArrayBuffer` (where the
 * runtime has one).
 *
 * V8 counts the memory of `ArrayBuffer`s, not of `SharedArrayBuffer`s, as external memory, and
 * starts a full collection each time it grows by 64 MB. Settling a million operators allocates a
 * few hundred MB of tables that all stay live until the settlement ends, next to a decoded bundle
 * of millions of objects: each such collection frees little and takes over half a second to mark
 * the bundle. The memory is the same either way; the cost is that a shared buffer, once
 * unreachable, is freed at the next full collection rather than hastening one. The array is
 * simply not shared with anyone.
 *
 * @example
 * const scores = largeArray(Int32Array, nodes.length)
 */
export function largeArray<T>(Type: LargeArrayType<T>, length: number): T {
  const bytes = length * Type.BYTES_PER_ELEMENT
  const Buffer =
    bytes >= LARGE_ARRAY_BYTES && typeof SharedArrayBuffer === 'function' ? SharedArrayBuffer : ArrayBuffer
  return new Type(new Buffer(bytes))
}
