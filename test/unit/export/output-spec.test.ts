import { describe, expect, it } from 'vitest'
import { OutputSpecInvalidError, formatOutputSpec, layerCompressionOf, parseOutputSpec } from '../../../src/export/index.ts'

function badKeys (text: string): string[] {
  try {
    parseOutputSpec(text)
  } catch (err) {
    expect((err as Error).name).toBe(OutputSpecInvalidError.name)
    return (err as OutputSpecInvalidError).keys
  }
  throw new Error(`${text} parsed`)
}

describe('parseOutputSpec', () => {
  it('reads every type in buildx key=value syntax', () => {
    expect(parseOutputSpec('type=oci-layout,dest=./out,name=v1')).toEqual({ type: 'oci-layout', dest: './out', names: ['v1'] })
    expect(parseOutputSpec('type=oci-archive,dest=img.tar')).toEqual({ type: 'oci-archive', dest: 'img.tar', names: [] })
    expect(parseOutputSpec('type=docker-archive,dest=img.tar,name=hpc/app:1,platform=linux/arm64'))
      .toEqual({ type: 'docker-archive', dest: 'img.tar', names: ['hpc/app:1'], platform: 'linux/arm64' })
    expect(parseOutputSpec('type=registry,name=127.0.0.1:5000/hpc/app:1,insecure=true'))
      .toEqual({ type: 'registry', names: ['127.0.0.1:5000/hpc/app:1'], insecure: true })
    expect(parseOutputSpec('type=static,dest=/srv/site,name=hpc/app:1')).toEqual({ type: 'static', dest: '/srv/site', names: ['hpc/app:1'], sif: false })
    expect(parseOutputSpec('type=s3,bucket=b,prefix=/reg/,region=eu-west-1,endpoint_url=http://127.0.0.1:9000,use_path_style=true,name=a:1')).toEqual({
      type: 's3', bucket: 'b', prefix: 'reg', region: 'eu-west-1', endpointUrl: 'http://127.0.0.1:9000', usePathStyle: true, names: ['a:1']
    })
    expect(parseOutputSpec('type=exec,cmd=/usr/local/bin/up,arg=--fast,arg=x y,timeout=30,opt.bucket=z'))
      .toEqual({ type: 'exec', cmd: '/usr/local/bin/up', args: ['--fast', 'x y'], timeoutSeconds: 30, options: { bucket: 'z' } })
    expect(parseOutputSpec('type=kiln')).toEqual({ type: 'kiln' })
    expect(parseOutputSpec('type=sif,dest=app.sif,platform=linux/arm64')).toEqual({ type: 'sif', dest: 'app.sif', platform: 'linux/arm64' })
  })

  it('reads sif:FILE, refuses a sif output with no dest or a name, and writes it back', () => {
    expect(parseOutputSpec('sif:out/app.sif')).toEqual({ type: 'sif', dest: 'out/app.sif' })
    expect(badKeys('type=sif')).toEqual(['dest'])
    expect(badKeys('type=sif,dest=a.sif,name=x:1')).toEqual(['name'])
    expect(() => parseOutputSpec('sif:')).toThrow(OutputSpecInvalidError)
    expect(formatOutputSpec(parseOutputSpec('type=sif,dest=a.sif,platform=linux/amd64'))).toBe('type=sif,dest=a.sif,platform=linux/amd64')
  })

  it('accepts the buildx type names', () => {
    expect(parseOutputSpec('type=oci,dest=a.tar').type).toBe('oci-archive')
    expect(parseOutputSpec('type=oci,dest=dir,tar=false').type).toBe('oci-layout')
    expect(parseOutputSpec('type=docker,dest=a.tar').type).toBe('docker-archive')
    expect(parseOutputSpec('type=image,name=localhost:5000/a:b,push=true')).toEqual({ type: 'registry', names: ['localhost:5000/a:b'], insecure: false })
    expect(badKeys('type=image,name=localhost:5000/a:b')).toEqual(['push'])
  })

  it('honours double quotes around a field or a value, and "" inside them', () => {
    expect(parseOutputSpec('type=static,dest=/srv/site,"name=a:1,a:2"')).toMatchObject({ names: ['a:1', 'a:2'] })
    expect(parseOutputSpec('type=static,dest="/srv/my,site",name=a:1')).toMatchObject({ dest: '/srv/my,site' })
    expect(parseOutputSpec('type=exec,cmd=sh,"arg=say ""hi"", ok"')).toMatchObject({ args: ['say "hi", ok'] })
    expect(parseOutputSpec('type=static,dest=d,name=a:1,name=b:2')).toMatchObject({ names: ['a:1', 'b:2'] })
    expect(() => parseOutputSpec('type=static,dest="unterminated')).toThrow(/unterminated/)
  })

  it('reads the short forms kiln build documents', () => {
    expect(parseOutputSpec('oci-layout:./out')).toEqual({ type: 'oci-layout', dest: './out', names: [] })
    expect(parseOutputSpec('oci:./out:v2')).toEqual({ type: 'oci-layout', dest: './out', names: ['v2'] })
    expect(parseOutputSpec('oci-archive:img.tar:v1')).toEqual({ type: 'oci-archive', dest: 'img.tar', names: ['v1'] })
    expect(parseOutputSpec('docker-archive:img.tar')).toEqual({ type: 'docker-archive', dest: 'img.tar', names: [] })
    expect(parseOutputSpec('docker-archive:img.tar:hpc/app:1')).toEqual({ type: 'docker-archive', dest: 'img.tar', names: ['hpc/app:1'] })
    expect(parseOutputSpec('docker://localhost:5000/hpc/app:1')).toEqual({ type: 'registry', names: ['localhost:5000/hpc/app:1'], insecure: false })
    expect(parseOutputSpec('./some/dir')).toEqual({ type: 'local', dest: './some/dir' })
    expect(() => parseOutputSpec('docker-archive:img.tar:@1')).toThrow(/@INDEX/)
  })

  it('names every bad key', () => {
    expect(badKeys('type=oci-layout,dest=x,colour=red,size=9')).toEqual(['colour', 'size'])
    expect(badKeys('type=oci-layout')).toEqual(['dest'])
    expect(badKeys('type=registry')).toEqual(['name'])
    expect(badKeys('type=registry,name=UPPER/Case:1')).toEqual(['name'])
    expect(badKeys('type=static,dest=d,name=Bad Name')).toEqual(['name'])
    expect(badKeys('type=s3,bucket=b,use_path_style=maybe,endpoint_url=not a url')).toEqual(['use_path_style', 'endpoint_url'])
    expect(badKeys('type=exec,cmd=x,timeout=-1')).toEqual(['timeout'])
    expect(badKeys('type=oci-layout,dest=a,dest=b')).toEqual(['dest'])
    expect(badKeys('type=nope,dest=a')).toEqual(['type'])
    expect(badKeys('dest=a')).toEqual(['type'])
    expect(badKeys('type=local')).toEqual(['dest'])
    expect(badKeys('type=tar,dest=a,name=x:1')).toEqual(['name'])
    expect(badKeys('type=kiln,dest=a')).toEqual(['dest'])
    expect(badKeys('type=oci-layout,dest=a,justakey')).toEqual(['justakey'])
  })

  it('reads the root filesystem outputs: type=local, type=tar, and a plain path as buildx reads -o DIR', () => {
    expect(parseOutputSpec('type=local,dest=./rootfs')).toEqual({ type: 'local', dest: './rootfs' })
    expect(parseOutputSpec('type=tar,dest=rootfs.tar,platform=linux/arm64')).toEqual({ type: 'tar', dest: 'rootfs.tar', platform: 'linux/arm64' })
    expect(parseOutputSpec('./out/rootfs')).toEqual({ type: 'local', dest: './out/rootfs' })
    expect(parseOutputSpec('out')).toEqual({ type: 'local', dest: 'out' })
    // buildx's `-o -` (a tar on stdout) is refused, not taken for a directory named "-".
    expect(badKeys('-')).toEqual(['dest'])
    expect(badKeys('type=tar,dest=-')).toEqual(['dest'])
    // A word with a colon is a transport, never a directory named after a typo.
    expect(() => parseOutputSpec('oci-archve:app.tar')).toThrow(OutputSpecInvalidError)
    for (const text of ['type=local,dest=d,platform=linux/amd64', 'type=tar,dest=r.tar']) expect(parseOutputSpec(formatOutputSpec(parseOutputSpec(text)))).toEqual(parseOutputSpec(text))
  })

  it('says which keys a type knows', () => {
    expect(() => parseOutputSpec('type=static,dest=d,bucket=b')).toThrow(/bucket: unknown key for type=static \(known: dest, name, sif\)/)
  })

  it('formats a spec back into something it parses to the same value, without secrets', () => {
    for (const text of [
      'type=oci-layout,dest=./out,name=v1',
      'type=docker-archive,dest=img.tar,name=hpc/app:1,platform=linux/arm64',
      'type=registry,name=127.0.0.1:5000/hpc/app:1,insecure=true',
      'type=registry,name=127.0.0.1:5000/hpc/app:1,compression=zstd',
      'type=oci-archive,dest=a.tar,compression=gzip',
      'type=s3,bucket=b,prefix=reg,region=r,endpoint_url=http://127.0.0.1:9000/,use_path_style=true,name=a:1',
      'type=exec,cmd=up,"arg=a,b",arg=c,timeout=5,opt.k=v',
      'type=kiln'
    ]) {
      const spec = parseOutputSpec(text)
      expect(parseOutputSpec(formatOutputSpec(spec))).toEqual(spec)
    }
    expect(formatOutputSpec(parseOutputSpec('type=s3,bucket=b,name=a,secret_access_key=SECRET,access_key_id=ID'))).not.toMatch(/SECRET|ID/)
  })

  it('reads compression= on image outputs, and the layer compression a set of outputs asks for', () => {
    expect(parseOutputSpec('type=oci-layout,dest=d,name=a,compression=zstd')).toEqual({ type: 'oci-layout', dest: 'd', names: ['a'], compression: 'zstd' })
    expect(badKeys('type=oci-layout,dest=d,compression=xz')).toEqual(['compression'])
    expect(badKeys('type=docker-archive,dest=d.tar,compression=zstd')).toEqual(['compression'])
    expect(layerCompressionOf([])).toBe('gzip')
    expect(layerCompressionOf([parseOutputSpec('oci:d:a'), parseOutputSpec('type=oci-archive,dest=a.tar,compression=zstd')])).toBe('zstd')
    expect(layerCompressionOf([parseOutputSpec('type=oci-layout,dest=d,compression=gzip')])).toBe('gzip')
    expect(() => layerCompressionOf([parseOutputSpec('type=oci-layout,dest=d,compression=gzip'), parseOutputSpec('type=oci-archive,dest=a.tar,compression=zstd')])).toThrow(/different compressions/)
  })
})
