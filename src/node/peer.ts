/**
 * Starting the libp2p node of a service, with one error for when it cannot
 * (a port taken, a bad listen address): a ListenError, with a hint naming
 * both transports' ports for a node that listens on chosen ones.
 */
import type { PrivateKey } from '@libp2p/interface'
import type { KilnNode, NodeConfig, NodeFlags } from '../p2p/index.ts'
import { ListenError } from './errors.ts'

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
