/**
 * mulberry32: a small, fast seeded generator of 32-bit words, for synthetic data in tests and
 * benchmarks (not for keys or nonces). The same seed gives the same sequence everywhere.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}
