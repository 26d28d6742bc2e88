/**
 * Builds src/rewards/keccak-wasm.ts: a small WebAssembly module that computes Keccak-256 of short
 * inputs (at most 135 bytes, one block of the 136-byte rate) and, in loops that never leave
 * WebAssembly, the leaves and inner nodes of the cumulative reward tree. The text format is generated
 * here, Keccak-f[1600]'s rotation offsets and round constants derived from FIPS 202 (the
 * (t+1)(t+2)/2 offsets along π, and the rc LFSR), then assembled with wabt and embedded as base64,
 * so nothing is compiled or downloaded at install or run time.
 *
 * `npm run keccak:build` writes the file; `npm run keccak:check` (part of `npm test`) fails when the
 * committed file is not what this script builds.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import wabt from 'wabt'

const OUT = fileURLToPath(new URL('../src/rewards/keccak-wasm.ts', import.meta.url))

/** Memory layout (bytes): round constants, the padded block, scratch hashes, then the caller's data. */
export const LAYOUT = { rc: 0, block: 192, tmp: 328, pair: 360, data: 512 } as const

/** rc(t) of FIPS 202, Algorithm 5: the LFSR x^8 + x^6 + x^5 + x^4 + 1, bit 0 first. */
function rcBit(t: number): number {
  const steps = t % 255
  if (steps === 0) return 1
  let r = 0x80 // R = 10000000 with R[0] the most significant bit here
  for (let i = 0; i < steps; i++) {
    const r8 = r & 1
    r >>= 1
    if (r8) r ^= 0x80 | 0x08 | 0x04 | 0x02
  }
  return (r >> 7) & 1
}

function roundConstants(): bigint[] {
  return Array.from({ length: 24 }, (_, round) => {
    let rc = 0n
    for (let j = 0; j <= 6; j++) if (rcBit(j + 7 * round)) rc |= 1n << BigInt(2 ** j - 1)
    return rc
  })
}

/** ρ's rotation offset of lane x + 5y. */
function rotations(): number[] {
  const r = new Array<number>(25).fill(0)
  let x = 1
  let y = 0
  for (let t = 0; t < 24; t++) {
    r[x + 5 * y] = (((t + 1) * (t + 2)) / 2) % 64
    ;[x, y] = [y, (2 * x + 3 * y) % 5]
  }
  return r
}

