import * as z from 'zod'

/**
 * What an agent tells the server after each phase change (and as a heartbeat): small, so a fleet can
 * report often, and never required for a deploy to proceed.
 */
export const PHASES = ['idle', 'downloading', 'verified', 'extracted', 'hook_running', 'hook_failed', 'activated', 'failed'] as const
export type Phase = (typeof PHASES)[number]

export const reportSchema = z
  .object({
    host: z.string().min(1).max(255),
    groups: z.array(z.string().max(64)).max(32).default([]),
    app: z.string().min(1).max(128),
    /** The tag this phase is about (being installed, or running). */
    tag: z.string().max(128).nullable(),
    phase: z.enum(PHASES),
    /** What `current` points at on the host now. */
    current: z.string().max(128).nullable(),
    progress: z.object({ done: z.number().nonnegative(), total: z.number().nonnegative() }).optional(),
    error: z.string().max(2000).optional(),
    hook_tail: z.array(z.string().max(500)).max(20).optional(),
    timings: z.record(z.string(), z.number()).optional(),
  })
  .strict()

export type Report = z.output<typeof reportSchema>
export type ReportInput = z.input<typeof reportSchema>

/** Reports larger than this are refused by the server. */
export const MAX_REPORT_BYTES = 16 * 1024
