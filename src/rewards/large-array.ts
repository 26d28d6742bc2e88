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

/** The scratch buffers, by slot: shared memory kept for the process and reused (see `scratchArray`). */
const scratch: (ArrayBuffer | SharedArrayBuffer | undefined)[] = []

/**
 * A typed array of `length` elements on scratch memory `slot` (0 to 7): the same memory each time,
 * grown when too small, its contents whatever the last user left. For arrays a synchronous function
 * needs only while it runs (and never two at once in one slot): settling an epoch makes several
 * such arrays of a few MB each, which would otherwise all stay resident until the next full
 * collection frees them (`largeArray`).
 */
export function scratchArray<T>(Type: LargeArrayType<T>, length: number, slot: number): T {
  if (!Number.isInteger(slot) || slot < 0 || slot > 7) throw new RangeError(`no scratch slot ${slot}`)
  const bytes = length * Type.BYTES_PER_ELEMENT
  const held = scratch[slot]
  if (held !== undefined && held.byteLength >= bytes)
    return new (Type as unknown as ScratchType<T>)(held, 0, length)
  const Buffer = typeof SharedArrayBuffer === 'function' ? SharedArrayBuffer : ArrayBuffer
  const buffer = new Buffer(bytes)
  scratch[slot] = buffer
  return new (Type as unknown as ScratchType<T>)(buffer, 0, length)
}

type ScratchType<T> = new (buffer: ArrayBuffer | SharedArrayBuffer, offset: number, length: number) => T