function wat(): string {
  const rot = rotations()
  const rc = roundConstants()
  const round: string[] = []
  const op = (s: string) => round.push(`      ${s}`)
  // θ
  for (let x = 0; x < 5; x++) {
    op(
      `(local.set $c${x} (i64.xor (i64.xor (i64.xor (i64.xor (local.get $s${x}) (local.get $s${x + 5})) (local.get $s${x + 10})) (local.get $s${x + 15})) (local.get $s${x + 20})))`,
    )
  }
  for (let x = 0; x < 5; x++) {
    op(
      `(local.set $d${x} (i64.xor (local.get $c${(x + 4) % 5}) (i64.rotl (local.get $c${(x + 1) % 5}) (i64.const 1))))`,
    )
  }
  // θ applied; ρ and π: B[y, 2x + 3y] = rotl(A[x, y] ^ D[x], r[x, y])
  for (let y = 0; y < 5; y++) {
    for (let x = 0; x < 5; x++) {
      const i = x + 5 * y
      const to = y + 5 * ((2 * x + 3 * y) % 5)
      op(
        `(local.set $b${to} (i64.rotl (i64.xor (local.get $s${i}) (local.get $d${x})) (i64.const ${rot[i]})))`,
      )
    }
  }
  // χ, and ι on lane 0
  for (let y = 0; y < 5; y++) {
    for (let x = 0; x < 5; x++) {
      const i = x + 5 * y
      const b1 = ((x + 1) % 5) + 5 * y
      const b2 = ((x + 2) % 5) + 5 * y
      const chi = `(i64.xor (local.get $b${i}) (i64.and (i64.xor (local.get $b${b1}) (i64.const -1)) (local.get $b${b2})))`
      op(
        i === 0
          ? `(local.set $s0 (i64.xor ${chi} (i64.load (i32.add (i32.const ${LAYOUT.rc}) (i32.shl (local.get $r) (i32.const 3))))))`
          : `(local.set $s${i} ${chi})`,
      )
    }
  }
  const locals = [
    ...Array.from({ length: 25 }, (_, i) => `$s${i}`),
    ...Array.from({ length: 25 }, (_, i) => `$b${i}`),
    ...Array.from({ length: 5 }, (_, i) => `$c${i}`),
    ...Array.from({ length: 5 }, (_, i) => `$d${i}`),
  ]
  const absorb = Array.from(
    { length: 17 },
    (_, i) => `    (local.set $s${i} (i64.load offset=${LAYOUT.block + 8 * i} (i32.const 0)))`,
  )
  const squeeze = Array.from(
    { length: 4 },
    (_, i) => `    (i64.store offset=${8 * i} (local.get $out) (local.get $s${i}))`,
  )
  const rcData = rc
    .map((v) =>
      Array.from(
        { length: 8 },
        (_, b) => `\\${((v >> BigInt(8 * b)) & 0xffn).toString(16).padStart(2, '0')}`,
      ).join(''),
    )
    .join('')
  return `(module
  (memory (export "memory") 1)
  (data (i32.const ${LAYOUT.rc}) "${rcData}")

  ;; Keccak-256 of in[0, len) (len <= 135) into out[0, 32).
  (func $keccak (export "keccak256") (param $in i32) (param $len i32) (param $out i32)
    ${locals.map((l) => `(local ${l} i64)`).join(' ')}
    (local $r i32)
    (memory.fill (i32.const ${LAYOUT.block}) (i32.const 0) (i32.const 136))
    (memory.copy (i32.const ${LAYOUT.block}) (local.get $in) (local.get $len))
    (i32.store8 (i32.add (i32.const ${LAYOUT.block}) (local.get $len))
      (i32.xor (i32.load8_u (i32.add (i32.const ${LAYOUT.block}) (local.get $len))) (i32.const 0x01)))
    (i32.store8 (i32.const ${LAYOUT.block + 135})
      (i32.xor (i32.load8_u (i32.const ${LAYOUT.block + 135})) (i32.const 0x80)))
${absorb.join('\n')}
    (loop $round
${round.join('\n')}
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $round (i32.lt_u (local.get $r) (i32.const 24))))
${squeeze.join('\n')})

  ;; Leaves: for i < n, out[32i, 32i + 32) = keccak256(keccak256(enc[64i, 64i + 64))).
  (func (export "hashLeaves") (param $n i32) (param $enc i32) (param $out i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $keccak (i32.add (local.get $enc) (i32.shl (local.get $i) (i32.const 6))) (i32.const 64) (i32.const ${LAYOUT.tmp}))
        (call $keccak (i32.const ${LAYOUT.tmp}) (i32.const 32) (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 5))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))

  ;; Inner nodes of a tree laid out as an array of 32-byte hashes at $tree: for i from $from down to
  ;; $to, node i = keccak256(the sorted pair of nodes 2i + 1 and 2i + 2).
  (func (export "hashInner") (param $tree i32) (param $from i32) (param $to i32)
    (local $i i32) (local $left i32) (local $right i32) (local $k i32) (local $a i32) (local $b i32) (local $swap i32)
    (local.set $i (local.get $from))
    (block $done
      (loop $next
        (br_if $done (i32.lt_s (local.get $i) (local.get $to)))
        (local.set $left (i32.add (local.get $tree) (i32.shl (i32.add (i32.shl (local.get $i) (i32.const 1)) (i32.const 1)) (i32.const 5))))
        (local.set $right (i32.add (local.get $left) (i32.const 32)))
        ;; swap when left > right, comparing bytes in order
        (local.set $swap (i32.const 0))
        (local.set $k (i32.const 0))
        (block $decided
          (loop $byte
            (br_if $decided (i32.ge_u (local.get $k) (i32.const 32)))
            (local.set $a (i32.load8_u (i32.add (local.get $left) (local.get $k))))
            (local.set $b (i32.load8_u (i32.add (local.get $right) (local.get $k))))
            (if (i32.ne (local.get $a) (local.get $b))
              (then
                (local.set $swap (i32.gt_u (local.get $a) (local.get $b)))
                (br $decided)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $byte)))
        (if (local.get $swap)
          (then
            (memory.copy (i32.const ${LAYOUT.pair}) (local.get $right) (i32.const 32))
            (memory.copy (i32.const ${LAYOUT.pair + 32}) (local.get $left) (i32.const 32)))
          (else
            (memory.copy (i32.const ${LAYOUT.pair}) (local.get $left) (i32.const 64))))
        (call $keccak (i32.const ${LAYOUT.pair}) (i32.const 64) (i32.add (local.get $tree) (i32.shl (local.get $i) (i32.const 5))))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $next))))
)
`
}

async function build(): Promise<string> {
  const w = await wabt()
  const parsed = w.parseWat('keccak.wat', wat(), { bulk_memory: true })
  parsed.validate()
  const { buffer } = parsed.toBinary({})
  parsed.destroy()
  const base64 = Buffer.from(buffer).toString('base64')
  const lines = base64.match(/.{1,100}/g) ?? []
  return `// Built by scripts/build-keccak-wasm.ts (npm run keccak:build) from the text format it generates.
// Do not edit: rebuild.

/** The module's memory layout: round constants, the padded block, scratch hashes, then the caller's data. */
export const KECCAK_LAYOUT = ${JSON.stringify(LAYOUT).replace(/"/g, '').replace(/:/g, ': ').replace(/,/g, ', ')} as const

/** The WebAssembly module (${buffer.length} bytes): keccak256, hashLeaves, hashInner. */
export const KECCAK_WASM = Buffer.from(
  [
${lines.map((l) => `    '${l}',`).join('\n')}
  ].join(''),
  'base64',
)
`
}

const text = await build()
if (process.argv.includes('--check')) {
  if (readFileSync(OUT, 'utf8') !== text) {
    console.error(
      'src/rewards/keccak-wasm.ts is not what scripts/build-keccak-wasm.ts builds: run npm run keccak:build',
    )
    process.exit(1)
  }
} else {
  writeFileSync(OUT, text)
  console.log(`wrote ${OUT}`)
}
