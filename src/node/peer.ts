/**
 * Starting the libp2p node of a service, with one error for when it cannot
 * (a port taken, a bad listen address): a ListenError, with a hint naming
 * both transports' ports for a node that listens on chosen ones. A client
 * node (requester, pull, peer search) then waits for its first peer.
 */
import type { PrivateKey } from '@libp2p/interface'
import type { KilnNode, NodeConfig, NodeFlags } from '../p2p/index.ts'
import { ListenError, NoPeerReachableError } from './errors.ts'

/** `ephemeral`: a client node on free ports (see nodeInitFromOptions), for which a port hint would mislead. */
export async function startPeer (config: NodeConfig, flags: NodeFlags, privateKey: PrivateKey, ephemeral: boolean): Promise<KilnNode> {
  const { createKilnNode, nodeInitFromOptions } = await import('../p2p/index.ts')
  try {
    return await createKilnNode(await nodeInitFromOptions(config, flags, privateKey, ephemeral))
  } catch (err) {
    throw new ListenError(`cannot start the node: ${(err as Error).message}`, {
      cause: err,
      ...(ephemeral ? {} : { hint: 'is another kiln using the port? pick free ones with --listen /ip4/0.0.0.0/tcp/PORT,/ip4/0.0.0.0/tcp/PORT2/tls' })
    })
  }
}

/** Resolves once the node has a peer; NoPeerReachableError (with `hint`, if given) after `timeoutMs`. */
export async function untilFirstPeer (node: KilnNode, timeoutMs: number, hint?: string): Promise<void> {
  const { waitForPeers } = await import('../p2p/index.ts')
  if (!(await waitForPeers(node, timeoutMs))) throw new NoPeerReachableError(hint !== undefined ? { hint } : {})
}
