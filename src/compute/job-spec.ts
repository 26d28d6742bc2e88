import { isValidCell } from 'h3-js'
import { z } from 'zod'
import { ComputeError } from './errors.js'

/**
 * A job spec (version 1): what a builder asks the market to run, with its limits, deadline, price
 * cap and where it may run. Validated before anything else happens (no bid, no payment).
 */

/** What a job can be: a WASM module, a JS function run in QuickJS, or an ONNX model (inference). */
export const JOB_KINDS = ['wasm', 'js', 'onnx'] as const
export type JobKind = (typeof JOB_KINDS)[number]

/** Largest code or input carried inline (base64); bigger ones go by content hash. */
export const MAX_INLINE_BYTES = 512 * 1024
/** Hard ceilings on what a job may ask for. */
export const JOB_LIMIT_CEILINGS = { timeMs: 60_000, memoryMb: 512, outputBytes: 4 * 1024 * 1024 } as const
/** Defaults for limits a spec leaves out. */
export const JOB_LIMIT_DEFAULTS = { timeMs: 2_000, memoryMb: 64, outputBytes: 64 * 1024 } as const

const base64 = z
  .string()
  .max(Math.ceil(MAX_INLINE_BYTES / 3) * 4)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64')
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, '64 hex digits (sha-256)')
/** Inline bytes, or the sha-256 of bytes fetched by content hash. */
const blob = z.union([z.object({ inline: base64 }).strict(), z.object({ sha256 }).strict()])

const placement = z
  .object({
    /** Near an H3 cell, or a point with a radius. */
    near: z
      .union([
        z.object({ cell: z.string().refine(isValidCell, 'not a valid H3 cell') }).strict(),
        z
          .object({
            lat: z.number().min(-90).max(90),
            lon: z.number().min(-180).max(180),
            radiusKm: z.number().positive().max(20_000),
          })
          .strict(),
      ])
      .optional(),
    maxRttMs: z.number().int().positive().max(10_000).optional(),
    /** Only the builder's own nodes: for private data. */
    localOnly: z.boolean().default(false),
    tier: z.enum(['edge', 'cloud', 'any']).default('any'),
  })
  .strict()

export const jobSpecSchema = z
  .object({
    v: z.literal(1),
    /** 32 hex characters, unique per job (it also seeds a JS job's Math.random). */
    id: z.string().regex(/^[0-9a-f]{32}$/, '32 hex digits'),
    kind: z.enum(JOB_KINDS),
    /** WASM: the module. JS: the UTF-8 source of a function `(input) => output`. ONNX: the model. */
    code: blob,
    /** WASM: raw bytes. JS: UTF-8 JSON, the function's argument. ONNX: UTF-8 JSON of the feeds. */
    input: blob,
    limits: z
      .object({
        timeMs: z.number().int().min(1).max(JOB_LIMIT_CEILINGS.timeMs).default(JOB_LIMIT_DEFAULTS.timeMs),
        memoryMb: z
          .number()
          .int()
          .min(1)
          .max(JOB_LIMIT_CEILINGS.memoryMb)
          .default(JOB_LIMIT_DEFAULTS.memoryMb),
        outputBytes: z
          .number()
          .int()
          .min(1)
          .max(JOB_LIMIT_CEILINGS.outputBytes)
          .default(JOB_LIMIT_DEFAULTS.outputBytes),
      })
      .strict()
      .default(JOB_LIMIT_DEFAULTS),
    /** Unix ms after which the result is worthless. */
    deadline: z.number().int().positive(),
    /** The most the builder pays, in MESH base units (decimal). */
    maxPrice: z.string().regex(/^(0|[1-9][0-9]{0,30})$/, 'a decimal amount of base units'),
    placement: placement.default({ localOnly: false, tier: 'any' }),
  })
  .strict()

export type JobSpec = z.infer<typeof jobSpecSchema>
export type JobLimits = JobSpec['limits']

/** Largest job spec document accepted. */
export const MAX_JOB_SPEC_BYTES = 1024 * 1024

/**
 * Parses and validates a job spec (a JSON value). Fails with `JOB_SPEC_INVALID` naming the first bad
 * field, so the builder learns what to fix before any bid or payment.
 */
export function parseJobSpec(value: unknown): JobSpec {
  const parsed = jobSpecSchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const at = issue?.path.join('.') || '(root)'
    throw new ComputeError('JOB_SPEC_INVALID', `job spec ${at}: ${issue?.message ?? 'invalid'}`, {
      hint: 'Fix the field the message names (docs/protocol.md, "Job spec")',
      details: { path: at, issues: parsed.error.issues.slice(0, 5).map((i) => i.message) },
    })
  }
  return parsed.data
}
