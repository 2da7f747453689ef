/**
 * `--listen` and `--bootstrap` multiaddrs checked before a node starts, so
 * that a malformed address is a usage error that names the flag and the
 * value ("--listen: "garbage" is not a multiaddr"), not a failed start
 * that hints at a port in use. A *multiaddr* is libp2p's self-describing
 * address, e.g. `/ip4/0.0.0.0/tcp/4001` or, to dial a peer,
 * `/ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...`.
 */
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'

/** The comma-separated multiaddrs of each given flag; throws a usage CliError on the first that does not parse. */
export async function checkMultiaddrFlags (flags: { listen?: string | string[], bootstrap?: string, relayVia?: string }): Promise<void> {
  // Loaded here: commands import this file when they register, and `kiln --help` should load no libp2p code.
  const { multiaddr } = await import('@multiformats/multiaddr')
  const given: Array<[string, string | string[] | undefined]> = [['--listen', flags.listen], ['--bootstrap', flags.bootstrap], ['--relay-via', flags.relayVia]]
  for (const [flag, value] of given) {
    const items = (Array.isArray(value) ? value : (value ?? '').split(',')).map(s => s.trim()).filter(s => s !== '')
    for (const item of items) {
      let parsed: ReturnType<typeof multiaddr>
      try {
        parsed = multiaddr(item)
      } catch (err) {
        throw new CliError(`${flag}: ${JSON.stringify(item)} is not a multiaddr (${(err as Error).message})`, {
          exitCode: EXIT.usage,
          cause: err,
          hint: flag === '--listen' ? 'for example --listen /ip4/0.0.0.0/tcp/4001' : `for example ${flag} /ip4/10.1.0.5/tcp/4001/p2p/12D3KooW...`
        })
      }
      // A reservation is made with one peer: the relay's address must say which.
      if (flag === '--relay-via' && parsed.getComponents().at(-1)?.name !== 'p2p') {
        throw new CliError(`--relay-via: ${JSON.stringify(item)} names no relay peer: it must end in /p2p/<peer id>`, {
          exitCode: EXIT.usage,
          hint: 'the login-node agent prints its addresses as "listening: /ip4/.../tcp/4001/p2p/12D3KooW..."; kiln key show on it prints the peer id'
        })
      }
    }
  }
}
