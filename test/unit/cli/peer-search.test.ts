import { describe, it, expect } from 'vitest'
import { peerSearchSources, peerSearchText, sayingPeerSearch } from '../../../src/cli/peer-search.ts'

describe('peer search', () => {
  it('names the sources in use, flags over the config', () => {
    const node = { mdns: true, bootstrap: ['/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWa'] }
    expect(peerSearchText(peerSearchSources({}, node))).toBe('looking for peers (mDNS on the local network, bootstrap list of 1)...')
    expect(peerSearchText(peerSearchSources({ mdns: false, bootstrap: '/ip4/a/tcp/1,/ip4/b/tcp/2' }, node))).toBe('looking for peers (bootstrap list of 2)...')
    expect(peerSearchText(peerSearchSources({ mdns: false }, { mdns: true, bootstrap: [] }))).toMatch(/no mDNS and no bootstrap list/)
  })

  it('says so once when the search takes long, nothing when it is quick', async () => {
    const notes: string[] = []
    const out = { note: (t: string) => { notes.push(t) } }
    const sources = { mdns: true, bootstrap: [] }
    expect(await sayingPeerSearch(out, sources, Promise.resolve(1), 50)).toBe(1)
    await new Promise(resolve => setTimeout(resolve, 80))
    expect(notes).toEqual([])
    const slow = new Promise(resolve => setTimeout(() => { resolve(2) }, 120))
    expect(await sayingPeerSearch(out, sources, slow, 20)).toBe(2)
    expect(notes).toEqual(['looking for peers (mDNS on the local network)...'])
    await expect(sayingPeerSearch(out, sources, Promise.reject(new Error('no peer reachable')), 20)).rejects.toThrow('no peer reachable')
  })
})
