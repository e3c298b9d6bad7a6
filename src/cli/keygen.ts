import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Command } from 'commander'
import { UsageError } from '../errors.ts'
import { generateSigningKey, keyId, parsePublicKey } from '../release/sign.ts'

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('make an Ed25519 key pair for signing releases (publish --sign) and verifying them (trusted_keys)')
    .option('--out <dir>', 'directory for the key files', '.')
    .option('--name <name>', 'file name stem: <name>.key (private) and <name>.pub', 'rookery')
    .action(async (flags: { out: string; name: string }) => {
      const { privatePem, publicKey } = generateSigningKey()
      const keyFile = join(flags.out, `${flags.name}.key`)
      const pubFile = join(flags.out, `${flags.name}.pub`)
      try {
        // 'wx': never overwrite a key that may already sign releases.
        await writeFile(keyFile, privatePem, { mode: 0o600, flag: 'wx' })
        await writeFile(pubFile, `${publicKey}\n`, { mode: 0o644, flag: 'wx' })
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        throw new UsageError(`cannot write ${code === 'EEXIST' ? `${keyFile} or ${pubFile}: already exists` : `key files in ${flags.out}: ${code}`}`, {
          hint: code === 'EEXIST' ? 'choose another --name or --out; an existing key is never overwritten' : undefined,
        })
      }
      process.stdout.write(`private key: ${keyFile} (keep it secret; pass it to publish --sign)\n`)
      process.stdout.write(`public key ${keyId(parsePublicKey(publicKey)!)}: ${pubFile}\n`)
      process.stdout.write(`add to each agent's config:\ntrusted_keys:\n  - "${publicKey}"\n`)
    })
}
