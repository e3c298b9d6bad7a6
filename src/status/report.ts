import * as z from '../zod.ts'

/**
 * What an agent tells the server after each phase change (and as a heartbeat): small, so a fleet can
 * report often, and never required for a deploy to proceed.
 */
export const PHASES = ['idle', 'downloading', 'verified', 'extracted', 'hook_running', 'hook_failed', 'activated', 'failed'] as const
export type Phase = (typeof PHASES)[number]

export const reportSchema = z.strictObject({
  host: z.string().check(z.minLength(1), z.maxLength(255)),
  groups: z._default(z.array(z.string().check(z.maxLength(64))).check(z.maxLength(32)), []),
  app: z.string().check(z.minLength(1), z.maxLength(128)),
  /** The tag this phase is about (being installed, or running). */
  tag: z.nullable(z.string().check(z.maxLength(128))),
  phase: z.enum(PHASES),
  /** What `current` points at on the host now. */
  current: z.nullable(z.string().check(z.maxLength(128))),
  progress: z.optional(z.object({ done: z.number().check(z.nonnegative()), total: z.number().check(z.nonnegative()) })),
  error: z.optional(z.string().check(z.maxLength(2000))),
  hook_tail: z.optional(z.array(z.string().check(z.maxLength(500))).check(z.maxLength(20))),
  timings: z.optional(z.record(z.string(), z.number())),
})

export type Report = z.output<typeof reportSchema>
export type ReportInput = z.input<typeof reportSchema>

/** Reports larger than this are refused by the server. */
export const MAX_REPORT_BYTES = 16 * 1024
