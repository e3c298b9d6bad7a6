/**
 * zod for every schema in rookery: its "mini" form, with English messages. Import it as
 * `import * as z from '../zod.ts'` and use members only, so that the bundle keeps only the zod it uses.
 *
 * zod's classic API builds each schema object with dozens of methods of its own (`.optional()`, `.min()`,
 * ...); zod/mini schemas are plain data checked by shared functions, so the same schemas take less of the
 * agent's idle memory (it holds its config, manifest, state and report schemas for good). Messages are the
 * same; zod/mini only leaves the choice of locale to us.
 */
import { config } from 'zod/mini'
import en from 'zod/v4/locales/en.js'

config(en())

export * from 'zod/mini'
