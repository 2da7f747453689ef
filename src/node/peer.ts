/**
 * Starting the libp2p node of a service, with one error for when it cannot
 * (a port taken, a bad listen address, a relayVia relay that is down): a
 * ListenError, with a hint naming both transports' ports for a node that
 * listens on chosen ones, and the relays for a node that has some. A client
 * node (requester, pull, peer search) then waits for its first peer.
 */
import type { PrivateKey } from '@libp2p/interface'
import type { KilnNode, NodeConfig, NodeFlags } from '../p2p/index.ts'
import { ListenError, NoPeerReachableError } from './errors.ts'
import { isErrorOf } from '../util/error-class.ts'

/** `ephemeral`: a client node on free ports (see nodeInitFromOptions), for which a port hint would mislead. */
export async function startPeer (config: NodeConfig, flags: NodeFlags, privateKey: PrivateKey, ephemeral: boolean): Promise<KilnNode> {
  const { createKilnNode, nodeInitFromOptions, UnsupportedListenAddressesErrorName } = await import('../p2p/index.ts')
  const init = await nodeInitFromOptions(config, flags, privateKey, ephemeral)
  try {
    return await createKilnNode(init)
  } catch (err) {
    // libp2p reserves on each relayVia relay while it starts, and fails like a taken port when one is down.
    const relayDown = (init.relayVia ?? []).length > 0 && isErrorOf(err, UnsupportedListenAddressesErrorName)
    const hints = [...(relayDown ? [RELAY_DOWN_HINT] : []), ...(ephemeral ? [] : [PORT_HINT])]
    throw new ListenError(`cannot start the node: ${(err as Error).message}`, {
      cause: err,
      ...(hints.length > 0 ? { hint: hints.join('; or ') } : {})
    })
  }
}

const RELAY_DOWN_HINT = 'is a relay of --relay-via (node.relayVia) down or unreachable? start the login-node agent (kiln agent --relay) first; kiln doctor checks each relay'
const PORT_HINT = 'is another kiln using the port? pick free ones with --listen /ip4/0.0.0.0/tcp/PORT,/ip4/0.0.0.0/tcp/PORT2/tls'

/** Resolves once the node has a peer; NoPeerReachableError (with `hint`, if given) after `timeoutMs`. */
export async function untilFirstPeer (node: KilnNode, timeoutMs: number, hint?: string): Promise<void> {
  const { waitForPeers } = await import('../p2p/index.ts')
  if (!(await waitForPeers(node, timeoutMs))) throw new NoPeerReachableError(hint !== undefined ? { hint } : {})
}
