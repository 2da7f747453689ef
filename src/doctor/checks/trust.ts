/** Trust roots: without one, an agent builds for nobody and a requester accepts no result. */
import type { Check } from '../types.ts'

export const checkTrust: Check = async ({ system }) => {
  try {
    const { roots, peers } = await system.trustCounts()
    if (roots + peers === 0) {
      return [{ id: 'trust', title: 'trust roots', status: 'warn', detail: 'no trust roots or trusted peers: this node trusts no one but itself', fix: 'kiln trust add-root ROOT.pub.yaml (your institution\'s root), or trust.roots in kiln.yaml; see docs/federation.md' }]
    }
    return [{ id: 'trust', title: 'trust roots', status: 'ok', detail: `${roots} root(s), ${peers} single peer(s)` }]
  } catch (err) {
    return [{ id: 'trust', title: 'trust roots', status: 'problem', detail: (err as Error).message, fix: 'fix or remove the entry named; kiln trust ls shows the policy' }]
  }
}
